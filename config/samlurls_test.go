package config_test

import (
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
)

// TestSAMLURLsOnHost: saml_urls_on_host is off unless set, with or without
// hosts, and needs hosts when it is set.
func TestSAMLURLsOnHost(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name  string
		edits []edit
		want  bool
		probs []problem
	}{
		{"no hosts", nil, false, nil},
		{"hosts without the key", []edit{{"tenants[0].hosts", []any{"docs.acme.example"}}}, false, nil},
		{"hosts, false", []edit{{"tenants[0].hosts", []any{"docs.acme.example"}}, {"tenants[0].saml_urls_on_host", false}}, false, nil},
		{"hosts, true", []edit{{"tenants[0].hosts", []any{"docs.acme.example"}}, {"tenants[0].saml_urls_on_host", true}}, true, nil},
		{"false without hosts", []edit{{"tenants[0].saml_urls_on_host", false}}, false, nil},
		{"true without hosts", []edit{{"tenants[0].saml_urls_on_host", true}}, false,
			[]problem{{"tenants[0].saml_urls_on_host", "needs hosts"}}},
		{"true with an empty list", []edit{{"tenants[0].hosts", []any{}}, {"tenants[0].saml_urls_on_host", true}}, false,
			[]problem{{"tenants[0].saml_urls_on_host", "needs hosts"}}},
		{"not a boolean", []edit{{"tenants[0].hosts", []any{"docs.acme.example"}}, {"tenants[0].saml_urls_on_host", "sometimes"}}, false,
			[]problem{{"tenants[0].saml_urls_on_host", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			if tt.probs != nil {
				checkProblems(t, err, tt.probs)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, listProblems(config.Problems(err)))
			}
			if got := cfg.Tenants[0].SAMLURLsOnHost; got != tt.want {
				t.Errorf("Tenants[0].SAMLURLsOnHost: got %t, want %t", got, tt.want)
			}
			if cfg.Tenants[1].SAMLURLsOnHost {
				t.Error("Tenants[1].SAMLURLsOnHost: got true, want false")
			}
		})
	}
}
