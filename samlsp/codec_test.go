package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/race"
)

// deflatedValue is a serialized value as compressingJSON writes one above
// compressAbove: 'z' and the deflated JSON.
func deflatedValue(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.WriteByte('z')
	zw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInflaterReuse: one serializer, and so one pool of inflaters, decodes
// a sequence of good and bad values, each as it would alone: a reader left
// in an error state, or cut off at maxInflated, never leaks into the next
// value.
func TestInflaterReuse(t *testing.T) {
	t.Parallel()
	good := deflatedValue(t, map[string]string{"g": strings.Repeat("0123456789abcdef", 64)})
	other := deflatedValue(t, map[string]string{"n": strings.Repeat("b.simon@acme.example ", 40)})
	truncated := good[:len(good)/2]
	corrupt := append([]byte{'z'}, bytes.Repeat([]byte{0xff}, 64)...)
	bomb := deflatedValue(t, map[string]string{"x": strings.Repeat("a", maxInflated)})
	cj := &compressingJSON{}
	tests := []struct {
		name  string
		value []byte
		want  string // the "g" or "n" field, or "" for an error
	}{
		{"good", good, strings.Repeat("0123456789abcdef", 64)},
		{"truncated", truncated, ""},
		{"good after truncated", good, strings.Repeat("0123456789abcdef", 64)},
		{"corrupt", corrupt, ""},
		{"another after corrupt", other, strings.Repeat("b.simon@acme.example ", 40)},
		{"inflates past the limit", bomb, ""},
		{"good after the limit", good, strings.Repeat("0123456789abcdef", 64)},
	}
	for _, tt := range tests {
		// Not parallel: the order is the point.
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]string
			err := cj.Deserialize(tt.value, &got)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if v := got["g"] + got["n"]; v != tt.want {
				t.Errorf("got %q, want %q", v, tt.want)
			}
		})
	}
}

// TestInflaterPooled: decoding a deflated value reuses an inflater rather
// than allocating a flate reader (some 40 KiB) every time. Not parallel:
// it counts the bytes the whole process allocates.
func TestInflaterPooled(t *testing.T) {
	value := deflatedValue(t, map[string]string{"g": strings.Repeat("0123456789abcdef", 64)})
	cj := &compressingJSON{}
	var dst json.RawMessage
	decode := func() {
		if err := cj.Deserialize(value, &dst); err != nil {
			t.Fatal(err)
		}
	}
	decode() // fills the pool
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		decode()
	}
	runtime.ReadMemStats(&after)
	// What is left is json.RawMessage's copy of the 1 KiB value, and a
	// pool refilled after a collection; under -race sync.Pool drops a
	// quarter of what is put back, on purpose. A flate reader is some
	// 40 KiB.
	limit := uint64(8 << 10)
	if race.Enabled {
		limit = 20 << 10
	}
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > limit {
		t.Errorf("got %d bytes allocated per decode, want at most %d (a pooled inflater)", per, limit)
	}
}
