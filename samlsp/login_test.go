package samlsp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/golden/" + name
	if *update {
		if err := os.MkdirAll("testdata/golden", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestAuthnRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.startLogin(acme, "/x")
	a := l.authn
	tenant := f.tenant(acme)
	checks := []struct{ what, got, want string }{
		{"Issuer", a.Issuer.Value, "https://docs.example.com/auth/api/v1/saml/login/acme"},
		{"AssertionConsumerServiceURL", a.AssertionConsumerServiceURL, "https://docs.example.com/auth/api/v1/saml/login/acme"},
		{"ProtocolBinding", a.ProtocolBinding, crewsaml.HTTPPostBinding},
		{"Destination", a.Destination, tenant.IDP().SSOURL},
		{"NameIDPolicy Format", *a.NameIDPolicy.Format, "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
		{"redirect target", l.redirect.Scheme + "://" + l.redirect.Host + l.redirect.Path, tenant.IDP().SSOURL},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("got %s %q, want %q", c.what, c.got, c.want)
		}
	}
	if a.RequestedAuthnContext != nil || strings.Contains(string(l.authnXML), "RequestedAuthnContext") {
		t.Error("AuthnRequest carries RequestedAuthnContext (Entra answers AADSTS75011 for passwordless users)")
	}
	if a.ForceAuthn != nil || a.IsPassive != nil {
		t.Error("AuthnRequest sets ForceAuthn or IsPassive")
	}
	if a.Signature != nil || l.redirect.Query().Get("Signature") != "" {
		t.Error("AuthnRequest is signed; Entra does not need it and the SP metadata does not say so")
	}
	if !validTrackerKey(l.relayState) {
		t.Errorf("got RelayState %q, want a tracker key", l.relayState)
	}
	ck := l.tracker
	if ck.Name != "__Secure-ssogw_req_"+l.relayState || ck.Path != "/auth/api/v1/saml/login/acme" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteNoneMode {
		t.Errorf("tracking cookie: got %+v, want __Secure-, path-scoped, HttpOnly, Secure, SameSite=None", ck)
	}
	if ck.MaxAge != int(DefaultLoginTimeout/time.Second) {
		t.Errorf("got tracking cookie Max-Age %d, want %d", ck.MaxAge, int(DefaultLoginTimeout/time.Second))
	}
	normal := regexp.MustCompile(`(ID|IssueInstant)="[^"]*"`).ReplaceAll(l.authnXML, []byte(`$1="normalised"`))
	normal = []byte(strings.ReplaceAll(string(normal), tenant.IDP().SSOURL, "https://login.microsoftonline.com/TENANT/saml2"))
	golden(t, "authnrequest.xml", normal)
	if got := testutil.ToFloat64(f.p.metrics.loginStarts.WithLabelValues(acme)); got != 1 {
		t.Errorf("got %v login starts, want 1", got)
	}
}

func TestTrackerCookieOnPlainHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withPublicURL("http://127.0.0.1:8080"))
	l := f.startLogin(acme, "")
	// SameSite=None requires Secure; on http, Lax is all a browser accepts.
	if l.tracker.Name != "ssogw_req_"+l.relayState || l.tracker.Secure || l.tracker.SameSite != http.SameSiteLaxMode {
		t.Errorf("got %+v, want ssogw_req_ cookie, not Secure, SameSite=Lax", l.tracker)
	}
}

func TestLoginHint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct{ hint, want string }{
		{"b.simon@acme.example", "b.simon@acme.example"},
		{"not an email", ""},
		{"a@b.example\r\nX: y", ""},
	} {
		rec := f.serve(httptest.NewRequest(http.MethodGet, LoginPath+acme+"?"+url.Values{"login_hint": {tt.hint}}.Encode(), nil))
		loc, _ := url.Parse(rec.Header().Get("Location"))
		if got := loc.Query().Get("login_hint"); got != tt.want {
			t.Errorf("login_hint %q: got %q at the IdP, want %q", tt.hint, got, tt.want)
		}
	}
}

