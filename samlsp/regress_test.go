package samlsp

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestLoginLogGivesReason: the audit line carries crewjam's real reason,
// which its error message hides.
func TestLoginLogGivesReason(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var buf bytes.Buffer
	f.p.log = slog.New(slog.NewTextHandler(&buf, nil))
	l := f.startLogin(acme, "")
	f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		r.Audience = "https://other.example/app"
	}), l.relayState), l.tracker)
	if strings.Contains(buf.String(), `error="Authentication failed"`) || !strings.Contains(buf.String(), "AudienceRestriction") {
		t.Errorf("got log %q, want crewjam's reason", buf.String())
	}
}

// TestLogoutNameIDFormat: the LogoutRequest names the user exactly as the
// assertion did, without a Format when the assertion had none.
func TestLogoutNameIDFormat(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now().Unix()
	name := f.p.currentSettings().cookies.hostName(sessionCookie)
	v, err := f.p.currentSettings().codec.encode(name, Session{Tenant: acme, NameID: "opaque-123", IssuedAt: now, Expires: now + 3600})
	if err != nil {
		t.Fatal(err)
	}
	lo := f.startSPLogout(&http.Cookie{Name: name, Value: v})
	if got := lo.request.NameID.Format; got != "" {
		t.Errorf("got NameID Format %q, want none", got)
	}
}

// TestSLOWithoutSLOURL: a tenant built without an SLO URL has no SLO
// endpoint (404), rather than failing on it.
func TestSLOWithoutSLOURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	to := tenantOptions(f, acme)
	to.URLs.SLO = nil
	ts, err := f.p.NewTenants([]TenantOptions{to})
	if err != nil {
		t.Fatal(err)
	}
	f.p.SetTenants(ts)
	key := newTrackerKey()
	req := httptest.NewRequest(http.MethodGet, SLOPath+acme+"?"+url.Values{"SAMLResponse": {"eA=="}, "RelayState": {key}}.Encode(), nil)
	req.AddCookie(&http.Cookie{Name: "__Secure-ssogw_logout_" + key, Value: "x"})
	if rec := f.serve(req); rec.Code != http.StatusNotFound {
		t.Errorf("got %d, want 404", rec.Code)
	}
}

// TestCompressibleSessionTooBig: a session that compresses into the
// cookies but would inflate past what a request may decode fails the
// login, rather than signing in and then never authenticating.
func TestCompressibleSessionTooBig(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	groups := make([]string, 1000)
	for i := range groups {
		groups[i] = fmt.Sprintf("CN=Matter-Team-%04d,OU=Groups,OU=Legal,DC=corp,DC=contoso,DC=com", i)
	}
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, groups...)), ""))
	if rec.Code == http.StatusSeeOther {
		if _, ok := f.authenticateChunks(sessionChunks(t, rec)); !ok {
			t.Fatal("the login succeeded but its session does not authenticate")
		}
		return
	}
	if rec.Code != http.StatusForbidden || f.logins(acme, flowIDP, "failure", ReasonOther) != 1 {
		t.Fatalf("got %d, want a 403 counted as reason other", rec.Code)
	}
}

// TestHostTenantLoginMovesToItsHost: with saml_urls_on_host, a login for a
// tenant with hosts of its own, started on another host (the organisation
// page, a remembered tenant), moves to the tenant's host first, so that the
// tracking cookie is where the IdP posts; the login then completes there.
func TestHostTenantLoginMovesToItsHost(t *testing.T) {
	t.Parallel()
	f := hostsFixtureOnHost(t)
	req := httptest.NewRequest(http.MethodGet, LoginPath+acme+"?return_to=%2Fdocs", nil)
	req.Host = "docs.example.com"
	rec := f.serve(req)
	want := "https://" + acmeHost + LoginPath + acme + "?return_to=%2Fdocs"
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != want {
		t.Fatalf("got %d %q, want 302 %q", rec.Code, rec.Header().Get("Location"), want)
	}
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, trackerCookie) {
			t.Errorf("a tracking cookie was set on the wrong host: %s", c.Name)
		}
	}
	req = httptest.NewRequest(http.MethodGet, LoginPath+acme+"?return_to=%2Fdocs", nil)
	req.Host = acmeHost
	rec = f.serve(req)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("SAMLRequest") == "" {
		t.Fatalf("on the tenant's host: got %d %q, want the redirect to the IdP", rec.Code, loc)
	}
	var tracker *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if strings.Contains(c.Name, trackerCookie) {
			tracker = c
		}
	}
	authn := &crewsaml.AuthnRequest{}
	if err := xml.Unmarshal(inflate(t, loc.Query().Get("SAMLRequest")), authn); err != nil {
		t.Fatal(err)
	}
	form := f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.InResponseTo = authn.ID }), loc.Query().Get("RelayState"))
	post := httptest.NewRequest(http.MethodPost, LoginPath+acme, strings.NewReader(form.Encode()))
	post.Host = acmeHost
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	post.AddCookie(&http.Cookie{Name: tracker.Name, Value: tracker.Value})
	if rec := f.serve(post); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/docs" {
		t.Fatalf("ACS on the tenant's host: got %d %q, want 303 /docs: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
}

// TestPolicyChangeAppliesToSessions: a new tenant configuration applies
// to sessions made before it: a group restriction ends sessions that do
// not pass it, and a header no longer configured is no longer sent.
func TestPolicyChangeAppliesToSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withTenants(func(o *TenantOptions) {
		o.Headers = map[string]string{"X-Remote-Department": "department"}
	})
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.Attributes = append(samltest.DefaultAttributes("x", r.NameID, "B Simon", "g-staff"), samltest.Attribute{Name: "department", Values: []string{"Legal"}})
	}), ""))
	session := sessionCookieOf(rec)
	if s, ok := f.authenticate(session); !ok || !slices.Equal(s.Headers["X-Remote-Department"], []string{"Legal"}) {
		t.Fatalf("got %+v, want a session with the department header", s)
	}

	f.withTenants(func(o *TenantOptions) { o.Headers = nil })
	if s, ok := f.authenticate(session); !ok || len(s.Headers) != 0 {
		t.Errorf("after removing the header mapping: got %+v, want the session without it", s)
	}
	f.withTenants(func(o *TenantOptions) { o.AllowedGroups = []string{"g-staff"} })
	if _, ok := f.authenticate(session); !ok {
		t.Error("a session in the allowed group ended")
	}
	f.withTenants(func(o *TenantOptions) { o.AllowedGroups = []string{"g-partners"} })
	if _, ok := f.authenticate(session); ok {
		t.Error("a session outside the new allowed groups still authenticates")
	}
}
