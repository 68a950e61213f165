package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/samltest"
)

// An entra_tenant_id that contradicts the tenant's Entra metadata is a
// configuration problem at start-up, with its key path, rather than a
// login failure for every user later.
func TestEntraTenantIDMustMatchMetadata(t *testing.T) {
	t.Parallel()
	idp := samltest.NewIdP(t)
	dir := t.TempDir()
	writeSPKeyPair(t, dir)
	writeFiles(t, dir, map[string][]byte{"idp.xml": idp.MetadataXML()})
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	build := func(entra string) error {
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
		_, err = Build(context.Background(), cfg, Deps{Registry: prometheus.NewRegistry()})
		return err
	}
	if err := build(strings.ToUpper(idp.TenantID)); err != nil {
		t.Errorf("the metadata's own directory: %v", err)
	}
	err := build("99999999-9999-4999-8999-999999999999")
	if err == nil {
		t.Fatal("another directory's ID: built")
	}
	ps := config.Problems(err)
	if len(ps) != 1 || ps[0].Path != "tenants[1].entra_tenant_id" || !strings.Contains(ps[0].Msg, idp.TenantID) {
		t.Errorf("problems: %v", err)
	}
}