// TestTrackerPileUp: logins started and abandoned in many tabs do not
// accumulate cookies without bound.
func TestTrackerPileUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var jar []*http.Cookie
	for i := range maxTrackers + 3 {
		req := httptest.NewRequest(http.MethodGet, LoginPath+acme, nil)
		for _, c := range jar {
			req.AddCookie(c)
		}
		rec := f.serve(req)
		for _, c := range rec.Result().Cookies() {
			jar = setCookie(jar, c)
		}
		f.clock.Advance(time.Second)
		if n := len(jar); n > maxTrackers {
			t.Fatalf("after %d logins the browser holds %d tracking cookies, want at most %d", i+1, n, maxTrackers)
		}
	}
}

// setCookie applies a Set-Cookie to a simple jar.
func setCookie(jar []*http.Cookie, c *http.Cookie) []*http.Cookie {
	out := jar[:0:0]
	for _, j := range jar {
		if j.Name != c.Name {
			out = append(out, j)
		}
	}
	if c.MaxAge >= 0 && c.Value != "" {
		out = append(out, c)
	}
	return out
}

func TestSPMetadata(t *testing.T) {
	t.Parallel()
	cert, key := goldenSP(t)
	clock := clockwork.NewFakeClockAt(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p, err := New(Options{Secure: true, SessionKeys: []SessionKey{newSessionKey(t)}, SessionLifetime: time.Hour, Clock: clock, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Parse(readTestdata(t, "entra_federationmetadata.xml"), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), nil)
	if err != nil {
		t.Fatal(err)
	}
	public, _ := url.Parse("https://cloudimanage.example")
	urls := TenantURLs(public, "acme")
	entityID, acs := urls.EntityID, urls.ACS
	ts, err := p.NewTenants([]TenantOptions{{ID: "acme", URLs: urls, IDP: md, SPKey: key, SPCert: cert,
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"}})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTenants(ts)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetadataPath+"acme", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/samlmetadata+xml" {
		t.Fatalf("got %d %q, want 200 application/samlmetadata+xml", rec.Code, rec.Header().Get("Content-Type"))
	}
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal(rec.Body.Bytes(), &ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != entityID {
		t.Errorf("got entityID %q, want %q", ed.EntityID, entityID)
	}
	acsList := ed.SPSSODescriptors[0].AssertionConsumerServices
	if len(acsList) != 1 || acsList[0].Binding != crewsaml.HTTPPostBinding || acsList[0].Location != acs.String() {
		t.Errorf("got ACS endpoints %+v, want exactly one HTTP-POST at %s", acsList, acs)
	}
	golden(t, "sp-metadata.xml", rec.Body.Bytes())
}

func goldenSP(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	cb, _ := pem.Decode(readTestdata(t, "golden-sp.crt"))
	kb, _ := pem.Decode(readTestdata(t, "golden-sp.key"))
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, k.(*rsa.PrivateKey)
}

// TestUnknownTenant: look-alike Customer_IDs are 404 before any SAML
// parsing and never create a metric series.
func TestUnknownTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	valid := f.idps[acme].PostForm(t, f.response(acme, nil), "")
	for _, path := range []string{
		LoginPath + "ACME", LoginPath + "acme/", LoginPath + "%61cme", LoginPath + "acme;x", LoginPath + "acme%00",
		LoginPath + "nobody", LoginPath, MetadataPath + "ACME", MetadataPath + "acme/", PathPrefix + "acs/acme", PathPrefix + "login",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req := httptest.NewRequest(method, path, strings.NewReader(valid.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := f.serve(req)
			if rec.Code != http.StatusNotFound || sessionCookieOf(rec) != nil {
				t.Errorf("%s %s: got %d, want 404 without a session", method, path, rec.Code)
			}
		}
	}
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "tenant" && !isTestTenant(lp.GetValue()) {
					t.Errorf("metric %s has a series for tenant %q", mf.GetName(), lp.GetValue())
				}
			}
		}
	}
	// The valid response was never consumed: it still works at acme.
	if rec := f.postACS(acme, valid); rec.Code != http.StatusSeeOther {
		t.Errorf("got %d, want the untouched response accepted at acme", rec.Code)
	}
}

// TestUnknownOrganisationPage: the 404 for a Customer ID that is not
// configured leads back to the organisation page, and carries the
// support reference as every error page does.
func TestUnknownOrganisationPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{LoginPath + "nobody", SLOPath + "nobody", MetadataPath + "nobody"} {
		t.Run(path, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set("Accept", "text/html")
			rec := f.serve(req)
			body := rec.Body.String()
			if rec.Code != http.StatusNotFound || !strings.Contains(body, "There is no organisation with this Customer ID.") {
				t.Fatalf("got %d, want the 404 page: %s", rec.Code, body)
			}
			if want := `<a class="button" id="select" href="` + SelectPath + `">`; !strings.Contains(body, want) {
				t.Errorf("the page has no link to the organisation page %q: %s", want, body)
			}
			if id := rec.Header().Get("X-Correlation-Id"); id == "" || !strings.Contains(body, `<code id="correlation-id">`+id+`</code>`) {
				t.Errorf("the page lacks the support reference %q: %s", id, body)
			}
		})
	}
}

func isTestTenant(id string) bool {
	for _, t := range allTenants {
		if t == id {
			return true
		}
	}
	return false
}

func TestMethodsNotAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct{ method, path string }{
		{http.MethodPut, LoginPath + acme},
		{http.MethodDelete, LoginPath + acme},
		{http.MethodPost, MetadataPath + acme},
		{http.MethodPost, SelectPath},
		{http.MethodPut, LogoutPath},
	} {
		rec := f.serve(httptest.NewRequest(tt.method, tt.path, nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
			t.Errorf("%s %s: got %d (Allow %q), want 405 with Allow", tt.method, tt.path, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestSelectPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, query  string
		wantLocation string
		wantText     string
	}{
		{"form", "", "", "Work email or Customer ID"},
		{"email", "q=B.Simon%40ACME.example&return_to=%2Fdocs", "/auth/api/v1/saml/login/acme?login_hint=B.Simon%40ACME.example&return_to=%2Fdocs", ""},
		{"customer ID in another case", "q=Globex", "/auth/api/v1/saml/login/globex", ""},
		{"unknown domain", "q=someone%40unknown.example", "", "We don&#39;t recognise the organisation for this email address"},
		{"unknown customer ID", "q=nobody", "", "We don&#39;t recognise this Customer ID"},
		{"subdomain is not the domain", "q=x%40sub.acme.example", "", "We don&#39;t recognise the organisation"},
		{"off-site return_to is dropped", "q=acme&return_to=%2F%2Fevil.example", "/auth/api/v1/saml/login/acme", ""},
		{"echo is escaped", "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "", "&lt;script&gt;alert(1)&lt;/script&gt;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := f.serve(httptest.NewRequest(http.MethodGet, SelectPath+"?"+tt.query, nil))
			if tt.wantLocation != "" {
				if rec.Code != http.StatusFound || rec.Header().Get("Location") != tt.wantLocation {
					t.Fatalf("got %d %q, want 302 %q", rec.Code, rec.Header().Get("Location"), tt.wantLocation)
				}
				return
			}
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Fatalf("got %d, want 200 with %q: %s", rec.Code, tt.wantText, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "<script>") {
				t.Fatal("page echoes an unescaped script tag")
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("page lacks its security headers")
			}
			// A sign-in page, not an error: no support reference.
			if strings.Contains(rec.Body.String(), `id="correlation-id"`) || strings.Contains(rec.Body.String(), rec.Header().Get("X-Correlation-Id")) {
				t.Errorf("the sign-in page shows a support reference: %s", rec.Body)
			}
			// The form ends, through redirects, at the IdP; browsers apply
			// form-action to those redirects.
			if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://login.microsoftonline.com;") {
				t.Errorf("got CSP %q, want form-action to allow the IdPs' origin", csp)
			}
		})
	}
}

func TestLoginRedirect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	remember, err := f.p.rememberTenantCookie(globex)
	if err != nil {
		t.Fatal(err)
	}
	forged := *remember
	forged.Value = strings.Replace(remember.Value, remember.Value[5:9], "AAAA", 1)
	gone, _ := f.p.rememberTenantCookie("retired-tenant")
	tests := []struct {
		name   string
		target string
		cookie *http.Cookie
		want   string
	}{
		{"no remembered tenant", "/docs/a?b=c", nil, "/auth/api/v1/saml/select?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"remembered tenant", "/docs/a?b=c", remember, "/auth/api/v1/saml/login/globex?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"forged remembered tenant", "/", &forged, "/auth/api/v1/saml/select?return_to=%2F"},
		{"tenant no longer configured", "/", gone, "/auth/api/v1/saml/select?return_to=%2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
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

func TestLogoutWithoutSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.serve(httptest.NewRequest(http.MethodGet, LogoutPath, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You have been signed out") || !strings.Contains(rec.Body.String(), switchURL) {
		t.Fatalf("got %d, want the signed-out page with a switch link: %s", rec.Code, rec.Body)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, nil), ""))
	session := sessionCookieOf(rec)
	req := httptest.NewRequest(http.MethodGet, LogoutPath, nil)
	req.AddCookie(session)
	rec = f.serve(req)
	// The IdP's metadata has a SingleLogoutService: the browser goes there
	// with a LogoutRequest.
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("SAMLRequest") == "" || !strings.HasPrefix(loc.String(), f.tenant(acme).IDP().SLOURL) {
		t.Fatalf("got %d to %q, want a LogoutRequest to the IdP", rec.Code, loc)
	}
	var cleared bool
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" && c.MaxAge < 0 && c.Value == "" {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("session cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
	}
}

