package samlsp

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/samltest"
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
	name := f.p.s().cookies.hostName(sessionCookie)
	v, err := f.p.s().codec.encode(name, Session{Tenant: acme, NameID: "opaque-123", IssuedAt: now, Expires: now + 3600})
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
