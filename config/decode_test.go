package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
)

// TestTypoDoesNotHideOtherProblems: unknown keys, type errors and
// validation problems are all reported in one pass.
func TestTypoDoesNotHideOtherProblems(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	doc := fmt.Sprintf(`public_url: https://sso.example.com/app
upstream: ftp://backend
sp: {cert_file: missing-cert.pem, key_file: %s}
session:
  keys:
    - {hash_key: a2trCg==, block_key: %s}
tenants:
  - id: acme
    idp_metadata_file: %s
    allow_idp_initiated: maybe
  - id: contoso
    idp_metdata_file: contoso.xml
`, spKeyFile, b64(blockKey), metadataFile)
	_, err := config.Parse([]byte(doc), f.dir, envOf(nil))
	checkProblems(t, err, []problem{
		{"tenants[1].idp_metdata_file", "unknown key (line 12)"},
		{"tenants[0].allow_idp_initiated", "cannot unmarshal"},
		{"public_url", "must not have a path"},
		{"upstream", "absolute http or https URL"},
		{"sp.cert_file", "does not exist"},
		{"session.keys[0].hash_key", "decodes to 4 bytes"},
		{"tenants[1]", "one of idp_metadata_file and idp_metadata_url is required"},
	})
}

// TestFlowStyleTypeErrorHasNoWrongPath: yaml only gives a line, so on a
// line with several keys the problem names no key rather than the wrong one.
func TestFlowStyleTypeErrorHasNoWrongPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	doc := string(marshal(t, apply(t, baseDoc(), edit{"tenants", deleted})))
	doc += fmt.Sprintf("tenants: [{id: acme, idp_metadata_file: %s, allow_idp_initiated: maybe, default_relay_state: /docs}]\n", metadataFile)
	_, err := config.Parse([]byte(doc), f.dir, envOf(nil))
	ps := config.Problems(err)
	if len(ps) != 1 {
		t.Fatalf("got %d problems %q, want 1", len(ps), listProblems(ps))
	}
	if ps[0].Path == "tenants[0].default_relay_state" || !strings.Contains(ps[0].Msg, "maybe") {
		t.Errorf("got %q, want the bool error without the wrong key path", ps[0])
	}
}

func TestMergeKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	doc := string(marshal(t, apply(t, baseDoc(), edit{"tenants", deleted})))
	doc += fmt.Sprintf(`tenants:
  - &defaults
    id: acme
    idp_metadata_file: %s
    allow_idp_initiated: false
  - <<: *defaults
    id: initech
`, metadataFile)
	cfg, err := config.Parse([]byte(doc), f.dir, envOf(nil))
	if err != nil {
		t.Fatalf("got %v, want merge keys accepted", err)
	}
	if got := cfg.Tenants[1]; got.ID != "initech" || got.AllowIDPInitiated || got.MetadataFile == "" {
		t.Errorf("got %+v, want initech with acme's settings", got)
	}
}

func TestLoadRefusesEndlessFile(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Fatalf("this test needs /dev/zero: %v", err)
	}
	_, err := config.Load("/dev/zero", envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v, want a size error", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("# padding\n", 500_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(big, envOf(nil)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v, want a size error", err)
	}
}

func TestListenersMustNotShareAPort(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		listen, admin string
		clash         bool
	}{
		{":9090", "", true}, // admin_listen defaults to 127.0.0.1:9090
		{"0.0.0.0:9090", "127.0.0.1:9090", true},
		{"[::]:8443", "127.0.0.1:8443", true},
		{"127.0.0.1:8443", "127.0.0.1:8443", true},
		{"127.0.0.1:8443", "127.0.0.2:8443", false},
		{":8443", "127.0.0.1:9090", false},
		{":0", "127.0.0.1:0", false}, // port 0 picks a free port each time
	} {
		t.Run(tt.listen+" "+tt.admin, func(t *testing.T) {
			t.Parallel()
			edits := []edit{{"listen", tt.listen}}
			if tt.admin != "" {
				edits = append(edits, edit{"admin_listen", tt.admin})
			}
			_, err := config.Parse(marshal(t, apply(t, baseDoc(), edits...)), f.dir, envOf(nil))
			var want []problem
			if tt.clash {
				want = []problem{{"admin_listen", "must not share"}}
			}
			checkProblems(t, err, want)
		})
	}
}

func TestUpstreamHost(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"backend.internal", true},
		{"backend.internal:8080", true},
		{"10.0.0.5:80", true},
		{"bad host!", false},
		{"backend:99999", false},
		{"http://backend", false},
	} {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(marshal(t, apply(t, baseDoc(), edit{"upstream_host", tt.value})), f.dir, envOf(nil))
			var want []problem
			if !tt.ok {
				want = []problem{{"upstream_host", tt.value}}
			}
			checkProblems(t, err, want)
			if tt.ok && cfg.UpstreamHost != tt.value {
				t.Errorf("got %q, want %q", cfg.UpstreamHost, tt.value)
			}
		})
	}
}

func TestTenantHostIsNotPublicHostWithTrailingDot(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	doc := apply(t, baseDoc(), edit{"public_url", "https://SSO.example.com."}, edit{"tenants[0].hosts", []any{"sso.example.com"}})
	_, err := config.Parse(marshal(t, doc), f.dir, envOf(nil))
	checkProblems(t, err, []problem{{"tenants[0].hosts[0]", "public_url's host"}})
}