// TestSignInRd: ingress-nginx's auth-signin appends rd, the absolute URL
// the user asked for. A sign-in entry keeps it only as a local path on this
// request's own scheme and host; anything else signs in to the default page.
func TestSignInRd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const login = "/auth/api/v1/saml/login/acme"
	tests := []struct {
		name, rd, want string
	}{
		{"own host", "https://example.com/docs/a?b=c", login + "?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"own host, other case and final dot", "https://EXAMPLE.com./docs", login + "?return_to=%2Fdocs"},
		{"other host", "https://evil.example/docs", login},
		{"other port", "https://example.com:8443/docs", login},
		{"other scheme", "http://example.com/docs", login},
		{"javascript", "javascript:alert(1)", login},
		{"scheme-relative", "//evil.example/docs", login},
		{"local path is not an absolute URL", "/docs", login},
		{"user info", "https://evil.example@example.com/docs", login},
		{"double slash path", "https://example.com//evil.example/", login},
		{"backslash path", `https://example.com/\evil.example/`, login},
		{"encoded double slash", "https://example.com/%2F%2Fevil.example/", login},
		{"double-encoded double slash", "https://example.com/%252F%252Fevil.example/", login},
		{"encoded backslash", "https://example.com/%5Cevil.example", login},
		{"tab in the path", "https://example.com/\t/evil.example", login},
		{"host with backslash", `https://example.com\@evil.example/`, login},
		{"return_to wins", "https://example.com/other", login + "?return_to=%2Fdocs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := url.Values{"q": {"acme"}, "rd": {tt.rd}}
			if tt.name == "return_to wins" {
				q.Set("return_to", "/docs")
			}
			rec := f.serve(httptest.NewRequest(http.MethodGet, "https://example.com"+SelectPath+"?"+q.Encode(), nil))
			if got := rec.Header().Get("Location"); rec.Code != http.StatusFound || got != tt.want {
				t.Errorf("got %d %q, want 302 %q", rec.Code, got, tt.want)
			}
		})
	}
}

