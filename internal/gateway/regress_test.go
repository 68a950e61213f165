package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestRegressionRoleValidUntilBreaksLogins: a refresh whose IDPSSODescriptor
// has a past validUntil is refused and the good document kept; accepting
// it made every login fail.
func TestRegressionRoleValidUntilBreaksLogins(t *testing.T) {
	idp := samltest.NewIDP(t)
	e := newRolloverEnv(t, idp)
	e.mustLogin(t, "before", 1, nil, nil)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(idp.MetadataXML()[3:]); err != nil {
		t.Fatal(err)
	}
	doc.Root().FindElement("./IDPSSODescriptor").CreateAttr("validUntil", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	b, _ := doc.WriteToBytes()
	e.md.publish(b, 0)
	if err := e.gw.Refresher().RefreshNow(t.Context(), "acme"); err == nil {
		t.Error("a document whose IdP role has expired was accepted")
	}
	ok, rec := e.login(t, nil, nil)
	_, _, byReason := e.logins(t)
	if !ok {
		t.Errorf("login after the refresh: got %d %q (failures %v), want a session (the refresh should have been refused, keeping the last good document)", rec.Code, rec.Body.String()[:0], byReason)
	}
}

// TestRegressionReloadIntervalDropsMetadata: a reload that only changes
// idp_metadata_refresh_interval keeps the tenant's metadata, even while
// its URL is down.
func TestRegressionReloadIntervalDropsMetadata(t *testing.T) {
	idp := samltest.NewIDP(t)
	e := newRolloverEnv(t, idp)
	e.mustLogin(t, "before", 1, nil, nil)
	e.md.publish([]byte("down"), http.StatusServiceUnavailable)
	cfg := *e.gw.Config()
	cfg.Tenants = append([]config.Tenant(nil), cfg.Tenants...)
	cfg.Tenants[0].MetadataRefresh = 30 * time.Minute
	if err := e.gw.Reload(t.Context(), &cfg); err != nil {
		t.Fatal(err)
	}
	e.gw.Refresher().WaitFirst(t.Context())
	if rec := get(t, e.gw.AdminHandler(), "/readyz"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "1 of 1 tenants ready") {
		t.Errorf("/readyz after the reload: got %d %q, want the tenant still ready", rec.Code, rec.Body)
	}
	if ok, rec := e.login(t, nil, nil); !ok {
		t.Errorf("login after a reload that changed only the refresh interval: got %d, want a session", rec.Code)
	}
}
