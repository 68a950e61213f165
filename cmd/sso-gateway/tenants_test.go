package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestTenantsCommand: `tenants` prints what to type into Entra ID for each
// tenant and its state, and fails when a tenant is not ready.
func TestTenantsCommand(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	cfg := fmt.Sprintf(`
public_url: https://cloudimanage.example
upstream: http://127.0.0.1:3000
sp: {cert_file: sp-cert.pem, key_file: sp-key.pem}
session:
  keys: [{hash_key: %s, block_key: %s}]
tenants:
  - id: acme
    idp_metadata_file: acme.xml
    hosts: [acme.cloudimanage.example]
  - id: initech
    idp_metadata_file: acme.xml
    hosts: [initech.cloudimanage.example]
    saml_urls_on_host: true
  - id: contoso
    idp_metadata_url: %s
    email_domains: [contoso.example]
`, b64n(64), b64n(32), d.metadataURL)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"tenants", "-config", d.writeConfig(t, cfg)}, &stdout, &stderr); err != nil {
		t.Fatalf("tenants: %v; stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"tenant acme (ready: yes)",
		// Hosts do not move the SAML URLs...
		"Identifier (Entity ID): https://cloudimanage.example/auth/api/v1/saml/login/acme",
		"Reply URL (ACS URL):    https://cloudimanage.example/auth/api/v1/saml/login/acme",
		"Sign on URL:            https://acme.cloudimanage.example\n",
		"Logout URL:             https://cloudimanage.example/auth/api/v1/saml/slo/acme",
		// ...unless saml_urls_on_host says so.
		"tenant initech (ready: yes)",
		"Identifier (Entity ID): https://initech.cloudimanage.example/auth/api/v1/saml/login/initech",
		"Reply URL (ACS URL):    https://initech.cloudimanage.example/auth/api/v1/saml/login/initech",
		"Sign on URL:            https://initech.cloudimanage.example\n",
		"tenant contoso (ready: yes)",
		"Identifier (Entity ID): https://cloudimanage.example/auth/api/v1/saml/login/contoso",
		"Logout URL:             https://cloudimanage.example/auth/api/v1/saml/slo/contoso",
		"IdP metadata:           url " + d.metadataURL,
		"Signing certificate:    CN=Microsoft Azure Federated SSO Certificate",
		"(expires in ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	broken := strings.Replace(cfg, d.metadataURL, d.notFoundURL, 1)
	stdout.Reset()
	err := run(t.Context(), []string{"tenants", "-config", d.writeConfig(t, broken)}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 tenants are not ready") {
		t.Fatalf("got %v, want an error counting the unready tenant", err)
	}
	if !strings.Contains(stdout.String(), "tenant contoso (ready: NO)") || !strings.Contains(stdout.String(), "PROBLEM:                tenants[2].idp_metadata_url: fetch IdP metadata: HTTP status 404") {
		t.Errorf("output does not explain the unready tenant:\n%s", stdout.String())
	}
}
