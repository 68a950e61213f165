package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TestRouterOwnPaths checks that the gateway's own paths, however spelled,
// go to the service provider and never upstream, signed in or not: the
// router decides once, and the proxy never sees them.
func TestRouterOwnPaths(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}), "")
	cookie := tg.signIn(t)
	addr := serveGateway(t, tg)
	targets := []struct {
		method, target string
		want           int
	}{
		{"GET", "/auth/api/v1/saml/login/acme", http.StatusFound},
		{"POST", "/auth/api/v1/saml/login/acme", http.StatusBadRequest},
		{"GET", "/auth/api/v1/saml/metadata/acme", http.StatusOK},
		{"GET", "/auth/api/v1/saml/logout", 0},
		{"GET", "/auth/api/v1/saml/select?q=acme&return_to=%2Fdocs", 0},
		{"GET", "/auth/api/v1/saml/", http.StatusNotFound},
		{"GET", "/auth/api/v1/saml/unknown/../../../../api/whoami", 0},
		{"GET", "/auth/api/v1/%73aml/login/x", 0},
		{"GET", "/auth/api/v1/%73%61%6d%6c/login/x", 0},
		{"GET", "/auth/api/v1/saml%2Flogin/x", 0},
		{"GET", "/%61uth/api/v1/saml/logout", 0},
		{"PROPFIND", "/auth/api/v1/saml/metadata/", 0},
		{"GET", samlsp.SelectPath, 0},
	}
	for _, signedIn := range []bool{false, true} {
		for _, tt := range targets {
			name := tt.method + " " + tt.target
			if signedIn {
				name += " with session"
			}
			t.Run(name, func(t *testing.T) {
				raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\nContent-Length: 0\r\nConnection: close\r\n", tt.method, tt.target, testPublicHost)
				if signedIn {
					raw += "Cookie: " + cookie.String() + "\r\n"
				}
				resp, body := rawExchange(t, addr, raw+"\r\n")
				if strings.Contains(body, "upstream") {
					t.Errorf("got the upstream's answer (%d), want the gateway's", resp.StatusCode)
				}
				if tt.want != 0 && resp.StatusCode != tt.want {
					t.Errorf("status: got %d, want %d: %s", resp.StatusCode, tt.want, body)
				}
			})
		}
	}
	if n := tg.hits.Load(); n != 0 {
		t.Errorf("upstream requests: got %d, want 0", n)
	}
}

// TestRouterProxiesTheRest checks the other half of the split: a path
// that only resembles the gateway's own reaches the upstream.
func TestRouterProxiesTheRest(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}), "")
	cookie := tg.signIn(t)
	for _, path := range []string{"/auth/api/v1/samlx", "/auth/api/v1/", "/docs/auth/api/v1/saml/login/acme"} {
		rec := get(t, tg.gw.PublicHandler(), path, cookie)
		if rec.Code != http.StatusOK || rec.Body.String() != "upstream" {
			t.Errorf("%s: got %d %q, want 200 from the upstream", path, rec.Code, rec.Body)
		}
	}
}
