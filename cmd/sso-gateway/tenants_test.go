package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// TestTenantsCommand: `tenants` prints what to type into Entra ID for each
// tenant and its state, and fails when a tenant is not ready.
func TestTenantsCommand(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	cfg := baseConfig("https://cloudimanage.example", fmt.Sprintf(`tenants:
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
`, d.metadataURL))
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

// TestTenantsJSON: `tenants -json` prints one object per tenant, for
// scripts, with [] for empty lists and the problems of a tenant that is
// not ready.
func TestTenantsJSON(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	cfg := baseConfig("https://cloudimanage.example", `tenants:
  - id: acme
    idp_metadata_file: acme.xml
  - id: broken
    idp_metadata_file: nowhere.xml
`)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"tenants", "-json", "-config", d.writeConfig(t, cfg)}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 tenants are not ready") {
		t.Fatalf("got %v, want the unready tenant counted", err)
	}
	if strings.Contains(stdout.String(), "null") {
		t.Errorf("JSON has null:\n%s", stdout.String())
	}
	var reports []struct {
		ID         string   `json:"id"`
		Identifier string   `json:"identifier"`
		Hosts      []string `json:"hosts"`
		Problems   []string `json:"problems"`
		Ready      bool     `json:"ready"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &reports); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout.String())
	}
	if len(reports) != 2 || !reports[0].Ready || reports[0].Hosts == nil || len(reports[0].Problems) != 0 ||
		reports[0].Identifier != "https://cloudimanage.example/auth/api/v1/saml/login/acme" {
		t.Errorf("acme: got %+v", reports)
	}
	if len(reports) == 2 && (reports[1].Ready || len(reports[1].Problems) != 1 || !strings.Contains(reports[1].Problems[0], "nowhere.xml does not exist")) {
		t.Errorf("broken: got %+v", reports[1])
	}
}

// TestCheckPrevious: with -previous, check warns of every tenant whose
// Entra set-up values the new configuration changes, and still passes a
// configuration that is otherwise sound; a tenant problem fails it and says
// which tenant it stops.
func TestCheckPrevious(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	doc := func(publicURL, extra string) string {
		return baseConfig(publicURL, `tenants:
  - id: acme
    idp_metadata_file: acme.xml
    hosts: [acme.cloudimanage.example]
`+extra)
	}
	old := filepath.Join(t.TempDir(), "old.yaml")
	testfiles.Write(t, old, []byte(doc("https://cloudimanage.example", "")))
	// Adding hosts changed nothing; opting in, or a new public_url, does.
	for _, c := range []struct {
		name, publicURL, extra string
		warnings               []string
	}{
		{"unchanged", "https://CloudIManage.example:443", "", nil},
		{"opted in", "https://cloudimanage.example", "    saml_urls_on_host: true\n", []string{
			"tenant acme: Identifier changes from https://cloudimanage.example/auth/api/v1/saml/login/acme to https://acme.cloudimanage.example/auth/api/v1/saml/login/acme",
			"tenant acme: Reply URL changes from",
			"tenant acme: Logout URL changes from",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			path := d.writeConfig(t, doc(c.publicURL, c.extra))
			if err := run(t.Context(), []string{"check", "-config", path, "-previous", old}, &stdout, &stderr); err != nil {
				t.Fatalf("check: %v\n%s", err, stderr.String())
			}
			for _, w := range c.warnings {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if c.warnings == nil && strings.Contains(stderr.String(), "changes from") {
				t.Errorf("stderr warns of a change:\n%s", stderr.String())
			}
			if c.warnings != nil && !strings.Contains(stderr.String(), "AADSTS700016") {
				t.Errorf("the warning does not say what breaks:\n%s", stderr.String())
			}
		})
	}

	var stdout, stderr bytes.Buffer
	path := d.writeConfig(t, doc("https://cloudimanage.example", "  - id: broken\n    idp_metadata_file: nowhere.xml\n"))
	if err := run(t.Context(), []string{"check", "-config", path}, &stdout, &stderr); err == nil {
		t.Fatal("check passed a configuration with a tenant problem")
	}
	if !strings.Contains(stderr.String(), "nowhere.xml does not exist (tenant broken only)") {
		t.Errorf("stderr does not name the tenant the problem stops:\n%s", stderr.String())
	}
}
