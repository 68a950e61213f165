package redirect

import (
	"net/url"
	"strings"
	"testing"
)

func TestLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"/", true},
		{"/documents", true},
		{"/documents/Q3%20Minutes.md?download=1#top", true},
		{"/a/b/../c", true},
		{"/%E2%82%AC", true},
		{"/search?q=a%2Fb", true},

		{"", false},
		{"documents", false},
		{"https://evil.example/", false},
		{"http:/evil.example", false},
		{"//evil.example", false},
		{"//evil.example/path", false},
		{"/\\evil.example", false},
		{"\\/evil.example", false},
		{"/\t/evil.example", false},
		{"/\r\n/evil.example", false},
		{"/\n/evil.example", false},
		{"/\x00/evil.example", false},
		{"javascript:alert(1)", false},
		{"JaVaScRiPt:alert(1)", false},
		{"data:text/html,<script>alert(1)</script>", false},
		{"/%2F/evil.example", false},
		{"/%2f%2fevil.example", false},
		{"%2F%2Fevil.example", false},
		{"/%5Cevil.example", false},
		{"/%5cevil.example", false},
		{"/%252F/evil.example", false},
		{"/%25252F/evil.example", false},
		{"/\uff0f/evil.example", false},
		{"\uff0f\uff0fevil.example", false},
		{"/ evil", false},
		{"/%09/evil.example", false},
		{"/%0d%0a/evil.example", false},
		{"/%zz", false},
		{"/" + strings.Repeat("a", MaxLength), false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := Local(tt.in)
			if ok != tt.ok {
				t.Fatalf("Local(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if ok && got != tt.in {
				t.Fatalf("Local(%q) = %q, want it unchanged", tt.in, got)
			}
		})
	}
}

// FuzzLocal checks the one property that matters: whatever Local accepts,
// a browser resolving it against the gateway's origin stays on that origin.
func FuzzLocal(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//x", "/\\x", "/%2f/x", "https://x", "/\t/x", "javascript:x"} {
		f.Add(s)
	}
	base, err := url.Parse("https://gateway.example/start")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := Local(in)
		if !ok {
			return
		}
		if got != in {
			t.Fatalf("Local(%q) = %q, want it unchanged", in, got)
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Local accepted unparsable %q: %v", got, err)
		}
		resolved := base.ResolveReference(ref)
		if resolved.Scheme != base.Scheme || resolved.Host != base.Host {
			t.Fatalf("Local accepted %q which resolves to %q", got, resolved)
		}
		if strings.ContainsAny(got, "\\\t\r\n\x00 ") {
			t.Fatalf("Local accepted %q with a forbidden character", got)
		}
		for s, i := got, 0; i < maxDecodeRounds; i++ {
			d, err := url.PathUnescape(s)
			if err != nil {
				break
			}
			if strings.HasPrefix(d, "//") || strings.HasPrefix(d, "/\\") {
				t.Fatalf("Local accepted %q which decodes to %q", got, d)
			}
			s = d
		}
	})
}
