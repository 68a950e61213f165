package ingress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// The stand-in Caddy test runs deploy/caddy/Caddyfile, unchanged but for the
// environment variables it reads, in front of two servers of its own on
// 127.0.0.1:
//
//   - a stand-in for the gateway's forward-auth endpoint, which answers as
//     the endpoint's contract says (200 with identity headers for the
//     session cookie "sso_session=valid"; otherwise 401, or with
//     ?redirect=1 a 302 for browser navigations), and answers every other
//     /auth/api/v1/saml/ path as the gateway's own page;
//   - an upstream that echoes the headers it received.
//
// What is tested is Caddy's side: that the shipped file asks the gateway
// with the original request, copies the identity headers upstream, strips
// a client's forged X-Remote-* headers, passes 401 and 302 through, and
// routes the gateway's own pages to it. The endpoint itself is tested with
// the gateway's own packages.

// caddyIdentity is what the stand-in gateway answers for a valid session.
var caddyIdentity = map[string]string{
	"X-Remote-User":          "alice@acme.example",
	"X-Remote-Email":         "alice@acme.example",
	"X-Remote-Name":          "Alice Example",
	"X-Remote-Groups":        "g-1,g-2",
	"X-Remote-Tenant":        "acme",
	"X-Remote-Jwt-Assertion": "eyJhbGciOiJFUzI1NiJ9.e30.sig",
}

// caddyVerifyCall is what the stand-in gateway saw of one verify request.
type caddyVerifyCall struct {
	Method, Path, RawQuery, Host, Cookie string
	ForwardedMethod, ForwardedURI        string
	ForwardedHost, ForwardedProto        string
}

// caddyGateway is the stand-in gateway.
type caddyGateway struct {
	mu      sync.Mutex
	verify  []caddyVerifyCall
	ownPage []string // "METHOD host path" of the gateway's own pages served
}

func (g *caddyGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != samlsp.VerifyPath {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.ownPage = append(g.ownPage, fmt.Sprintf("%s %s %s %s", r.Method, r.Host, r.URL.Path, body))
		g.mu.Unlock()
		fmt.Fprint(w, "the gateway's own page")
		return
	}
	c := caddyVerifyCall{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Host: r.Host, Cookie: r.Header.Get("Cookie"),
		ForwardedMethod: r.Header.Get("X-Forwarded-Method"), ForwardedURI: r.Header.Get("X-Forwarded-Uri"),
		ForwardedHost: r.Header.Get("X-Forwarded-Host"), ForwardedProto: r.Header.Get("X-Forwarded-Proto"),
	}
	g.mu.Lock()
	g.verify = append(g.verify, c)
	g.mu.Unlock()
	if ck, err := r.Cookie("sso_session"); err == nil && ck.Value == "valid" {
		for k, v := range caddyIdentity {
			w.Header().Set(k, v)
		}
		w.Header().Set("Cache-Control", "private, max-age=30")
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.URL.Query().Get("redirect") == "1" && r.Header.Get("Sec-Fetch-Mode") == "navigate" {
		ret := c.ForwardedProto + "://" + c.ForwardedHost + c.ForwardedURI
		http.Redirect(w, r, "https://"+c.ForwardedHost+"/auth/api/v1/saml/signin?rd="+url.QueryEscape(ret), http.StatusFound)
		return
	}
	w.WriteHeader(http.StatusUnauthorized)
}

func (g *caddyGateway) calls() ([]caddyVerifyCall, []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]caddyVerifyCall(nil), g.verify...), append([]string(nil), g.ownPage...)
}

// caddyUpstream echoes the request's headers as JSON.
func caddyUpstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"path": r.URL.RequestURI(), "header": r.Header})
}

// caddyStack is a running Caddy in front of the stand-ins.
type caddyStack struct {
	gw     *caddyGateway
	addr   string // where Caddy listens
	site   string // the Host the site answers
	client *http.Client
}

// caddyStart runs Caddy with the Caddyfile text caddyfile. A Caddy that
// does not start fails the test with its output.
func caddyStart(t *testing.T, caddyfile string) *caddyStack {
	t.Helper()
	s := &caddyStack{gw: &caddyGateway{}, site: "app.example.test"}
	gw := httptest.NewServer(s.gw)
	t.Cleanup(gw.Close)
	up := httptest.NewServer(http.HandlerFunc(caddyUpstream))
	t.Cleanup(up.Close)

	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.addr = runCaddy(t, file, ln, fmt.Sprintf("http://%s:%s", s.site, port),
		strings.TrimPrefix(gw.URL, "http://"), strings.TrimPrefix(up.URL, "http://"))
	s.client = &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	return s
}

