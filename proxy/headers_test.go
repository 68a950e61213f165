package proxy

import (
	"errors"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// readAsIdentity is how CGI, PHP and nginx (underscores_in_headers) would
// read a header name: case-insensitive, '_' the same as '-'.
func readAsIdentity(name string) bool {
	n := strings.Map(func(r rune) rune {
		switch {
		case r == '_':
			return '-'
		case 'A' <= r && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, name)
	return strings.HasPrefix(n, identityPrefix)
}

func TestIsIdentityHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"X-Remote-User", true},
		{"x-remote-user", true},
		{"X-REMOTE-USER", true},
		{"X_Remote_User", true},
		{"x_remote_user", true},
		{"X-Remote_User", true},
		{"X_REMOTE-GROUPS", true},
		{"X-Remote-", true},
		{"X_Remote_", true},
		{"X-Remote-Anything-At-All", true},
		{"X-Remote", false},
		{"X-Remotes-User", false},
		{"X-Remote-User"[1:], false},
		{"XX-Remote-User", false},
		{"Remote-User", false},
		{"X-Forwarded-User", false},
		{"", false},
		{"X-Rémote-User", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := isIdentityHeader(tt.name); got != tt.want {
				t.Errorf("isIdentityHeader(%q): got %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func FuzzIsIdentityHeader(f *testing.F) {
	for _, s := range []string{"X-Remote-User", "x_remote_", "X-Remote", "X\x00Remote-", "X-REMOTE-\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := isIdentityHeader(name), readAsIdentity(name); got != want {
			t.Errorf("isIdentityHeader(%q): got %v, want %v", name, got, want)
		}
	})
}

// cookieParts splits Cookie header values the way stripGatewayCookies
// does: on ';', trimmed, empty parts dropped.
func cookieParts(values []string) []string {
	var parts []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ";") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	}
	return parts
}

func cookieName(part string) string {
	name, _, _ := strings.Cut(part, "=")
	return strings.TrimSpace(name)
}

