// Package scalegen writes a gateway configuration with many tenants, each
// with its own Entra-shaped IdP metadata file, to measure start-up, reload
// and memory at the scale of a large customer base.
package scalegen

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// Options describe the generated configuration.
type Options struct {
	Dir      string // must exist
	Tenants  int
	Upstream string // default http://127.0.0.1:8080
	// Keys is how many distinct IdP signing keys the tenants share; key
	// generation is slow and the gateway's cost does not depend on it.
	// Zero means 4.
	Keys int
}

// Result is a written configuration.
type Result struct {
	ConfigPath string
	keys       []*selfsigned.KeyPair
}

// IdP returns tenant i's IdP, which can sign responses for tests.
func (r *Result) IDP(i int) *samltest.IDP {
	kp := r.keys[i%len(r.keys)]
	return &samltest.IDP{TenantID: guid(i), Key: kp.Key, Cert: kp.Cert}
}

// TenantID is the Customer_ID of tenant i.
func TenantID(i int) string { return fmt.Sprintf("customer-%05d", i) }

// Write writes the configuration.
func Write(o Options) (*Result, error) {
	if o.Upstream == "" {
		o.Upstream = "http://127.0.0.1:8080"
	}
	if o.Keys <= 0 {
		o.Keys = 4
	}
	keys := make([]*selfsigned.KeyPair, o.Keys)
	for i := range keys {
		kp, err := selfsigned.New(selfsigned.Options{CommonName: "Microsoft Azure Federated SSO Certificate"})
		if err != nil {
			return nil, err
		}
		keys[i] = kp
	}
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway scale SP"})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "tenants"), 0o755); err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"sp.crt": sp.CertPEM(), "sp.key": sp.KeyPEM()} {
		if err := os.WriteFile(filepath.Join(o.Dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `public_url: https://cloudimanage.example
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
sp: {cert_file: sp.crt, key_file: sp.key}
session:
  keys: [{hash_key: %s, block_key: %s}]
tenants:
`, o.Upstream, randomKey(32), randomKey(32))
	res := &Result{keys: keys}
	for i := range o.Tenants {
		file := "tenants/" + TenantID(i) + ".xml"
		if err := os.WriteFile(filepath.Join(o.Dir, file), res.IDP(i).MetadataXML(), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - id: %s\n    idp_metadata_file: %s\n    email_domains: [%s.example]\n", TenantID(i), file, TenantID(i))
	}
	res.ConfigPath = filepath.Join(o.Dir, "config.yaml")
	if err := os.WriteFile(res.ConfigPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return res, nil
}

// guid makes a distinct, stable directory ID for tenant i.
func guid(i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
}

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
