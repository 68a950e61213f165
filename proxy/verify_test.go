package proxy_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

const (
	// ingressAddr is the trusted ingress's address; strangerAddr is not
	// trusted.
	ingressAddr  = "192.0.2.10:40000"
	strangerAddr = "203.0.113.66:40000"
	verifyPath   = samlsp.VerifyPath
)

// viewAuth is fakeAuth that notes the original request each call saw,
// and signs in at a local path as samlsp.Provider does.
type viewAuth struct {
	fakeAuth
	mu    sync.Mutex
	views []string // "METHOD host uri"
}

func (a *viewAuth) Authenticate(r *http.Request) (*samlsp.Session, bool) {
	a.mu.Lock()
	a.views = append(a.views, r.Method+" "+r.Host+" "+r.URL.RequestURI())
	a.mu.Unlock()
	return a.fakeAuth.Authenticate(r)
}

func (a *viewAuth) LoginURL(_ *http.Request, returnTo string) string {
	if returnTo == "" {
		return "/auth/api/v1/saml/login/acme"
	}
	return "/auth/api/v1/saml/login/acme?return_to=" + url.QueryEscape(returnTo)
}

func (a *viewAuth) lastView() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.views) == 0 {
		return ""
	}
	return a.views[len(a.views)-1]
}

// verifier is a Proxy whose ServeVerify the tests call directly, with the
// origin the router would have resolved (192.0.2.0/24 trusted).
type verifier struct {
	p     *proxy.Proxy
	auth  *viewAuth
	reg   *prometheus.Registry
	clock *clockwork.FakeClock
	logs  *bytes.Buffer
}

func newVerifier(t *testing.T, opts ...func(*proxy.Options)) *verifier {
	t.Helper()
	v := &verifier{
		auth:  &viewAuth{fakeAuth: fakeAuth{sessions: map[string]*samlsp.Session{}}},
		reg:   prometheus.NewRegistry(),
		clock: clockwork.NewFakeClockAt(time.Unix(1_800_000_000, 0)),
		logs:  &bytes.Buffer{},
	}
	now := v.clock.Now().Unix()
	long, short := *alice, *alice
	long.Expires, short.Expires = now+3600, now+7
	v.auth.sessions["valid"] = &long
	v.auth.sessions["short"] = &short
	o := proxy.Options{
		Upstream:     &url.URL{Scheme: "http", Host: "127.0.0.1:1"},
		PublicScheme: "https",
		Auth:         v.auth,
		Metrics:      proxy.NewMetrics(v.reg),
		Clock:        v.clock,
		Logger:       slog.New(slog.NewJSONHandler(v.logs, nil)),
		AccessLog:    true,
	}
	for _, f := range opts {
		f(&o)
	}
	p, err := proxy.New(o)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	v.p = p
	return v
}

