package samlsp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzOwnPath: OwnPath, which builds the escaped path only when there is
// a RawPath, decides as comparing both paths always would.
func FuzzOwnPath(f *testing.F) {
	for _, s := range []string{
		"/", "/documents/Q3%20Minutes.md", PathPrefix, LoginPath + "acme", "/auth/api/v1/%73aml/login/acme",
		"/auth/api/v1/saml%2Flogin", "/auth/api/v1/sa%6Dl/", "/auth/api/v1/saml", "/auth%2Fapi/v1/saml/x", "/a b/" + PathPrefix,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{URL: u}
		want := strings.HasPrefix(u.Path, PathPrefix) || strings.HasPrefix(u.EscapedPath(), PathPrefix)
		if got := OwnPath(r); got != want {
			t.Errorf("OwnPath(%q) (path %q, raw %q): got %v, want %v", target, u.Path, u.RawPath, got, want)
		}
	})
}
