package samlsp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// Hosts of the host-bound tenants in hostsFixture; the fixture's public
// host serves the others.
const (
	publicHost  = "docs.example.com"
	acmeHost    = "docs.acme.example"
	acmeHost2   = "acme-docs.example.net"
	initechHost = "docs.initech.example"
)

// hostsFixture is the fixture with acme and initech owning hosts, their
// SAML URLs on public_url as gateway.TenantBase makes them by default;
// globex and legacy have no hosts.
func hostsFixture(t testing.TB) *fixture {
	t.Helper()
	return newHostsFixture(t, false)
}

// hostsFixtureOnHost is hostsFixture with saml_urls_on_host: acme's and
// initech's SAML URLs on their first host.
func hostsFixtureOnHost(t testing.TB) *fixture {
	t.Helper()
	return newHostsFixture(t, true)
}

func newHostsFixture(t testing.TB, onHost bool) *fixture {
	t.Helper()
	f := newFixture(t)
	f.withTenants(func(o *TenantOptions) {
		switch o.ID {
		case acme:
			o.Hosts = []string{acmeHost, acmeHost2}
		case initech:
			o.Hosts = []string{initechHost}
		default:
			return
		}
		if onHost {
			o.URLs = TenantURLs(&url.URL{Scheme: "https", Host: o.Hosts[0]}, o.ID)
		}
	})
	return f
}

// signInAt completes a login at tenant through its ACS, reached at host,
// and returns the session's Cookie header. globex only takes SP-initiated
// logins.
func (f *fixture) signInAt(host, tenant string) string {
	f.t.Helper()
	var form url.Values
	var cookies []*http.Cookie
	if tenant == globex {
		l := f.startLogin(globex, "")
		form = f.idps[globex].PostForm(f.t, f.response(globex, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState)
		cookies = append(cookies, l.tracker)
	} else {
		form = f.idps[tenant].PostForm(f.t, f.response(tenant, nil), "")
	}
	req := httptest.NewRequest(http.MethodPost, LoginPath+tenant, strings.NewReader(form.Encode()))
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := f.serve(req)
	if rec.Code != http.StatusSeeOther {
		f.t.Fatalf("sign in at %s on %s: got status %d, want 303: %s", tenant, host, rec.Code, rec.Body)
	}
	b := newBrowser()
	b.store(rec)
	return b.cookieHeader()
}

func TestTenantURLsOnTheirHost(t *testing.T) {
	t.Parallel()
	f := hostsFixtureOnHost(t)
	if got, want := f.tenant(acme).ACSURL.String(), "https://"+acmeHost+LoginPath+acme; got != want {
		t.Errorf("acme ACS: got %q, want %q", got, want)
	}
	if got, want := f.tenant(globex).ACSURL.String(), "https://"+publicHost+LoginPath+globex; got != want {
		t.Errorf("globex ACS: got %q, want %q", got, want)
	}
}

// TestSessionsBoundToHosts: a host that belongs to a tenant accepts only
// that tenant's sessions, and a host-bound tenant's sessions are valid only
// on its hosts.
func TestSessionsBoundToHosts(t *testing.T) {
	t.Parallel()
	f := hostsFixtureOnHost(t)
	sessions := map[string]string{
		acme:    f.signInAt(acmeHost, acme),
		initech: f.signInAt(initechHost, initech),
		globex:  f.signInAt(publicHost, globex),
	}
	tests := []struct {
		tenant, host string
		want         bool
	}{
		{acme, acmeHost, true},
		{acme, acmeHost2, true},
		{acme, "DOCS.ACME.EXAMPLE", true},
		{acme, "docs.acme.example:443", true},
		{acme, "docs.acme.example.", true},
		{acme, "Docs.Acme.Example.:8443", true},
		{acme, initechHost, false},
		{acme, publicHost, false},
		{acme, publicHost + ":443", false},
		{acme, "x" + acmeHost, false},
		{acme, acmeHost + ".evil.example", false},
		{acme, "[::1]:8443", false},
		{acme, "", false},
		{initech, initechHost, true},
		{initech, acmeHost, false},
		{initech, publicHost, false},
		{globex, publicHost, true},
		{globex, "DOCS.EXAMPLE.COM.:443", true},
		{globex, acmeHost, false},
		{globex, "Docs.Acme.Example.", false},
		{globex, initechHost + ":8443", false},
	}
	for _, tt := range tests {
		t.Run(tt.tenant+"@"+tt.host, func(t *testing.T) {
			t.Parallel()
			s, ok := f.authenticateHeader(tt.host, sessions[tt.tenant])
			if ok != tt.want {
				t.Fatalf("got a session %v, want %v", ok, tt.want)
			}
			if ok && s.Tenant != tt.tenant {
				t.Errorf("got tenant %q, want %q", s.Tenant, tt.tenant)
			}
		})
	}
}

// TestLoginRedirectOnTenantHost: an anonymous navigation to a tenant's
// host goes straight to that tenant's login, whatever tenant the browser
// remembers; elsewhere the remembered tenant or the organisation page.
func TestLoginRedirectOnTenantHost(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	rememberGlobex, err := f.p.rememberTenantCookie(globex)
	if err != nil {
		t.Fatal(err)
	}
	rememberAcme, err := f.p.rememberTenantCookie(acme)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		host   string
		cookie *http.Cookie
		want   string
	}{
		{"tenant host", acmeHost, nil, "/auth/api/v1/saml/login/acme?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"tenant's second host", acmeHost2, nil, "/auth/api/v1/saml/login/acme?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"tenant host, another tenant remembered", acmeHost, rememberGlobex, "/auth/api/v1/saml/login/acme?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"other tenant's host, acme remembered", initechHost, rememberAcme, "/auth/api/v1/saml/login/initech?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"tenant host with port, upper case, final dot", "DOCS.ACME.EXAMPLE.:8443", rememberGlobex, "/auth/api/v1/saml/login/acme?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"public host, remembered", publicHost, rememberGlobex, "/auth/api/v1/saml/login/globex?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"public host, nothing remembered", publicHost, nil, "/auth/api/v1/saml/select?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"look-alike host", "x" + acmeHost, nil, "/auth/api/v1/saml/select?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/docs/a?b=c", nil)
			req.Host = tt.host
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			rec := httptest.NewRecorder()
			f.p.LoginRedirect(rec, req)
			if got := rec.Header().Get("Location"); rec.Code != http.StatusFound || got != tt.want {
				t.Errorf("got %d %q, want 302 %q", rec.Code, got, tt.want)
			}
		})
	}
}