// TestSigninEntry: the ingresses' sign-in redirect starts the login the
// proxy would start for a navigation without a session, returning to rd
// only when it is this host's own.
func TestSigninEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	remember, err := f.p.rememberTenantCookie("acme")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, rd string
		remembered       bool
		wantCode         int
		want             string
	}{
		{"own host", http.MethodGet, "https://example.com/docs/a?b=c", false, http.StatusFound, SelectPath + "?return_to=%2Fdocs%2Fa%3Fb%3Dc"},
		{"other host", http.MethodGet, "https://evil.example/docs", false, http.StatusFound, SelectPath},
		{"scheme-relative", http.MethodGet, "//evil.example/docs", false, http.StatusFound, SelectPath},
		{"remembered tenant", http.MethodGet, "https://example.com/docs", true, http.StatusFound, LoginPath + "acme?return_to=%2Fdocs"},
		{"POST", http.MethodPost, "https://example.com/docs", false, http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "https://example.com"+SigninPath+"?"+url.Values{"rd": {tt.rd}}.Encode(), nil)
			if tt.remembered {
				r.AddCookie(remember)
			}
			rec := f.serve(r)
			if got := rec.Header().Get("Location"); rec.Code != tt.wantCode || got != tt.want {
				t.Errorf("got %d %q, want %d %q", rec.Code, got, tt.wantCode, tt.want)
			}
		})
	}
}
