package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
		"Sign on URL:            https://acme.docs.example.com/",
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
	tg.gw.PublicHandler().ServeHTTP(pub, httptest.NewRequest(http.MethodGet, "/tenants", nil))
	if pub.Code != http.StatusUnauthorized {
		t.Errorf("public /tenants: got %d, want 401", pub.Code)
	}
}