// verify sends a forward-auth request from peer with the given headers
// ("Name: value" each) to target, a path under samlsp.VerifyPath.
func (v *verifier) verify(peer, target string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://gateway.internal:8080"+target, nil)
	r.RemoteAddr = peer
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		r.Header.Add(name, value)
	}
	res := reqinfo.NewResolver([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	r = reqinfo.WithOrigin(r, res.Resolve(r))
	rec := httptest.NewRecorder()
	v.p.ServeVerify(rec, r)
	return rec
}

const (
	withSession = "Cookie: ssogw_session=valid"
	navigation  = "Accept: text/html,application/xhtml+xml"
)

// TestVerifyOriginalRequest: each ingress's spelling of the original
// request is read from a trusted proxy, and from anyone else only the
// subrequest itself counts.
func TestVerifyOriginalRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		peer    string
		target  string
		headers []string
		want    string // the view Authenticate saw; "" for a 403 before it
	}{
		{"nginx", ingressAddr, verifyPath, []string{"X-Original-URI: /docs/a?b=c", "X-Original-Method: PUT", "X-Forwarded-Host: docs.example.com", "X-Forwarded-Proto: https"},
			"PUT docs.example.com /docs/a?b=c"},
		{"ingress-nginx", ingressAddr, verifyPath, []string{"X-Original-URL: https://docs.example.com/docs/a?b=c", "X-Original-Method: DELETE"},
			"DELETE docs.example.com /docs/a?b=c"},
		{"Traefik and Caddy", ingressAddr, verifyPath, []string{"X-Forwarded-Method: POST", "X-Forwarded-Proto: https", "X-Forwarded-Host: docs.example.com", "X-Forwarded-Uri: /docs/x"},
			"POST docs.example.com /docs/x"},
		{"Envoy path prefix", ingressAddr, verifyPath + "/docs/a?b=c", nil,
			"GET gateway.internal:8080 /docs/a?b=c"},
		{"nginx with the Host passed on", ingressAddr, verifyPath, []string{"X-Original-URI: /docs", "X-Original-Method: GET"},
			"GET gateway.internal:8080 /docs"},
		{"agreeing spellings", ingressAddr, verifyPath, []string{"X-Original-URI: /docs", "X-Forwarded-Uri: /docs", "X-Forwarded-Host: docs.example.com", "X-Original-URL: https://docs.example.com/docs"},
			"GET docs.example.com /docs"},
		{"untrusted peer: headers ignored", strangerAddr, verifyPath, []string{"X-Original-URL: https://other.example.com/docs", "X-Original-Method: PUT", "X-Forwarded-Host: other.example.com", "X-Forwarded-Uri: /x"},
			"GET gateway.internal:8080 " + verifyPath},
		{"untrusted peer: Envoy suffix is its own path", strangerAddr, verifyPath + "/docs", nil,
			"GET gateway.internal:8080 " + verifyPath + "/docs"},
		{"forged X-Original-URL beside Traefik's headers", ingressAddr, verifyPath, []string{"X-Original-URL: https://other.example.com/", "X-Forwarded-Host: docs.example.com", "X-Forwarded-Uri: /"}, ""},
		{"forged X-Forwarded-Host beside nginx's", ingressAddr, verifyPath, []string{"X-Original-URL: https://docs.example.com/", "X-Forwarded-Host: other.example.com"}, ""},
		{"disagreeing methods", ingressAddr, verifyPath, []string{"X-Original-Method: GET", "X-Forwarded-Method: POST"}, ""},
		{"disagreeing URIs", ingressAddr, verifyPath, []string{"X-Original-URI: /a", "X-Forwarded-Uri: /b"}, ""},
		{"Envoy suffix and another URI", ingressAddr, verifyPath + "/a", []string{"X-Forwarded-Uri: /b"}, ""},
		{"host sent twice", ingressAddr, verifyPath, []string{"X-Forwarded-Host: docs.example.com", "X-Forwarded-Host: other.example.com"}, ""},
		{"relative X-Original-URL", ingressAddr, verifyPath, []string{"X-Original-URL: /docs"}, ""},
		{"absolute URI", ingressAddr, verifyPath, []string{"X-Original-URI: https://other.example.com/"}, ""},
		{"a path that starts with two slashes is a path", ingressAddr, verifyPath, []string{"X-Original-URI: //other.example.com/"}, "GET gateway.internal:8080 //other.example.com/"},
		{"other scheme", ingressAddr, verifyPath, []string{"X-Forwarded-Proto: javascript"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t)
			rec := v.verify(tt.peer, tt.target, append([]string{withSession}, tt.headers...)...)
			if tt.want == "" {
				if rec.Code != http.StatusForbidden || v.auth.lastView() != "" {
					t.Errorf("got %d after checking %q, want 403 before any session check", rec.Code, v.auth.lastView())
				}
				return
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want 200: %s", rec.Code, rec.Body)
			}
			if got := v.auth.lastView(); got != tt.want {
				t.Errorf("got view %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVerifyHostCheck: the original host goes through the router's Host
// check; one the gateway does not serve gets 403 without a session check.
func TestVerifyHostCheck(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, func(o *proxy.Options) {
		o.CanonicalHost = func(h string) (string, bool) {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			return h, h == "docs.example.com"
		}
	})
	rec := v.verify(ingressAddr, verifyPath, withSession, "X-Forwarded-Host: DOCS.example.com.", "X-Original-URI: /")
	if rec.Code != http.StatusOK || v.auth.lastView() != "GET docs.example.com /" {
		t.Errorf("served host: got %d, view %q, want 200 for docs.example.com", rec.Code, v.auth.lastView())
	}
	rec = v.verify(ingressAddr, verifyPath, withSession, "X-Forwarded-Host: other.example.com", "X-Original-URI: /", "Cookie: ssogw_session=x")
	if rec.Code != http.StatusForbidden || rec.Header().Get(proxy.HeaderUser) != "" {
		t.Errorf("other host: got %d with user %q, want 403 without identity", rec.Code, rec.Header().Get(proxy.HeaderUser))
	}
}

// TestVerifyIdentity: a session gets 200 with the identity headers the
// upstream would get, never the client's own X-Remote-* copies, cacheable
// privately for at most 30 s and never past the session.
func TestVerifyIdentity(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	rec := v.verify(ingressAddr, verifyPath, withSession, "X-Original-URI: /docs",
		"X-Remote-User: mallory", "X-Remote-Admin: true", "X_Remote_Tenant: evil", "X-Remote-Groups-Overage: true")
	if rec.Code != http.StatusOK {
		t.Fatalf("got %d, want 200", rec.Code)
	}
	want := map[string]string{
		proxy.HeaderUser:   alice.NameID,
		proxy.HeaderEmail:  alice.Email,
		proxy.HeaderName:   alice.Name,
		proxy.HeaderGroups: "0b6e2b7c-staff,5f1d9a20-legal",
		proxy.HeaderTenant: "acme",
	}
	for name, w := range want {
		if got := rec.Header().Values(name); len(got) != 1 || got[0] != w {
			t.Errorf("%s: got %q, want %q", name, got, w)
		}
	}
	for name := range rec.Header() {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(name, "_", "-")), "x-remote-") && want[name] == "" {
			t.Errorf("got %s: %q in the answer, want only the session's identity", name, rec.Header()[name])
		}
	}
	if got := rec.Header().Get("Cache-Control"); got != "private, max-age=30" {
		t.Errorf("Cache-Control: got %q, want %q", got, "private, max-age=30")
	}
	if got := rec.Header().Get("Vary"); got != "Cookie" {
		t.Errorf("Vary: got %q, want %q", got, "Cookie")
	}
	rec = v.verify(ingressAddr, verifyPath, "Cookie: ssogw_session=short", "X-Original-URI: /docs")
	if got := rec.Header().Get("Cache-Control"); rec.Code != http.StatusOK || got != "private, max-age=7" {
		t.Errorf("session with 7 s left: got %d %q, want 200 %q", rec.Code, got, "private, max-age=7")
	}
}

// TestVerifyWithoutSession: 401 for what is not a navigation, as the
// proxy answers it; for a navigation, 401 naming the sign-in URL, or the
// redirect itself when the ingress passes the answer to the browser.
func TestVerifyWithoutSession(t *testing.T) {
	t.Parallel()
	const signin = "https://docs.example.com/auth/api/v1/saml/login/acme"
	nginx := []string{"X-Forwarded-Host: docs.example.com", "X-Forwarded-Proto: https", "X-Original-Method: GET"}
	tests := []struct {
		name     string
		target   string
		headers  []string
		code     int
		signin   string // X-Auth-Signin
		location string
	}{
		{"API client", verifyPath, append([]string{"Accept: application/json", "X-Original-URI: /api/x"}, nginx...), http.StatusUnauthorized, "", ""},
		{"fetch from a page", verifyPath, append([]string{navigation, "Sec-Fetch-Mode: cors", "X-Original-URI: /api/x"}, nginx...), http.StatusUnauthorized, "", ""},
		{"navigation", verifyPath, append([]string{navigation, "X-Original-URI: /docs/a?b=c"}, nginx...), http.StatusUnauthorized, signin + "?return_to=%2Fdocs%2Fa%3Fb%3Dc", ""},
		{"navigation, POST is not one", verifyPath, []string{navigation, "X-Original-URI: /docs", "X-Forwarded-Method: POST"}, http.StatusUnauthorized, "", ""},
		{"navigation, redirect=1", verifyPath + "?redirect=1", append([]string{navigation, "X-Forwarded-Uri: /docs"}, nginx[:2]...), http.StatusFound, "", signin + "?return_to=%2Fdocs"},
		{"navigation, Envoy", verifyPath + "/docs?x=1", []string{navigation, "X-Forwarded-Proto: https"}, http.StatusFound, "", "https://gateway.internal:8080/auth/api/v1/saml/login/acme?return_to=%2Fdocs%3Fx%3D1"},
		{"hostile return: double slash", verifyPath, append([]string{navigation, "X-Original-URI: //evil.example/"}, nginx...), http.StatusUnauthorized, signin, ""},
		{"hostile return: backslash", verifyPath, append([]string{navigation, `X-Original-URI: /\evil.example/`}, nginx...), http.StatusUnauthorized, signin, ""},
		{"hostile return: encoded", verifyPath, append([]string{navigation, "X-Original-URI: /%2F%2Fevil.example/"}, nginx...), http.StatusUnauthorized, signin, ""},
		{"hostile return: Envoy", verifyPath + "/%5Cevil.example", []string{navigation, "X-Forwarded-Proto: https"}, http.StatusFound, "", "https://gateway.internal:8080/auth/api/v1/saml/login/acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newVerifier(t)
			rec := v.verify(ingressAddr, tt.target, tt.headers...)
			if rec.Code != tt.code {
				t.Fatalf("got %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if got := rec.Header().Get(proxy.HeaderSignin); got != tt.signin {
				t.Errorf("%s: got %q, want %q", proxy.HeaderSignin, got, tt.signin)
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location: got %q, want %q", got, tt.location)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", got)
			}
			if tt.code == http.StatusUnauthorized && tt.signin == "" && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Cookie ") {
				t.Errorf("WWW-Authenticate: got %q, want the proxy's Cookie challenge", rec.Header().Get("WWW-Authenticate"))
			}
			if rec.Header().Get(proxy.HeaderUser) != "" {
				t.Errorf("got %s %q without a session", proxy.HeaderUser, rec.Header().Get(proxy.HeaderUser))
			}
		})
	}
}

