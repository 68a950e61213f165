package gateway

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// spKeyPairCommand is the README's one line that makes the SP key pair.
const spKeyPairCommand = `openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=sso-gateway SP" -keyout sp.key -out sp.crt`

// TestOpenSSLKeyPair runs the README's openssl command and builds a gateway
// with the key pair it makes: the certificate is the one the SP metadata
// publishes.
func TestOpenSSLKeyPair(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is not installed (%v): this test checks the documented command that makes the SP key pair", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", spKeyPairCommand)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", spKeyPairCommand, err, out)
	}
	for _, doc := range []string{"README.md", "deploy/CONFIGURATION.md"} {
		b, err := os.ReadFile("../../" + doc)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), spKeyPairCommand) {
			t.Errorf("%s does not show the command tested here:\n%s", doc, spKeyPairCommand)
		}
	}

	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	testfiles.WriteAll(t, dir, map[string][]byte{
		"idp.xml": samltest.NewIDP(t).MetadataXML(),
		"config.yaml": []byte(fmt.Sprintf(`public_url: https://docs.example.com
upstream: http://127.0.0.1:3000
sp: {cert_file: sp.crt, key_file: sp.key}
session:
  keys: [{hash_key: %s, block_key: %s}]
tenants:
  - id: acme
    idp_metadata_file: idp.xml
`, key, key)),
	})
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config with the openssl key pair: %v", err)
	}
	if got := cfg.SP.Key.N.BitLen(); got != 3072 {
		t.Errorf("SP key: got %d bits, want 3072", got)
	}
	gw, err := Build(context.Background(), cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("build with the openssl key pair: %v", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "sp.crt"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("sp.crt is not PEM: %s", certPEM)
	}
	tenant, _ := gw.Provider().CurrentTenants().Get("acme")
	published := ""
	for _, sp := range tenant.Metadata().SPSSODescriptors {
		for _, kd := range sp.KeyDescriptors {
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				published = strings.Join(strings.Fields(c.Data), "")
			}
		}
	}
	if want := base64.StdEncoding.EncodeToString(block.Bytes); published != want {
		t.Errorf("SP metadata publishes certificate %.40q..., want sp.crt's %.40q...", published, want)
	}
}