// TestSwitchOrganisation: the organisation page with ?switch=1 forgets the
// remembered tenant; without it, nothing is forgotten.
func TestSwitchOrganisation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	remember, err := f.p.rememberTenantCookie(globex)
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		req.Header.Set("Accept", "text/html")
		req.AddCookie(remember)
		return f.serve(req)
	}

	rec := get(switchURL)
	if rec.Code != http.StatusOK {
		t.Fatalf("got status %d, want 200", rec.Code)
	}
	var expired *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "__Host-ssogw_tenant" {
			expired = ck
		}
	}
	if expired == nil || expired.MaxAge >= 0 || expired.Value != "" || expired.Path != "/" || !expired.Secure {
		t.Fatalf("got tenant cookie %v, want __Host-ssogw_tenant expired at path / (Secure)", expired)
	}
	// The browser now has no remembered tenant: the next navigation asks.
	next := httptest.NewRequest(http.MethodGet, "/", nil)
	nrec := httptest.NewRecorder()
	f.p.LoginRedirect(nrec, next)
	if got := nrec.Header().Get("Location"); !strings.HasPrefix(got, SelectPath) {
		t.Errorf("after switching: got Location %q, want the organisation page", got)
	}

	if rec := get(SelectPath); len(rec.Result().Cookies()) != 0 {
		t.Errorf("organisation page without switch: got Set-Cookie %q, want none", rec.Header().Values("Set-Cookie"))
	}
}

// TestSwitchLinks: the signed-out page and a failed login's page offer to
// switch organisation.
func TestSwitchLinks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const link = `<a id="switch" href="/auth/api/v1/saml/select?switch=1">Switch organisation</a>`

	rec := f.serve(httptest.NewRequest(http.MethodGet, LogoutPath, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), link) {
		t.Errorf("signed-out page: got %d without %q: %s", rec.Code, link, rec.Body)
	}

	rec = f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.Audience = "https://other.example/app" }), ""))
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), link) {
		t.Errorf("login error page: got %d without %q: %s", rec.Code, link, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `id="retry" href="/auth/api/v1/saml/login/acme"`) {
		t.Errorf("login error page: no Try again link to acme's login: %s", rec.Body)
	}
}

// TestSessionOnlyOnPublicHost: with PublicHost set, as the gateway sets it,
// the session of a tenant without hosts of its own is valid on public_url's
// host, in any spelling, and nowhere else, even if a request for another
// host got this far.
func TestSessionOnlyOnPublicHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.p.Reconfigure(Options{Secure: true, SessionKeys: f.keys, SessionLifetime: 8 * time.Hour, PublicHost: publicHost}); err != nil {
		t.Fatal(err)
	}
	ck := f.signIn()
	cookie := ck.Name + "=" + ck.Value
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{publicHost, true},
		{"DOCS.example.com.:443", true},
		{"evil.example", false},
		{"docs.example.com.evil.example", false},
	} {
		before := testutil.ToFloat64(f.p.metrics.sessionRejections[rejectHost])
		if _, ok := f.authenticateHeader(c.host, cookie); ok != c.ok {
			t.Errorf("session at %q: got %v, want %v", c.host, ok, c.ok)
		}
		if got := testutil.ToFloat64(f.p.metrics.sessionRejections[rejectHost]) - before; !c.ok && got != 1 {
			t.Errorf("session at %q: %v wrong_host rejections counted, want 1", c.host, got)
		}
	}
}