// TestVerifyCountedAndLogged: forward-auth requests are counted by
// outcome and logged with the original request's method and URI.
func TestVerifyCountedAndLogged(t *testing.T) {
	t.Parallel()
	v := newVerifier(t)
	v.verify(ingressAddr, verifyPath, withSession, "X-Original-URI: /docs/report.pdf?token=secret", "X-Original-Method: PROPFIND")
	v.verify(ingressAddr, verifyPath, "X-Original-URI: /docs")
	v.verify(ingressAddr, verifyPath, "X-Original-URI: /docs", "X-Forwarded-Uri: /other")
	wantMetrics(t, v.reg, map[string]int{"verified": 1, "verify_denied": 2}, nil)
	lines := strings.Split(strings.TrimSpace(v.logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d access-log lines, want 3: %s", len(lines), v.logs)
	}
	for _, want := range []string{`"method":"PROPFIND"`, `"path":"/docs/report.pdf"`, `"status":200`, `"outcome":"verified"`, `"kind":"verify"`, `"user":"alice@acme.example"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("got %s, want %s in it", lines[0], want)
		}
	}
	if strings.Contains(v.logs.String(), "secret") {
		t.Errorf("the query reached the log: %s", v.logs)
	}
	if !strings.Contains(lines[1], `"outcome":"verify_denied"`) || !strings.Contains(lines[1], `"status":401`) {
		t.Errorf("got %s, want a 401 verify_denied line", lines[1])
	}
}
