package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/cli"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

func TestRunCommands(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantErr    string // "" for success
		wantStdout string // substring
		wantStderr string // substring
	}{
		{name: "version", args: []string{"version"}, wantStdout: "sso-gateway "},
		{name: "version with an argument", args: []string{"version", "x"}, wantErr: `unexpected argument "x"`},
		{name: "help", args: []string{"help"}, wantStdout: "sso-gateway check -config FILE"},
		{name: "unknown command", args: []string{"frobnicate"}, wantErr: `unknown command "frobnicate"`, wantStderr: "Usage:"},
		{name: "check without -config", args: []string{"check"}, wantErr: "-config FILE is required"},
		{name: "check with empty -config", args: []string{"check", "-config", ""}, wantErr: "-config FILE is required"},
		{name: "check with an extra argument", args: []string{"check", "-config", "a.yaml", "b.yaml"}, wantErr: "-config FILE is required"},
		{name: "check with -config but no value", args: []string{"check", "-config"}, wantErr: "flag needs an argument", wantStderr: "flag needs an argument: -config"},
		{name: "check with an unknown flag", args: []string{"check", "-verbose"}, wantErr: "flag provided but not defined", wantStderr: "-verbose"},
		{name: "serve without -config", args: []string{}, wantErr: "-config FILE is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tt.args, &stdout, &stderr)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("run %q: got error %q, want nil", tt.args, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("run %q: got nil error, want %q", tt.args, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("run %q: got error %q, want %q", tt.args, err, tt.wantErr)
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout: got %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr: got %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// checkDir is a folder with an SP key pair and the metadata of a fresh
// samltest IdP, and a metadata server on loopback http (which the config
// allows) serving another IdP's metadata at /metadata.xml.
type checkDir struct {
	dir         string
	metadataURL string // a valid IdP's metadata
	notFoundURL string // answers 404
}

func newCheckDir(t *testing.T) *checkDir {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	key, cert := samltest.NewKeyPair(t, "sso-gateway SP", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	samltest.WriteKeyPairPEM(t, dir, "sp", key, cert)
	testfiles.Write(t, filepath.Join(dir, "acme.xml"), samltest.NewIDP(t).MetadataXML())

	remote := samltest.NewIDP(t).MetadataXML()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata.xml" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(remote)
	}))
	t.Cleanup(srv.Close)
	return &checkDir{
		dir:         dir,
		metadataURL: srv.URL + "/metadata.xml",
		notFoundURL: srv.URL + "/missing.xml",
	}
}

func (d *checkDir) writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	name := filepath.Join(d.dir, "gateway.yaml")
	testfiles.Write(t, name, []byte(yaml))
	return name
}

// testdata returns the absolute path of a file in testdata: the config
// resolves relative paths against its own folder, a temporary one.
func testdata(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// baseConfig is a sound configuration at publicURL using the check dir's
// SP key pair, followed by more: other top-level keys, and the tenants.
func baseConfig(publicURL, more string) string {
	return fmt.Sprintf(`public_url: %s
upstream: http://127.0.0.1:3000
sp: {cert_file: sp-cert.pem, key_file: sp-key.pem}
session:
  keys: [{hash_key: %s, block_key: %s}]
%s`, publicURL, b64n(64), b64n(32), more)
}

func b64n(n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'k'}, n))
}

func TestCheckGood(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	cfgFile := d.writeConfig(t, fmt.Sprintf(`
public_url: https://sso.example.com
upstream: http://127.0.0.1:3000
sp:
  cert_file: sp-cert.pem
  key_file: sp-key.pem
session:
  keys:
    - hash_key: %s
      block_key: %s
tenants:
  - id: acme
    idp_metadata_file: acme.xml
  - id: contoso
    idp_metadata_url: %s
`, b64n(64), b64n(32), d.metadataURL))

	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"check", "-config", cfgFile}, &stdout, &stderr); err != nil {
		t.Fatalf("check: got error %q, want nil; stderr:\n%s", err, stderr.String())
	}
	if got, want := stdout.String(), cfgFile+": OK (2 tenants)\n"; got != want {
		t.Errorf("stdout: got %q, want %q", got, want)
	}
	if got := stderr.String(); got != "" {
		t.Errorf("stderr: got %q, want %q", got, "")
	}
}

