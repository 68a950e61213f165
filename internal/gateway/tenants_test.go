package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

func TestTenantsPage(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "    hosts: [acme.docs.example.com]\n")
	rec := get(t, tg.gw.AdminHandler(), "/tenants")
	for _, want := range []string{
		"tenant acme (ready: yes)",
		// Hosts do not move the SAML URLs.
		"Identifier (Entity ID): https://docs.example.com/auth/api/v1/saml/login/acme",
		"Reply URL (ACS URL):    https://docs.example.com/auth/api/v1/saml/login/acme",
		// As Entra's tutorial writes it: no trailing slash.
		"Sign on URL:            https://acme.docs.example.com\n",
		"IdP metadata:           file ",
		"Last loaded:",
		"Signing certificate:    CN=Microsoft Azure Federated SSO Certificate",
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/tenants lacks %q:\n%s", want, rec.Body)
		}
	}
	rec = get(t, tg.gw.AdminHandler(), "/tenants?format=json")
	var reports []TenantReport
	if err := json.Unmarshal(rec.Body.Bytes(), &reports); err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || !reports[0].Ready || len(reports[0].Certificates) != 1 || reports[0].ReplyURL != reports[0].Identifier {
		t.Errorf("got %+v, want one ready tenant with one certificate", reports)
	}
	// The public listener never serves it.
	pub := httptest.NewRecorder()
	tg.gw.PublicHandler().ServeHTTP(pub, publicRequest(http.MethodGet, "/tenants", nil))
	if pub.Code != http.StatusUnauthorized {
		t.Errorf("public /tenants: got %d, want 401", pub.Code)
	}
}

// TestTenantReportsShowWhatIsWrong: `sso-gateway tenants` describes a
// tenant whose metadata is refused for its dates (its certificates, the
// IdP's entity ID and sign-in URL), lists its problems, and its JSON form
// has [] for empty lists, never null.
func TestTenantReportsShowWhatIsWrong(t *testing.T) {
	t.Parallel()
	e := newIsoEnv(t, "acme", "expired", "later")
	now := time.Now()
	for id, validity := range map[string][2]time.Time{
		"expired": {now.AddDate(-2, 0, 0), now.AddDate(0, 0, -17).Add(-time.Hour)},
		"later":   {now.AddDate(0, 0, 3).Add(time.Hour), now.AddDate(3, 0, 0)},
	} {
		idp := e.idps[id]
		idp.Key, idp.Cert = samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, validity[0], validity[1])
		e.writeMetadata(id)
	}
	e.writeIsoConfig(e.ids...)
	cfg, err := config.Load(e.configPath(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	reports := LoadTenantReports(t.Context(), cfg, nil, now)
	var text strings.Builder
	WriteTenantReports(&text, reports, now)
	for _, want := range []string{
		"tenant expired (ready: NO)\n  PROBLEM:                tenants[1].idp_metadata_file: unusable IdP metadata: no signing certificate is valid now",
		"(EXPIRED 17 days ago)",
		"IdP entity ID:          https://sts.windows.net/" + e.idps["expired"].TenantID + "/",
		"IdP sign-in URL:        https://login.microsoftonline.com/" + e.idps["expired"].TenantID + "/saml2",
		"tenant later (ready: NO)",
		"(NOT VALID YET: valid in 3 days)",
		"tenant acme (ready: yes)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	var js strings.Builder
	if err := WriteTenantReportsJSON(&js, reports); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "null") {
		t.Errorf("JSON has null:\n%s", js.String())
	}
	for _, want := range []string{`"hosts": []`, `"email_domains": []`, `"problems": []`, `"ready": false`} {
		if !strings.Contains(js.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js.String())
		}
	}
}
