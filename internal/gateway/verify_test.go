package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// verifyRequest is a forward-auth request from peer, whose own Host is
// host, with headers "Name: value".
func verifyRequest(h http.Handler, peer, host, target string, session *http.Cookie, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = peer
	req.Host = host
	if session != nil {
		req.AddCookie(session)
	}
	for _, hd := range headers {
		name, value, _ := strings.Cut(hd, ": ")
		req.Header.Add(name, value)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestVerifyThroughRouter: the router sends forward-auth requests to the
// proxy's session check whatever their own Host, holds the original host
// to the tenant binding, and believes the ingress's headers only from a
// trusted proxy.
func TestVerifyThroughRouter(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(),
		"  - id: globex\n    idp_metadata_file: idp.xml\n    hosts: [docs.globex.example]\ntrusted_proxies: [192.0.2.0/24]\n")
	session := tg.signIn(t) // acme's, valid on docs.example.com
	const (
		ingress  = "192.0.2.10:5000"
		stranger = "203.0.113.9:5000"
	)
	h := tg.gw.PublicHandler()
	tests := []struct {
		name, peer, host string
		headers          []string
		code             int
		tenant           string
	}{
		{"nginx, public host", ingress, "127.0.0.1:8080", []string{"X-Forwarded-Host: docs.example.com", "X-Original-URI: /docs"}, http.StatusOK, "acme"},
		{"host in another spelling", ingress, "127.0.0.1:8080", []string{"X-Forwarded-Host: DOCS.example.com.:443", "X-Original-URI: /docs"}, http.StatusOK, "acme"},
		{"another tenant's host", ingress, "127.0.0.1:8080", []string{"X-Forwarded-Host: docs.globex.example", "X-Original-URI: /docs"}, http.StatusUnauthorized, ""},
		{"ingress-nginx, another tenant's host", ingress, "docs.example.com", []string{"X-Original-URL: https://docs.globex.example/docs"}, http.StatusUnauthorized, ""},
		{"a host not served", ingress, "docs.example.com", []string{"X-Forwarded-Host: evil.example", "X-Original-URI: /docs"}, http.StatusForbidden, ""},
		{"not a host", ingress, "docs.example.com", []string{"X-Forwarded-Host: docs.example.com,evil.example"}, http.StatusForbidden, ""},
		{"stranger naming the public host from a tenant's host", stranger, "docs.globex.example", []string{"X-Forwarded-Host: docs.example.com", "X-Original-URL: https://docs.example.com/"}, http.StatusUnauthorized, ""},
		{"stranger: own host is what counts", stranger, "docs.example.com", []string{"X-Forwarded-Host: docs.globex.example"}, http.StatusOK, "acme"},
		{"stranger at the gateway's address", stranger, "127.0.0.1:8080", []string{"X-Forwarded-Host: docs.example.com"}, http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := verifyRequest(h, tt.peer, tt.host, samlsp.VerifyPath, session, tt.headers...)
			if rec.Code != tt.code || rec.Header().Get("X-Remote-Tenant") != tt.tenant {
				t.Errorf("got %d with tenant %q, want %d with %q: %s", rec.Code, rec.Header().Get("X-Remote-Tenant"), tt.code, tt.tenant, rec.Body)
			}
		})
	}
	if n := tg.hits.Load(); n != 0 {
		t.Errorf("got %d requests upstream, want none: forward auth never proxies", n)
	}
}

// TestVerifyTakesNoLoginSlot: the forward-auth endpoint is a per-request
// hot path, not a login: with every slot of the login pools held, it still
// answers.
func TestVerifyTakesNoLoginSlot(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "trusted_proxies: [127.0.0.1]\nlimits: {login_concurrency_per_client: 1, login_concurrency: 1}\n")
	session := tg.signIn(t)
	addr := serveHolding(t, tg)
	heldACS(t, addr, "198.51.100.1")
	waitInFlight(t, tg, poolACS, 1)
	held(t, addr, http.MethodGet, samlsp.LogoutPath, "198.51.100.1", "")
	waitInFlight(t, tg, poolPages, 1)
	status, _ := fetch(t, http.MethodGet, addr, samlsp.VerifyPath, "", session)
	if status != http.StatusOK {
		t.Errorf("got %d with the login pools full, want 200", status)
	}
}

// TestVerifyExpiryAndPolicy: the answer is never cached past the session,
// an expired session is refused, and a reload's groups policy applies at
// once.
func TestVerifyExpiryAndPolicy(t *testing.T) {
	t.Parallel()
	e := newIsoEnv(t, "acme")
	e.writeIsoConfig("acme")
	e.build()
	c, rec := e.signInAt("acme")
	if c == nil {
		t.Fatalf("sign in: got %d: %s", rec.Code, rec.Body)
	}
	h := e.gw.PublicHandler()
	rec = verifyRequest(h, "203.0.113.9:1", testPublicHost, samlsp.VerifyPath, c)
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "private, max-age=30" {
		t.Fatalf("got %d %q, want 200 with max-age=30", rec.Code, rec.Header().Get("Cache-Control"))
	}
	e.extra["acme"] = "    allowed_groups: [no-such-group]\n"
	e.writeIsoConfig("acme")
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec = verifyRequest(h, "203.0.113.9:1", testPublicHost, samlsp.VerifyPath, c, "Accept: application/json")
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("X-Remote-User") != "" {
		t.Errorf("after a reload that requires a group: got %d (user %q), want 401", rec.Code, rec.Header().Get("X-Remote-User"))
	}
}

// TestVerifyMaxAgeNearExpiry: with a session about to expire, the answer
// may be cached until then only, and not at all afterwards.
func TestVerifyMaxAgeNearExpiry(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	clock := clockwork.NewFakeClockAt(time.Now())
	gw, err := Build(context.Background(), tg.cfg, Deps{Registry: prometheus.NewRegistry(), Version: "test", Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	tenant, _ := gw.Provider().CurrentTenants().Get("acme")
	form := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
	req := publicRequest(http.MethodPost, samlsp.LoginPath+"acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	gw.PublicHandler().ServeHTTP(rec, req)
	var session *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("sign in: got %d: %s", rec.Code, rec.Body)
	}
	clock.Advance(tg.cfg.Session.Lifetime - 12*time.Second)
	rec = verifyRequest(gw.PublicHandler(), "203.0.113.9:1", testPublicHost, samlsp.VerifyPath, session)
	if got := rec.Header().Get("Cache-Control"); rec.Code != http.StatusOK || got != "private, max-age=12" {
		t.Errorf("12 s before expiry: got %d %q, want 200 %q", rec.Code, got, "private, max-age=12")
	}
	clock.Advance(13 * time.Second)
	rec = verifyRequest(gw.PublicHandler(), "203.0.113.9:1", testPublicHost, samlsp.VerifyPath, session)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("after expiry: got %d %q, want 401 no-store", rec.Code, rec.Header().Get("Cache-Control"))
	}
}
