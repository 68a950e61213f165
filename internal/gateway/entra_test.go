package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// An entra_tenant_id that contradicts the tenant's Entra metadata is a
// tenant problem at start-up, with its key path, rather than a login
// failure for every user later; the other tenants serve.
func TestEntraTenantIDMustMatchMetadata(t *testing.T) {
	t.Parallel()
	idp := samltest.NewIDP(t)
	dir := t.TempDir()
	testfiles.SPKeyPair(t, dir, "sp.crt", "sp.key")
	testfiles.WriteAll(t, dir, map[string][]byte{"idp.xml": idp.MetadataXML()})
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	build := func(entra string) *Gateway {
		doc := fmt.Sprintf(`public_url: https://docs.example.com
upstream: http://127.0.0.1:1
sp: {cert_file: sp.crt, key_file: sp.key}
session: {keys: [{hash_key: %s, block_key: %s}]}
tenants:
  - id: acme
    idp_metadata_file: idp.xml
  - id: other
    idp_metadata_file: idp.xml
    entra_tenant_id: %s
`, key, key, entra)
		cfg, err := config.Parse([]byte(doc), dir, func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		gw, err := Build(context.Background(), cfg, Deps{Registry: prometheus.NewRegistry()})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return gw
	}
	if r := build(strings.ToUpper(idp.TenantID)).TenantReports()[1]; !r.Ready || len(r.Problems) != 0 {
		t.Errorf("the metadata's own directory: got %+v", r)
	}
	r := build("99999999-9999-4999-8999-999999999999").TenantReports()
	if r[1].Ready || len(r[1].Problems) != 1 || !strings.HasPrefix(r[1].Problems[0], "tenants[1].entra_tenant_id: ") || !strings.Contains(r[1].Problems[0], idp.TenantID) {
		t.Errorf("another directory's ID: got ready %v, problems %q", r[1].Ready, r[1].Problems)
	}
	if !r[0].Ready {
		t.Error("the other tenant is not ready")
	}
}