// TestCheckBad checks that check reports, in one run, the config's own
// problems and those found only by loading each tenant's metadata.
func TestCheckBad(t *testing.T) {
	t.Parallel()
	d := newCheckDir(t)
	cfgFile := d.writeConfig(t, fmt.Sprintf(`
public_url: https://sso.example.com/app
upstream: ftp://backend
sp:
  cert_file: sp-cert.pem
  key_file: missing-key.pem
session:
  keys:
    - hash_key: %s
      block_key: %s
tenants:
  - id: expired
    idp_metadata_file: %s
  - id: common
    idp_metadata_file: %s
  - id: notxml
    idp_metadata_file: %s
  - id: fine
    idp_metadata_file: acme.xml
  - id: a/b
    idp_metadata_url: http://idp.example.com/metadata.xml
  - id: gone
    idp_metadata_url: %s
  - id: nowhere
    idp_metadata_file: nowhere.xml
`, b64n(31), b64n(32),
		testdata(t, "entra_federationmetadata.xml"),
		testdata(t, "entra_common_tenant-independent_federationmetadata_multi-cert.xml"),
		testdata(t, "not-metadata.txt"),
		d.notFoundURL))

	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"check", "-config", cfgFile}, &stdout, &stderr)
	if !errors.Is(err, cli.ErrReported) {
		t.Errorf("check: got error %v, want %v", err, cli.ErrReported)
	}
	if got := stdout.String(); got != "" {
		t.Errorf("stdout: got %q, want %q", got, "")
	}

	want := []string{
		"  public_url: must not have a path",
		"  upstream: must be an absolute http or https URL",
		"  sp.key_file: file " + filepath.Join(d.dir, "missing-key.pem") + " does not exist",
		"  session.keys[0].hash_key: decodes to 31 bytes",
		`  tenants[4].id: "a/b" is not URL-safe`,
		"  tenants[4].idp_metadata_url: must use https",
		// Found by loading the metadata: tenant problems, which check
		// reports as strictly as the others.
		"  tenants[6].idp_metadata_file: read IdP metadata: file " + filepath.Join(d.dir, "nowhere.xml") + " does not exist",
		"  tenants[0].idp_metadata_file: unusable IdP metadata: no signing certificate is valid now: every one has expired, the newest",
		`  tenants[1].idp_metadata_file: unusable IdP metadata: entityID "https://sts.windows.net/{tenantid}/" is Entra's tenant-independent template`,
		"  tenants[2].idp_metadata_file: unusable IdP metadata: not SAML metadata",
		"  tenants[5].idp_metadata_url: fetch IdP metadata: HTTP status 404 Not Found",
	}
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if got, want := lines[0], fmt.Sprintf("%s: %d problem(s):", cfgFile, len(want)); got != want {
		t.Errorf("stderr header: got %q, want %q", got, want)
	}
	problems := lines[1:]
	for _, w := range want {
		n := 0
		for _, l := range problems {
			if strings.HasPrefix(l, w) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("stderr has %d lines starting %q, want 1", n, w)
		}
	}
	if len(problems) != len(want) {
		t.Errorf("stderr: got %d problems, want %d", len(problems), len(want))
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
	// The tenant with usable metadata is not mentioned.
	if strings.Contains(stderr.String(), "tenants[3]") {
		t.Errorf("stderr: got %q, want no problem for tenants[3]", stderr.String())
	}
}

func TestCheckUnreadableConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content *string // nil: the file does not exist
		want    string
	}{
		{"missing", nil, ": 1 problem(s):\n  read config: open "},
		{"empty", ptr(""), ": 1 problem(s):\n  config is empty\n"},
		{"two documents", ptr("upstream: http://a\n---\nupstream: http://b\n"), ": 1 problem(s):\n  config must hold exactly one YAML document\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name := filepath.Join(t.TempDir(), "gateway.yaml")
			if tt.content != nil {
				testfiles.Write(t, name, []byte(*tt.content))
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"check", "-config", name}, &stdout, &stderr)
			if !errors.Is(err, cli.ErrReported) {
				t.Errorf("check: got error %v, want %v", err, cli.ErrReported)
			}
			if got, want := stderr.String(), name+tt.want; !strings.HasPrefix(got, want) {
				t.Errorf("stderr: got %q, want %q", got, want)
			}
			if got := stdout.String(); got != "" {
				t.Errorf("stdout: got %q, want %q", got, "")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