func TestStripGatewayCookies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string // nil: header removed
	}{
		{"no gateway cookie: untouched", []string{"a=1;b=2", " c=3 "}, []string{"a=1;b=2", " c=3 "}},
		{"session only", []string{"ssogw_session=x"}, nil},
		{"every prefix", []string{"__Host-ssogw_session=1; __Secure-ssogw_req_a=2; ssogw_tenant=3"}, nil},
		{"kept in order", []string{"z=1; ssogw_session=x; a=2; m=3"}, []string{"z=1; a=2; m=3"}},
		{"several headers joined", []string{"a=1", "ssogw_session=x", "b=2"}, []string{"a=1; b=2"}},
		{"name without value", []string{"ssogw_session; a"}, []string{"a"}},
		{"spaces around the name", []string{"a=1;   ssogw_session =x ;b=2"}, []string{"a=1; b=2"}},
		{"prefix inside a value only", []string{"a=ssogw_session; b=2"}, []string{"a=ssogw_session; b=2"}},
		{"empty parts dropped", []string{";;a=1;;ssogw_tenant=x;"}, []string{"a=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{"Cookie": slices.Clone(tt.in)}
			stripGatewayCookies(h)
			got, ok := h["Cookie"]
			if tt.want == nil && ok {
				t.Errorf("Cookie: got %q, want no header", got)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Cookie: got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzStripGatewayCookies checks, for any Cookie headers, that no gateway
// cookie survives and that every other cookie survives unchanged and in
// order.
func FuzzStripGatewayCookies(f *testing.F) {
	for _, s := range []string{
		"ssogw_session=x; a=1",
		"a=1;ssogw_tenant=2",
		`q="a;b"; __Host-ssogw_session=v`,
		"__Secure-__Host-ssogw_x=1",
		" ssogw_ =; =ssogw_; ssogw_",
	} {
		f.Add(s, "b=2")
	}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		in := []string{v1, v2}
		h := http.Header{"Cookie": slices.Clone(in)}
		stripGatewayCookies(h)
		got := h["Cookie"]
		for _, p := range cookieParts(got) {
			if samlsp.IsGatewayCookie(cookieName(p)) {
				t.Fatalf("stripGatewayCookies(%q): got %q, which keeps gateway cookie %q", in, got, p)
			}
		}
		var want []string
		for _, p := range cookieParts(in) {
			if !samlsp.IsGatewayCookie(cookieName(p)) {
				want = append(want, p)
			}
		}
		if gotParts := cookieParts(got); !slices.Equal(gotParts, want) {
			t.Fatalf("stripGatewayCookies(%q): got cookies %q, want %q", in, gotParts, want)
		}
		if !strings.Contains(v1+v2, samlsp.CookiePrefix) && !slices.Equal(got, in) {
			t.Fatalf("stripGatewayCookies(%q): got %q, want it untouched", in, got)
		}
	})
}

func TestStripGatewaySetCookies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string // nil: header removed
	}{
		{"none", nil, nil},
		{"own cookies kept", []string{"a=1; Path=/", "b=2"}, []string{"a=1; Path=/", "b=2"}},
		{"gateway cookies dropped", []string{"a=1", "ssogw_session=x; Path=/", "__Host-ssogw_session=y", "__Secure-ssogw_req_z=1", "b=2"}, []string{"a=1", "b=2"}},
		{"only gateway cookies", []string{"ssogw_tenant=x; Max-Age=0"}, nil},
		{"padded name", []string{"  ssogw_session =x"}, nil},
		{"no equals sign", []string{"ssogw_session"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tt.in != nil {
				h["Set-Cookie"] = slices.Clone(tt.in)
			}
			stripGatewaySetCookies(h)
			got, ok := h["Set-Cookie"]
			if tt.want == nil && ok {
				t.Errorf("Set-Cookie: got %q, want no header", got)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Set-Cookie: got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzStripGatewaySetCookies checks that no Set-Cookie for a gateway cookie
// survives, and every other one does, unchanged and in order.
func FuzzStripGatewaySetCookies(f *testing.F) {
	f.Add("ssogw_session=x; Path=/", "a=1")
	f.Add("__Host-ssogw_session=x", " ssogw_tenant=y")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		in := []string{v1, v2}
		h := http.Header{"Set-Cookie": slices.Clone(in)}
		stripGatewaySetCookies(h)
		var want []string
		for _, v := range in {
			if !samlsp.IsGatewayCookie(cookieName(v)) {
				want = append(want, v)
			}
		}
		if got := h["Set-Cookie"]; !slices.Equal(got, want) {
			t.Fatalf("stripGatewaySetCookies(%q): got %q, want %q", in, got, want)
		}
	})
}

func TestSetIdentity(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-Remote-User":   {"mallory"},
		"X_remote_user":   {"mallory"},
		"X-Remote-Admin":  {"true"},
		"X-Real-Ip":       {"203.0.113.66"},
		"X-Remote-Groups": {"admins", "more"},
		"Accept":          {"text/html"},
	}
	setIdentity(h, &samlsp.Session{Tenant: "acme", NameID: "alice", Email: "a@acme.example", Name: "Alice", Groups: []string{"g1", "g2"}})
	want := http.Header{
		"X-Remote-User":   {"alice"},
		"X-Remote-Email":  {"a@acme.example"},
		"X-Remote-Name":   {"Alice"},
		"X-Remote-Groups": {"g1,g2"},
		"X-Remote-Tenant": {"acme"},
		"Accept":          {"text/html"},
	}
	for k, v := range want {
		if !slices.Equal(h[k], v) {
			t.Errorf("%s: got %q, want %q", k, h[k], v)
		}
	}
	for k, v := range h {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: got %q, want it removed", k, v)
		}
	}
}

// TestEncodeList: list values go out as RFC 9110 lists; what needs no
// quoting (GUIDs, plain names, inner spaces, non-ASCII letters) goes out
// byte for byte as before, and everything else as a quoted-string that
// ParseList reads back.
func TestEncodeList(t *testing.T) {
	t.Parallel()
	const guid = "0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, ""},
		{"GUIDs", []string{guid, "5f1d9a20-aaaa-4bbb-8ccc-dddddddddddd"}, guid + ",5f1d9a20-aaaa-4bbb-8ccc-dddddddddddd"},
		{"names with inner spaces and non-ASCII letters", []string{"Litigation Support", "Zürich", "日本語"}, "Litigation Support,Zürich,日本語"},
		{"a comma", []string{"Finance,00000000-0000-0000-0000-00000000ad01", guid}, `"Finance,00000000-0000-0000-0000-00000000ad01",` + guid},
		{"a double quote", []string{`say "hi"`}, `"say \"hi\""`},
		{"a backslash", []string{`DOMAIN\group`}, `"DOMAIN\\group"`},
		{"a leading quote only", []string{`"quoted"`}, `"\"quoted\""`},
		{"white space at the ends", []string{" padded ", "tail ", " head"}, `" padded ","tail "," head"`},
		{"Unicode white space at the ends", []string{"nbsp\u00a0", "\u3000ideographic"}, "\"nbsp\u00a0\",\"\u3000ideographic\""},
		{"an empty value", []string{""}, `""`},
		{"empty values among others", []string{"a", "", "b"}, `a,"",b`},
		{"only white space", []string{" "}, `" "`},
		{"semicolons and equals signs need nothing", []string{"a=b;c"}, "a=b;c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := encodeList(tt.values)
			if got != tt.want {
				t.Errorf("encodeList(%q): got %q, want %q", tt.values, got, tt.want)
			}
			back, err := ParseList(got)
			if err != nil || !slices.Equal(back, tt.values) {
				t.Errorf("ParseList(%q): got %q, %v; want %q", got, back, err, tt.values)
			}
		})
	}
}