// do sends a request for the site through Caddy.
func (s *caddyStack) do(t *testing.T, method, target string, header http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = s.site + ":" + s.addr[strings.LastIndex(s.addr, ":")+1:]
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// upstreamSaw decodes the upstream's echo.
func caddyUpstreamSaw(t *testing.T, resp *http.Response) (string, http.Header) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("got status %d (%s), want 200 from the upstream", resp.StatusCode, b)
	}
	var echo struct {
		Path   string
		Header http.Header
	}
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatalf("the upstream's echo: %v", err)
	}
	return echo.Path, echo.Header
}

// caddyForged are identity headers a client makes up, in the spellings a
// backend may read as the real ones.
var caddyForged = http.Header{
	"X-Remote-User":           {"admin@acme.example"},
	"X-Remote-Groups":         {"admins"},
	"X-Remote-Groups-Overage": {"true"},
	"X-Remote-Department":     {"forged"}, // a tenant's own header
	"X-Remote-Jwt-Assertion":  {"forged"},
	"X_remote_user":           {"admin@acme.example"},
	"x-remote-tenant":         {"globex"},
}

// caddyRemoteHeaders are the header names in h that a backend would read
// as X-Remote-*, with their values.
func caddyRemoteHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if n := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(n, "x-remote-") {
			out[k] = v
		}
	}
	return out
}

// TestCaddyAgainstStandIn runs the shipped Caddyfile in a real Caddy in
// front of the stand-in, which records what each verify request carries.
func TestCaddyAgainstStandIn(t *testing.T) {
	t.Parallel()
	s := caddyStart(t, shippedCaddyfile(t))
	session := http.Header{"Cookie": {"sso_session=valid; other=1"}}

	t.Run("identity headers reach the upstream, forged ones do not", func(t *testing.T) {
		h := session.Clone()
		for k, v := range caddyForged {
			h[k] = v
		}
		path, got := caddyUpstreamSaw(t, s.do(t, http.MethodGet, "/docs/a?b=1", h, ""))
		if path != "/docs/a?b=1" {
			t.Errorf("the upstream got %q, want %q", path, "/docs/a?b=1")
		}
		want := map[string][]string{}
		for k, v := range caddyIdentity {
			want[k] = []string{v}
		}
		// X-Remote-Groups-Overage is absent from the gateway's answer,
		// so absent upstream too.
		remote := caddyRemoteHeaders(got)
		if fmt.Sprint(remote) != fmt.Sprint(want) {
			t.Errorf("the upstream got X-Remote-* %q, want %q", remote, want)
		}
	})

	t.Run("the gateway is asked with the original request", func(t *testing.T) {
		before, _ := s.gw.calls()
		_, _ = caddyUpstreamSaw(t, s.do(t, http.MethodPost, "/docs/upload?x=%2F1", session, "data"))
		calls, _ := s.gw.calls()
		if len(calls) != len(before)+1 {
			t.Fatalf("got %d verify calls, want 1", len(calls)-len(before))
		}
		c := calls[len(calls)-1]
		want := caddyVerifyCall{
			Method: http.MethodGet, Path: samlsp.VerifyPath, RawQuery: "redirect=1",
			Host: c.Host, Cookie: "sso_session=valid; other=1",
			ForwardedMethod: http.MethodPost, ForwardedURI: "/docs/upload?x=%2F1",
			ForwardedHost: s.site + ":" + s.addr[strings.LastIndex(s.addr, ":")+1:], ForwardedProto: "http",
		}
		if c != want {
			t.Errorf("got verify call %+v, want %+v", c, want)
		}
	})

	t.Run("API clients get 401 and never reach the upstream", func(t *testing.T) {
		resp := s.do(t, http.MethodGet, "/api/v1/docs", http.Header{"Accept": {"application/json"}}, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("got status %d, want 401", resp.StatusCode)
		}
		if b, _ := io.ReadAll(resp.Body); bytes.Contains(b, []byte(`"header"`)) {
			t.Errorf("the upstream answered: %s", b)
		}
	})

	t.Run("navigations get the gateway's 302 to sign in", func(t *testing.T) {
		resp := s.do(t, http.MethodGet, "/docs/a?b=1", http.Header{"Sec-Fetch-Mode": {"navigate"}, "Accept": {"text/html"}}, "")
		loc := resp.Header.Get("Location")
		wantPrefix := "https://" + s.site + ":" + s.addr[strings.LastIndex(s.addr, ":")+1:] + "/auth/api/v1/saml/signin?rd="
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, wantPrefix) || !strings.HasSuffix(loc, url.QueryEscape("/docs/a?b=1")) {
			t.Errorf("got %d Location %q, want 302 to %q...", resp.StatusCode, loc, wantPrefix)
		}
	})

	t.Run("the gateway's own pages go to the gateway", func(t *testing.T) {
		_, before := s.gw.calls()
		verifyBefore, _ := s.gw.calls()
		resp := s.do(t, http.MethodPost, "/auth/api/v1/saml/acs", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, "SAMLResponse=x")
		if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK || string(b) != "the gateway's own page" {
			t.Errorf("got %d %q, want the gateway's page", resp.StatusCode, b)
		}
		verify, own := s.gw.calls()
		want := fmt.Sprintf("POST %s:%s /auth/api/v1/saml/acs SAMLResponse=x", s.site, s.addr[strings.LastIndex(s.addr, ":")+1:])
		if len(own) != len(before)+1 || own[len(own)-1] != want {
			t.Errorf("the gateway served %q, want %q", own[len(before):], want)
		}
		if len(verify) != len(verifyBefore) {
			t.Error("the gateway's own page went through forward-auth")
		}
	})
}

