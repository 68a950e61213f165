package gateway

import (
	"net/url"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

// TestTenantBase: a tenant's Identifier, Reply URL and Logout URL are on
// public_url, with or without hosts, unless saml_urls_on_host moves them to
// its first host; its Sign on URL is its first host.
func TestTenantBase(t *testing.T) {
	t.Parallel()
	public, err := url.Parse("https://cloudimanage.com:8443")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{PublicURL: public, Tenants: []config.Tenant{
		{ID: "plain"},
		{ID: "hosted", Hosts: []string{"docs.acme.example", "acme.example.net"}},
		{ID: "moved", Hosts: []string{"docs.initech.example"}, SAMLURLsOnHost: true},
	}}
	tests := []struct {
		tenant                     string
		entityID, acs, slo, signOn string
	}{
		{"plain",
			"https://cloudimanage.com:8443/auth/api/v1/saml/login/plain",
			"https://cloudimanage.com:8443/auth/api/v1/saml/login/plain",
			"https://cloudimanage.com:8443/auth/api/v1/saml/slo/plain",
			"https://cloudimanage.com:8443"},
		{"hosted",
			"https://cloudimanage.com:8443/auth/api/v1/saml/login/hosted",
			"https://cloudimanage.com:8443/auth/api/v1/saml/login/hosted",
			"https://cloudimanage.com:8443/auth/api/v1/saml/slo/hosted",
			"https://docs.acme.example:8443"},
		{"moved",
			"https://docs.initech.example:8443/auth/api/v1/saml/login/moved",
			"https://docs.initech.example:8443/auth/api/v1/saml/login/moved",
			"https://docs.initech.example:8443/auth/api/v1/saml/slo/moved",
			"https://docs.initech.example:8443"},
	}
	opts := TenantOptions(cfg, make([]*metadata.IDP, len(cfg.Tenants)))
	for i, tt := range tests {
		t.Run(tt.tenant, func(t *testing.T) {
			t.Parallel()
			o := opts[i]
			r := newReport(cfg, cfg.Tenants[i])
			for _, c := range []struct{ what, got, want string }{
				{"TenantOptions entity ID", o.URLs.EntityID, tt.entityID},
				{"TenantOptions ACS", o.URLs.ACS.String(), tt.acs},
				{"TenantOptions SLO", o.URLs.SLO.String(), tt.slo},
				{"report Identifier", r.Identifier, tt.entityID},
				{"report Reply URL", r.ReplyURL, tt.acs},
				{"report Logout URL", r.LogoutURL, tt.slo},
				{"report Sign on URL", r.SignOnURL, tt.signOn},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
	if got := cfg.PublicURL.String(); got != "https://cloudimanage.com:8443" {
		t.Errorf("public_url changed to %q", got)
	}
}