// TestParseList: ParseList reads what a generous sender could write too
// (optional white space, empty elements), and refuses what no list is.
func TestParseList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		invalid bool
	}{
		{"", nil, false},
		{"  \t ", nil, false},
		{"a", []string{"a"}, false},
		{"a, b ,\tc", []string{"a", "b", "c"}, false},
		{"a,,b,", []string{"a", "b"}, false},
		{", ,a", []string{"a"}, false},
		{`"" , "x, y" ,z`, []string{"", "x, y", "z"}, false},
		{`"a\"b\\c\d"`, []string{`a"b\cd`}, false},
		{`"unterminated`, nil, true},
		{`"ends in a backslash\`, nil, true},
		{`"a"b`, nil, true},
		{`"a" b`, nil, true},
		{`a"b`, nil, true},
		{`a\b`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseList(tt.in)
			if tt.invalid {
				if !errors.Is(err, ErrMalformedList) {
					t.Errorf("ParseList(%q): got %q, %v; want ErrMalformedList", tt.in, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseList(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzListRoundTrip: for any values without control characters (as
// newSession lets through), the header value encodeList makes is one the
// HTTP client sends unchanged (valid, nothing for it to trim), and
// ParseList gives back exactly the values. The values are the input split
// at '\n'; empty means none.
func FuzzListRoundTrip(f *testing.F) {
	for _, s := range []string{
		"0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c\nFinance,00000000-0000-0000-0000-00000000ad01",
		"say \"hi\"\n padded \n\nDOMAIN\\group",
		"\"\n\\\n,\n \u00a0\n",
		"",
		"\xff\xfe,\x80",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var values []string
		if joined != "" {
			values = strings.Split(joined, "\n")
		}
		for _, v := range values {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' || c == 0x7f {
					return
				}
			}
		}
		enc := encodeList(values)
		if !httpguts.ValidHeaderFieldValue(enc) {
			t.Fatalf("encodeList(%q) = %q: not a valid header value", values, enc)
		}
		if trimmed := textproto.TrimString(enc); trimmed != enc {
			t.Fatalf("encodeList(%q) = %q: the HTTP client would send %q", values, enc, trimmed)
		}
		got, err := ParseList(enc)
		if err != nil || !slices.Equal(got, values) {
			t.Fatalf("ParseList(encodeList(%q)) = ParseList(%q): got %q, %v", values, enc, got, err)
		}
	})
}