// TestCaddyChecksCanFail runs broken copies of the Caddyfile in a real
// Caddy and expects TestCaddyForwardAuth's checks to notice.
func TestCaddyChecksCanFail(t *testing.T) {
	t.Parallel()
	src := shippedCaddyfile(t)
	session := http.Header{"Cookie": {"sso_session=valid"}}
	for _, tc := range []struct {
		name, old, new string
		check          func(*testing.T, *caddyStack) string // "" when the break went unnoticed
	}{
		{"no stripping", "\t\trequest_header -X-Remote-*\n", "", func(t *testing.T, s *caddyStack) string {
			h := session.Clone()
			h["X-Remote-Department"] = []string{"forged"}
			_, got := caddyUpstreamSaw(t, s.do(t, http.MethodGet, "/", h, ""))
			if got.Get("X-Remote-Department") == "forged" {
				return "forged X-Remote-Department reached the upstream"
			}
			return ""
		}},
		{"no underscore stripping", "\t\trequest_header -X_Remote_*\n", "", func(t *testing.T, s *caddyStack) string {
			h := session.Clone()
			h["X_remote_user"] = []string{"admin"}
			_, got := caddyUpstreamSaw(t, s.do(t, http.MethodGet, "/", h, ""))
			if got["X_remote_user"] != nil {
				return "forged X_remote_user reached the upstream"
			}
			return ""
		}},
		{"a header not copied", " X-Remote-Tenant X-Remote-Groups-Overage", " X-Remote-Groups-Overage", func(t *testing.T, s *caddyStack) string {
			_, got := caddyUpstreamSaw(t, s.do(t, http.MethodGet, "/", session, ""))
			if got.Get("X-Remote-Tenant") == "" {
				return "X-Remote-Tenant did not reach the upstream"
			}
			return ""
		}},
		{"placeholder text for an absent header", "\t\timport delete_if_absent X-Remote-Groups-Overage\n", "", func(t *testing.T, s *caddyStack) string {
			_, got := caddyUpstreamSaw(t, s.do(t, http.MethodGet, "/", session, ""))
			if v := got.Get("X-Remote-Groups-Overage"); v != "" {
				return "X-Remote-Groups-Overage reached the upstream as " + v
			}
			return ""
		}},
		{"no redirect", "verify?redirect=1", "verify", func(t *testing.T, s *caddyStack) string {
			resp := s.do(t, http.MethodGet, "/", http.Header{"Sec-Fetch-Mode": {"navigate"}}, "")
			if resp.StatusCode != http.StatusFound {
				return fmt.Sprintf("a navigation got %d, not 302", resp.StatusCode)
			}
			return ""
		}},
		{"own pages behind forward-auth", "\t\treverse_proxy /auth/api/v1/saml/* {$SSO_GATEWAY:sso-gateway:8080}\n", "", func(t *testing.T, s *caddyStack) string {
			resp := s.do(t, http.MethodPost, "/auth/api/v1/saml/acs", nil, "SAMLResponse=x")
			if resp.StatusCode != http.StatusOK {
				return fmt.Sprintf("the ACS got %d", resp.StatusCode)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "the gateway's own page" {
				return "the ACS did not reach the gateway"
			}
			return ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(src, tc.old) {
				t.Fatalf("the Caddyfile has no %q", tc.old)
			}
			s := caddyStart(t, strings.Replace(src, tc.old, tc.new, 1))
			if tc.check(t, s) == "" {
				t.Error("the broken Caddyfile passed the check")
			}
		})
	}
}
