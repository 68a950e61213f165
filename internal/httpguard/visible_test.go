package httpguard

import (
	"bytes"
	"testing"
)

// TestVisible: the word-at-a-time check of field values refuses exactly
// what the byte-at-a-time one does, for every byte value at every position
// of a word and of a tail.
func TestVisible(t *testing.T) {
	t.Parallel()
	base := []byte("Cookie: __Host-ssogw_session=abcDEF0123456789-_~.xyz")
	for n := range len(base) {
		for c := range 256 {
			b := bytes.Clone(base[:n+1])
			b[n] = byte(c)
			if got, want := visible(b), visibleBytes(b); got != want {
				t.Fatalf("visible(%q) = %v, want %v", b, got, want)
			}
		}
	}
}

func FuzzVisible(f *testing.F) {
	f.Add([]byte("value\twith tab"))
	f.Add([]byte("0123456789abcdef\x7f"))
	f.Add([]byte("\x80\x81\xff\x1f high bytes"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := visible(b), visibleBytes(b); got != want {
			t.Fatalf("visible(%q) = %v, want %v", b, got, want)
		}
	})
}
