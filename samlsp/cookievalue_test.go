package samlsp

import (
	"strings"
	"testing"
)

// cookieValueRef is cookieValue a byte at a time: what the word-at-a-time
// check must agree with.
func cookieValueRef(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return raw, true
}

// TestCookieValueEveryByte puts every byte value at every position of a
// word, of the tail and of a word boundary, between allowed bytes of
// both extremes (0x20, 0x7e), so that a borrow from a neighbour cannot
// hide a forbidden byte.
func TestCookieValueEveryByte(t *testing.T) {
	for _, fill := range []byte{'a', 0x20, 0x7e, '!', '#'} {
		for _, n := range []int{1, 7, 8, 9, 16, 23, 40} {
			for pos := range n {
				for b := range 256 {
					buf := []byte(strings.Repeat(string(fill), n))
					buf[pos] = byte(b)
					raw := string(buf)
					got, gotOK := cookieValue(raw)
					want, wantOK := cookieValueRef(raw)
					if got != want || gotOK != wantOK {
						t.Fatalf("cookieValue(%q) = %q, %v; want %q, %v", raw, got, gotOK, want, wantOK)
					}
				}
			}
		}
	}
}

func FuzzCookieValue(f *testing.F) {
	f.Add(`"abc"`)
	f.Add("MTc5NTg3MjQ4NHxNa1lQ|AAAA;x")
	f.Add(strings.Repeat("\x7f", 9))
	f.Fuzz(func(t *testing.T, raw string) {
		got, gotOK := cookieValue(raw)
		want, wantOK := cookieValueRef(raw)
		if got != want || gotOK != wantOK {
			t.Fatalf("cookieValue(%q) = %q, %v; want %q, %v", raw, got, gotOK, want, wantOK)
		}
	})
}
