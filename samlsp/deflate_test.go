package samlsp

import (
	"runtime"
	"testing"
)

// bigSession is a session whose JSON is deflated: a user in many groups.
func bigSession(t testing.TB, groups int) Session {
	return Session{Tenant: acme, NameID: "b.simon@acme.example", Email: "b.simon@acme.example", Name: "B Simon",
		Groups: randomGUIDs(t, groups), IssuedAt: 1_700_000_000, Expires: 1_700_028_800}
}

// TestDeflaterReuse: one serializer, and so one pool of deflaters,
// serializes a sequence of different sessions, each of which reads back as
// itself: nothing of one value leaks into the next.
func TestDeflaterReuse(t *testing.T) {
	t.Parallel()
	cj := &compressingJSON{}
	sessions := []Session{bigSession(t, 150), bigSession(t, 20), {Tenant: acme, NameID: "small"}, bigSession(t, 40), bigSession(t, 150)}
	for i, s := range sessions {
		for range 2 {
			value, err := cj.Serialize(s)
			if err != nil {
				t.Fatalf("session %d: serialize: %v", i, err)
			}
			if i != 2 && value[0] != 'z' {
				t.Fatalf("session %d: got marker %q, want 'z' (deflated)", i, value[0])
			}
			var got Session
			if err := cj.Deserialize(value, &got); err != nil {
				t.Fatalf("session %d: deserialize: %v", i, err)
			}
			if !sameSession(got, s) {
				t.Fatalf("session %d: got %#v, want %#v", i, got, s)
			}
		}
	}
}

// TestDeflaterPooled: a login that deflates its session reuses a flate
// writer rather than allocating one (about a megabyte of tables and
// window) every time. Not parallel: it counts the bytes the whole process
// allocates.
func TestDeflaterPooled(t *testing.T) {
	s := bigSession(t, 20)
	cj := &compressingJSON{}
	encode := func() {
		if _, err := cj.Serialize(s); err != nil {
			t.Fatal(err)
		}
	}
	encode() // fills the pool
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		encode()
	}
	runtime.ReadMemStats(&after)
	// A new writer is about 800 KB. What is left with the pool is the JSON,
	// the output, and a writer allocated again after a collection emptied
	// the pool, or after the race detector's sync.Pool dropped one (it
	// drops a quarter of them on purpose).
	const most = 400 << 10
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > most {
		t.Errorf("got %d bytes allocated per serialization, want at most %d (a pooled flate writer)", per, most)
	}
}
