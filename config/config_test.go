package config_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// TestLoadValid loads a complete configuration from a file and checks every
// typed field, the defaults, and that relative paths are resolved against
// the config file's folder rather than the working directory.
func TestLoadValid(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := apply(t, baseDoc(),
		edit{"public_url", "https://sso.example.com/"},
		edit{"upstream", "http://backend.internal:8080/app"},
		// A second key, read from a file (absolute path) and from the
		// environment, in URL-safe base64 without padding.
		edit{"session.keys[1]", map[string]any{
			"hash_key_file": fx.path(hashKeyFile),
			"block_key_env": "SSO_BLOCK_KEY",
		}},
		edit{"tenants[0].email_domains", []any{" Acme.EXAMPLE ", "acme-corp.example"}},
		edit{"tenants[1].allow_idp_initiated", false},
		edit{"tenants[1].allow_sha1", true},
		edit{"tenants[1].default_relay_state", "/documents?view=list"},
		edit{"tenants[1].nameid_format", "persistent"},
		edit{"tenants[1].allowed_groups", []any{"5f3c1f7e-group", "Readers"}},
		edit{"tenants[2]", map[string]any{
			"id":                  "Fabrikam-2.eu_~x",
			"idp_metadata_url":    "http://127.0.0.1:8081/metadata.xml",
			"nameid_format":       "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
			"allow_idp_initiated": true,
		}},
	)
	cfgFile := fx.path("gateway.yaml")
	testfiles.Write(t, cfgFile, marshal(t, doc))
	env := envOf(map[string]string{"SSO_BLOCK_KEY": strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(b64(bytes.Repeat([]byte{0xfb}, 24))), "=")})

	cfg, err := config.Load(cfgFile, env)
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, listProblems(config.Problems(err)))
	}

	strs := []struct{ name, got, want string }{
		{"Path", cfg.Path, cfgFile},
		{"PublicURL", cfg.PublicURL.String(), "https://sso.example.com"},
		{"Upstream", cfg.Upstream.String(), "http://backend.internal:8080/app"},
		{"Listen", cfg.Listen, ":8080"},
		{"AdminListen", cfg.AdminListen, "127.0.0.1:9090"},
		{"Log.Format", cfg.Log.Format, "json"},
		{"Log.Level", cfg.Log.Level.String(), slog.LevelInfo.String()},
	}
	for _, s := range strs {
		if s.got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, s.got, s.want)
		}
	}
	if cfg.PublicURL.Path != "" {
		t.Errorf("PublicURL.Path: got %q, want %q", cfg.PublicURL.Path, "")
	}
	if !cfg.ExternalSecure() {
		t.Errorf("ExternalSecure: got false for %q, want true", cfg.PublicURL)
	}
	if cfg.TLS != nil {
		t.Errorf("TLS: got a certificate, want nil without a tls section")
	}

	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"UpstreamTimeout", cfg.UpstreamTimeout, 60 * time.Second},
		{"ShutdownTimeout", cfg.ShutdownTimeout, config.DefaultShutdownTimeout},
		{"Session.Lifetime", cfg.Session.Lifetime, 8 * time.Hour},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s: got %q, want %q", d.name, d.got, d.want)
		}
	}

	if cfg.SP.Certificate == nil || cfg.SP.Key == nil {
		t.Fatalf("SP: got %+v, want certificate and key", cfg.SP)
	}
	if got := cfg.SP.Certificate.Subject.CommonName; got != "sp" {
		t.Errorf("SP.Certificate CN: got %q, want %q", got, "sp")
	}
	if pub, ok := cfg.SP.Certificate.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&cfg.SP.Key.PublicKey) {
		t.Errorf("SP.Key does not match SP.Certificate")
	}

	wantKeys := []config.SessionKey{
		{Hash: hashKey, Block: blockKey},
		{Hash: hashKey, Block: bytes.Repeat([]byte{0xfb}, 24)},
	}
	if len(cfg.Session.Keys) != len(wantKeys) {
		t.Fatalf("Session.Keys: got %d, want %d", len(cfg.Session.Keys), len(wantKeys))
	}
	for i, k := range cfg.Session.Keys {
		if !bytes.Equal(k.Hash, wantKeys[i].Hash) {
			t.Errorf("Session.Keys[%d].Hash: got %q, want %q", i, k.Hash, wantKeys[i].Hash)
		}
		if !bytes.Equal(k.Block, wantKeys[i].Block) {
			t.Errorf("Session.Keys[%d].Block: got %q, want %q", i, k.Block, wantKeys[i].Block)
		}
	}

	if len(cfg.Tenants) != 3 {
		t.Fatalf("Tenants: got %d, want 3", len(cfg.Tenants))
	}
	acme, contoso, fabrikam := cfg.Tenants[0], cfg.Tenants[1], cfg.Tenants[2]
	tenantStrs := []struct{ name, got, want string }{
		{"Tenants[0].ID", acme.ID, "acme"},
		// Relative to the config file's folder, not the working directory.
		{"Tenants[0].MetadataFile", acme.MetadataFile, filepath.Join(fx.dir, "idp", "acme.xml")},
		{"Tenants[0].DefaultRelayState", acme.DefaultRelayState, "/"},
		{"Tenants[0].NameIDFormat", acme.NameIDFormat, "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
		{"Tenants[1].ID", contoso.ID, "contoso"},
		{"Tenants[1].MetadataFile", contoso.MetadataFile, ""},
		{"Tenants[1].MetadataURL", contoso.MetadataURL.String(), "https://login.microsoftonline.com/contoso/federationmetadata/2007-06/federationmetadata.xml?appid=1"},
		{"Tenants[1].DefaultRelayState", contoso.DefaultRelayState, "/documents?view=list"},
		{"Tenants[1].NameIDFormat", contoso.NameIDFormat, "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
		{"Tenants[2].ID", fabrikam.ID, "Fabrikam-2.eu_~x"},
		{"Tenants[2].MetadataURL", fabrikam.MetadataURL.String(), "http://127.0.0.1:8081/metadata.xml"},
		{"Tenants[2].NameIDFormat", fabrikam.NameIDFormat, "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"},
	}
	for _, s := range tenantStrs {
		if s.got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, s.got, s.want)
		}
	}
	if acme.MetadataURL != nil {
		t.Errorf("Tenants[0].MetadataURL: got %q, want nil", acme.MetadataURL)
	}
	bools := []struct {
		name      string
		got, want bool
	}{
		{"Tenants[0].AllowIDPInitiated", acme.AllowIDPInitiated, true},
		{"Tenants[0].AllowSHA1", acme.AllowSHA1, false},
		{"Tenants[1].AllowIDPInitiated", contoso.AllowIDPInitiated, false},
		{"Tenants[1].AllowSHA1", contoso.AllowSHA1, true},
		{"Tenants[2].AllowIDPInitiated", fabrikam.AllowIDPInitiated, true},
	}
	for _, b := range bools {
		if b.got != b.want {
			t.Errorf("%s: got %t, want %t", b.name, b.got, b.want)
		}
	}
	lists := []struct {
		name      string
		got, want []string
	}{
		{"Tenants[0].EmailDomains", acme.EmailDomains, []string{"acme.example", "acme-corp.example"}},
		{"Tenants[0].AllowedGroups", acme.AllowedGroups, nil},
		{"Tenants[1].EmailDomains", contoso.EmailDomains, []string{"contoso.example"}},
		{"Tenants[1].AllowedGroups", contoso.AllowedGroups, []string{"5f3c1f7e-group", "Readers"}},
		{"Tenants[2].EmailDomains", fabrikam.EmailDomains, nil},
	}
	for _, l := range lists {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s: got %q, want %q", l.name, l.got, l.want)
		}
	}
}

// TestParseSettings checks values that are set explicitly, and the defaults
// that depend on other keys.
func TestParseSettings(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name  string
		edits []edit
		check func(t *testing.T, c *config.Config)
	}{
		{
			name:  "tls makes the default listen :8443",
			edits: []edit{{"tls", map[string]any{"cert_file": spCertFile, "key_file": spKeyFile}}},
			check: func(t *testing.T, c *config.Config) {
				if c.Listen != ":8443" {
					t.Errorf("Listen: got %q, want %q", c.Listen, ":8443")
				}
				if c.TLS == nil || len(c.TLS.Certificate) == 0 {
					t.Errorf("TLS: got %v, want the key pair", c.TLS)
				}
			},
		},
		{
			name: "explicit listeners, timeouts and log",
			edits: []edit{
				{"listen", "0.0.0.0:80"},
				{"admin_listen", "localhost:9100"},
				{"upstream_timeout", "1m30s"},
				{"shutdown_timeout", "5s"},
				{"session.lifetime", "720h"},
				{"log", map[string]any{"level": "debug", "format": "text"}},
			},
			check: func(t *testing.T, c *config.Config) {
				strs := []struct{ name, got, want string }{
					{"Listen", c.Listen, "0.0.0.0:80"},
					{"AdminListen", c.AdminListen, "localhost:9100"},
					{"UpstreamTimeout", c.UpstreamTimeout.String(), "1m30s"},
					{"ShutdownTimeout", c.ShutdownTimeout.String(), "5s"},
					{"Session.Lifetime", c.Session.Lifetime.String(), "720h0m0s"},
					{"Log.Level", c.Log.Level.String(), "DEBUG"},
					{"Log.Format", c.Log.Format, "text"},
				}
				for _, s := range strs {
					if s.got != s.want {
						t.Errorf("%s: got %q, want %q", s.name, s.got, s.want)
					}
				}
			},
		},
		{
			name:  "http public_url is not external secure",
			edits: []edit{{"public_url", "http://localhost:8080"}},
			check: func(t *testing.T, c *config.Config) {
				if c.ExternalSecure() {
					t.Errorf("ExternalSecure: got true for %q, want false", c.PublicURL)
				}
			},
		},
		{
			name: "short name-ID formats",
			edits: []edit{
				{"tenants[0].nameid_format", "email"},
				{"tenants[1].nameid_format", "unspecified"},
			},
			check: func(t *testing.T, c *config.Config) {
				for i, want := range []string{
					"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
					"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
				} {
					if got := c.Tenants[i].NameIDFormat; got != want {
						t.Errorf("Tenants[%d].NameIDFormat: got %q, want %q", i, got, want)
					}
				}
			},
		},
		{
			name: "key sizes at every allowed length",
			edits: []edit{
				{"session.keys[0]", map[string]any{"hash_key": b64n(32), "block_key": b64n(16)}},
				{"session.keys[1]", map[string]any{"hash_key": b64n(64), "block_key": b64n(24)}},
				{"session.keys[2]", map[string]any{"hash_key": b64n(32), "block_key": b64n(32)}},
			},
			check: func(t *testing.T, c *config.Config) {
				if len(c.Session.Keys) != 3 {
					t.Fatalf("Session.Keys: got %d, want 3", len(c.Session.Keys))
				}
				for i, want := range []int{16, 24, 32} {
					if got := len(c.Session.Keys[i].Block); got != want {
						t.Errorf("Session.Keys[%d].Block: got %d bytes, want %d", i, got, want)
					}
				}
			},
		},
		{
			name: "http metadata URL on loopback",
			edits: []edit{
				{"tenants[1].idp_metadata_url", "http://localhost:8081/md"},
				{"tenants[2]", map[string]any{"id": "v6", "idp_metadata_url": "http://[::1]/md"}},
			},
			check: func(t *testing.T, c *config.Config) {
				if got := c.Tenants[2].MetadataURL.String(); got != "http://[::1]/md" {
					t.Errorf("Tenants[2].MetadataURL: got %q, want %q", got, "http://[::1]/md")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, cfg)
		})
	}
}

// TestTenantIDs checks which Customer_IDs are accepted: they appear in URL
// paths, cookie names and metric labels.
func TestTenantIDs(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	long := strings.Repeat("a", 64)
	tests := []struct {
		id      string
		wantMsg string // "" for valid
	}{
		{"acme", ""},
		{"ACME-corp_1.eu~2", ""},
		{"0", ""},
		{long, ""},
		{long + "a", "is not URL-safe"},
		{"a/b", "is not URL-safe"},
		{"a b", "is not URL-safe"},
		{"..", "is not URL-safe"},
		{".", "is not URL-safe"},
		{".hidden", "is not URL-safe"},
		{"-acme", "is not URL-safe"},
		{"ä", "is not URL-safe"},
		{"acmé", "is not URL-safe"},
		{"a%2Fb", "is not URL-safe"},
		{"a?b", "is not URL-safe"},
		{"a\\b", "is not URL-safe"},
		{"", "is required"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			doc := apply(t, baseDoc(), edit{"tenants[0].id", tt.id})
			_, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
			var want []problem
			if tt.wantMsg != "" {
				want = append(want, problem{"tenants[0].id", tt.wantMsg})
			}
			checkProblems(t, err, want)
		})
	}
}

// TestParseProblems checks, one at a time, that each kind of mistake is
// reported at its key path, and that nothing else is reported.
func TestParseProblems(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name  string
		edits []edit
		env   map[string]string
		want  []problem
	}{
		// Decoding.
		{
			name:  "unknown top-level key",
			edits: []edit{{"listen_addr", ":8080"}},
			want:  []problem{{"listen_addr", "unknown key (line "}},
		},
		{
			name:  "unknown nested key",
			edits: []edit{{"tenants[1].idp_metdata_file", "acme.xml"}},
			want:  []problem{{"tenants[1].idp_metdata_file", "unknown key (line "}},
		},
		{
			name: "unknown keys everywhere, all reported",
			edits: []edit{
				{"publicurl", "https://x"},
				{"sp.certfile", "x"},
				{"session.keys[0].hash", "x"},
				{"tenants[0].domains", []any{"x"}},
				{"tls", map[string]any{"cert_file": spCertFile, "key_file": spKeyFile, "ca_file": "x"}},
			},
			want: []problem{
				{"publicurl", "unknown key"},
				{"sp.certfile", "unknown key"},
				{"session.keys[0].hash", "unknown key"},
				{"tenants[0].domains", "unknown key"},
				{"tls.ca_file", "unknown key"},
			},
		},
		{
			name:  "type error",
			edits: []edit{{"tenants[0].allow_idp_initiated", "maybe"}},
			want:  []problem{{"tenants[0].allow_idp_initiated", "cannot unmarshal !!str `maybe` into bool"}},
		},
		{
			name: "type errors, all reported",
			edits: []edit{
				{"tenants[0].allow_sha1", "perhaps"},
				{"tenants[1].allow_idp_initiated", []any{"yes"}},
				{"session.keys[0].hash_key", map[string]any{"a": 1}},
			},
			want: []problem{
				{"tenants[0].allow_sha1", "cannot unmarshal !!str `perhaps` into bool"},
				{"tenants[1].allow_idp_initiated", "cannot unmarshal !!seq into bool"},
				{"session.keys[0].hash_key", "cannot unmarshal !!map into string"},
			},
		},
		{
			name:  "list where a mapping belongs",
			edits: []edit{{"sp", []any{"sp-cert.pem"}}},
			want:  []problem{{"sp", "must be a mapping (line "}},
		},
		{
			name:  "scalar where a list belongs",
			edits: []edit{{"tenants[0].email_domains", "acme.example"}},
			want:  []problem{{"tenants[0].email_domains", "must be a list (line "}},
		},

		// URLs.
		{
			name:  "public_url missing",
			edits: []edit{{"public_url", deleted}},
			want:  []problem{{"public_url", "is required"}},
		},
		{
			name:  "public_url ftp",
			edits: []edit{{"public_url", "ftp://x"}},
			want:  []problem{{"public_url", `must be an absolute http or https URL (got "ftp://x")`}},
		},
		{
			name:  "public_url relative",
			edits: []edit{{"public_url", "/relative"}},
			want:  []problem{{"public_url", `must be an absolute http or https URL (got "/relative")`}},
		},
		{
			name:  "public_url host:port without scheme",
			edits: []edit{{"public_url", "127.0.0.1:8080"}},
			want:  []problem{{"public_url", "not a URL"}},
		},
		{
			name:  "public_url name:port without scheme",
			edits: []edit{{"public_url", "localhost:8080"}},
			want:  []problem{{"public_url", "must be an absolute http or https URL"}},
		},
		{
			name:  "public_url with query",
			edits: []edit{{"public_url", "https://sso.example.com/?tenant=acme"}},
			want:  []problem{{"public_url", "must not have a query or fragment"}},
		},
		{
			name:  "public_url with fragment",
			edits: []edit{{"public_url", "https://sso.example.com/#top"}},
			want:  []problem{{"public_url", "must not have a query or fragment"}},
		},
		{
			name:  "public_url with path",
			edits: []edit{{"public_url", "https://example.com/sso"}},
			want:  []problem{{"public_url", `must not have a path (got "/sso")`}},
		},
		{
			name:  "public_url with credentials",
			edits: []edit{{"public_url", "https://user:pw@sso.example.com"}},
			want:  []problem{{"public_url", "must not contain credentials"}},
		},
		{
			name:  "public_url without host",
			edits: []edit{{"public_url", "https://:443"}},
			want:  []problem{{"public_url", "must name a host"}},
		},
		{
			name:  "upstream missing",
			edits: []edit{{"upstream", ""}},
			want:  []problem{{"upstream", "is required"}},
		},
		{
			name:  "upstream ftp",
			edits: []edit{{"upstream", "ftp://x"}},
			want:  []problem{{"upstream", `must be an absolute http or https URL (got "ftp://x")`}},
		},
		{
			name:  "upstream relative",
			edits: []edit{{"upstream", "/relative"}},
			want:  []problem{{"upstream", "must be an absolute http or https URL"}},
		},
		{
			name:  "upstream host:port without scheme",
			edits: []edit{{"upstream", "127.0.0.1:8080"}},
			want:  []problem{{"upstream", "not a URL"}},
		},
		{
			name:  "upstream with query",
			edits: []edit{{"upstream", "http://127.0.0.1:3000/?x=1"}},
			want:  []problem{{"upstream", "must not have a query or fragment"}},
		},

		// Listeners and durations.
		{
			name:  "listen equals admin_listen",
			edits: []edit{{"listen", "127.0.0.1:9000"}, {"admin_listen", "127.0.0.1:9000"}},
			want:  []problem{{"admin_listen", "must not share a port with listen"}},
		},
		{
			name:  "listen equals default admin_listen",
			edits: []edit{{"listen", "127.0.0.1:9090"}},
			want:  []problem{{"admin_listen", "must not share a port with listen"}},
		},
		{
			name:  "listen without port",
			edits: []edit{{"listen", "8080"}},
			want:  []problem{{"listen", `must be host:port (got "8080")`}},
		},
		{
			name:  "admin_listen bad port",
			edits: []edit{{"admin_listen", "127.0.0.1:99999"}},
			want:  []problem{{"admin_listen", `invalid port "99999"`}},
		},
		{
			name:  "listen bad host",
			edits: []edit{{"listen", "bad_host:80"}},
			want:  []problem{{"listen", `invalid host "bad_host"`}},
		},
		{
			name:  "duration without unit",
			edits: []edit{{"upstream_timeout", "60"}},
			want:  []problem{{"upstream_timeout", `not a duration like 90s or 8h: "60"`}},
		},
		{
			name:  "negative duration",
			edits: []edit{{"shutdown_timeout", "-5s"}},
			want:  []problem{{"shutdown_timeout", "must be positive (got -5s)"}},
		},
		{
			name:  "zero duration",
			edits: []edit{{"session.lifetime", "0s"}},
			want:  []problem{{"session.lifetime", "must be positive"}},
		},
		{
			name:  "session lifetime too long",
			edits: []edit{{"session.lifetime", "721h"}},
			want:  []problem{{"session.lifetime", "must be at most 720h0m0s (got 721h0m0s)"}},
		},
		{
			name:  "duration words",
			edits: []edit{{"session.lifetime", "one day"}},
			want:  []problem{{"session.lifetime", "not a duration"}},
		},

		// Files and keys.
		{
			name:  "sp.cert_file missing",
			edits: []edit{{"sp.cert_file", "nope.pem"}},
			want:  []problem{{"sp.cert_file", "file " + fx.path("nope.pem") + " does not exist"}},
		},
		{
			name:  "sp.key_file not set",
			edits: []edit{{"sp.key_file", deleted}},
			want:  []problem{{"sp.key_file", "is required"}},
		},
		{
			name:  "sp.cert_file is a folder",
			edits: []edit{{"sp.cert_file", folderName}},
			want:  []problem{{"sp.cert_file", "is not a regular file"}},
		},
		{
			name:  "sp.cert_file holds a key",
			edits: []edit{{"sp.cert_file", spKeyFile}},
			want:  []problem{{"sp.cert_file", "no PEM CERTIFICATE block"}},
		},
		{
			name:  "sp.key_file holds a certificate",
			edits: []edit{{"sp.key_file", spCertFile}},
			want:  []problem{{"sp.key_file", `PEM block is "CERTIFICATE"`}},
		},
		{
			name:  "sp.key_file not PEM",
			edits: []edit{{"sp.key_file", metadataFile}},
			want:  []problem{{"sp.key_file", "no PEM block"}},
		},
		{
			name:  "sp cert and key do not match",
			edits: []edit{{"sp.cert_file", otherCertFile}},
			want:  []problem{{"sp", "cert_file does not match key_file"}},
		},
		{
			name:  "sp key below 2048 bits",
			edits: []edit{{"sp.cert_file", smallCertFile}, {"sp.key_file", smallKeyFile}},
			want:  []problem{{"sp.key_file", "RSA key has 1024 bits, want at least 2048"}},
		},
		{
			name:  "tls files missing",
			edits: []edit{{"tls", map[string]any{"cert_file": "tls.pem"}}},
			want: []problem{
				{"tls.cert_file", "does not exist"},
				{"tls.key_file", "is required"},
			},
		},
		{
			name:  "tls cert and key do not match",
			edits: []edit{{"tls", map[string]any{"cert_file": spCertFile, "key_file": otherKeyFile}}},
			want:  []problem{{"tls", "cert_file and key_file are not a usable key pair"}},
		},

		// Session keys.
		{
			name:  "no session keys",
			edits: []edit{{"session.keys", []any{}}},
			want:  []problem{{"session.keys", "at least one key is required"}},
		},
		{
			name:  "hash key 31 bytes",
			edits: []edit{{"session.keys[0].hash_key", b64n(31)}},
			want:  []problem{{"session.keys[0].hash_key", "decodes to 31 bytes, want 32 or 64"}},
		},
		{
			name:  "block key 20 bytes",
			edits: []edit{{"session.keys[0].block_key", b64n(20)}},
			want:  []problem{{"session.keys[0].block_key", "decodes to 20 bytes, want 16, 24 or 32"}},
		},
		{
			name:  "hash key 31 bytes, with the hint",
			edits: []edit{{"session.keys[0].hash_key", b64n(31)}},
			want:  []problem{{"session.keys[0].hash_key", "(generate one with: openssl rand -base64 64)"}},
		},
		{
			name:  "hash key not base64",
			edits: []edit{{"session.keys[0].hash_key", "not base64!"}},
			want:  []problem{{"session.keys[0].hash_key", "not valid base64 (generate one with: openssl rand -base64 64)"}},
		},
		{
			name:  "block key not base64",
			edits: []edit{{"session.keys[0].block_key", "%%%%%%%%%%%%%%%%%%%%%%%%"}},
			want:  []problem{{"session.keys[0].block_key", "not valid base64 (generate one with: openssl rand -base64 32)"}},
		},
		{
			// openssl rand -hex 32: valid base64 too, of 48 bytes.
			name:  "hash key in hex",
			edits: []edit{{"session.keys[0].hash_key", hex.EncodeToString(hashKey[:32])}},
			want:  []problem{{"session.keys[0].hash_key", "looks like hex, want base64 (generate one with: openssl rand -base64 64)"}},
		},
		{
			// openssl rand -hex 16: 32 hex digits decode as base64 to
			// 24 bytes, a valid length, with only 128 random bits.
			name:  "block key in hex of a valid base64 length",
			edits: []edit{{"session.keys[0].block_key", "00112233445566778899aabbccddeeff"}},
			want:  []problem{{"session.keys[0].block_key", "looks like hex, want base64 (generate one with: openssl rand -base64 32)"}},
		},
		{
			name:  "block key in upper-case hex from the environment",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "block_key_env": "SSO_BLOCK"}}},
			env:   map[string]string{"SSO_BLOCK": strings.ToUpper(hex.EncodeToString(blockKey)) + "\n"},
			want:  []problem{{"session.keys[0].block_key_env", "looks like hex, want base64 (generate one with: openssl rand -base64 32)"}},
		},
		{
			name: "keys from files",
			edits: []edit{{"session.keys[0]", map[string]any{
				"hash_key_file":  hashKeyFile,
				"block_key_file": blockKeyFile,
			}}},
		},
		{
			name:  "key file missing",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key_file": "secrets/nope.key", "block_key": b64(blockKey)}}},
			want:  []problem{{"session.keys[0].hash_key_file", "file " + fx.path("secrets/nope.key") + " does not exist"}},
		},
		{
			name:  "key file too short",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key_file": shortKeyFile, "block_key": b64(blockKey)}}},
			want:  []problem{{"session.keys[0].hash_key_file", "decodes to 31 bytes"}},
		},
		{
			name:  "key file not base64",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "block_key_file": garbageFile}}},
			want:  []problem{{"session.keys[0].block_key_file", "not valid base64 (generate one with: openssl rand -base64 32)"}},
		},
		{
			name:  "keys from the environment",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key_env": "H", "block_key_env": "B"}}},
			env:   map[string]string{"H": b64(hashKey), "B": "  " + b64(blockKey) + "\n"},
		},
		{
			name:  "key env unset",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key_env": "SSO_HASH", "block_key": b64(blockKey)}}},
			env:   map[string]string{"OTHER": b64(hashKey)},
			want:  []problem{{"session.keys[0].hash_key_env", "environment variable SSO_HASH is not set"}},
		},
		{
			name:  "key env empty",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "block_key_env": "SSO_BLOCK"}}},
			env:   map[string]string{"SSO_BLOCK": ""},
			want:  []problem{{"session.keys[0].block_key_env", "environment variable SSO_BLOCK is not set"}},
		},
		{
			name:  "key env wrong length",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "block_key_env": "SSO_BLOCK"}}},
			env:   map[string]string{"SSO_BLOCK": b64n(20)},
			want:  []problem{{"session.keys[0].block_key_env", "decodes to 20 bytes"}},
		},
		{
			name:  "key inline and env",
			edits: []edit{{"session.keys[0].hash_key_env", "SSO_HASH"}},
			env:   map[string]string{"SSO_HASH": b64(hashKey)},
			want:  []problem{{"session.keys[0]", "exactly one of hash_key, hash_key_file and hash_key_env is required"}},
		},
		{
			name:  "key file and env",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "block_key_file": blockKeyFile, "block_key_env": "B"}}},
			env:   map[string]string{"B": b64(blockKey)},
			want:  []problem{{"session.keys[0]", "exactly one of block_key, block_key_file and block_key_env is required"}},
		},
		{
			name:  "key from all three",
			edits: []edit{{"session.keys[0]", map[string]any{"hash_key": b64(hashKey), "hash_key_file": hashKeyFile, "hash_key_env": "H", "block_key": b64(blockKey)}}},
			env:   map[string]string{"H": b64(hashKey)},
			want:  []problem{{"session.keys[0]", "exactly one of hash_key, hash_key_file and hash_key_env is required"}},
		},
		{
			name:  "key from none",
			edits: []edit{{"session.keys[0].block_key", deleted}},
			want:  []problem{{"session.keys[0]", "exactly one of block_key, block_key_file and block_key_env is required"}},
		},

		// Tenants.
		{
			name:  "no tenants",
			edits: []edit{{"tenants", []any{}}},
			want:  []problem{{"tenants", "at least one tenant is required"}},
		},
		{
			name:  "duplicate tenant IDs",
			edits: []edit{{"tenants[1].id", "acme"}},
			want:  []problem{{"tenants[1].id", `"acme" duplicates tenants[0].id`}},
		},
		{
			name:  "duplicate tenant IDs differing in case",
			edits: []edit{{"tenants[2]", map[string]any{"id": "ACME", "idp_metadata_file": metadataFile}}},
			want:  []problem{{"tenants[2].id", `"ACME" duplicates tenants[0].id`}},
		},
		{
			name:  "both metadata sources",
			edits: []edit{{"tenants[0].idp_metadata_url", "https://login.microsoftonline.com/x/md.xml"}},
			want:  []problem{{"tenants[0]", "set only one of idp_metadata_file and idp_metadata_url"}},
		},
		{
			name:  "no metadata source",
			edits: []edit{{"tenants[1].idp_metadata_url", deleted}},
			want:  []problem{{"tenants[1]", "one of idp_metadata_file and idp_metadata_url is required"}},
		},
		{
			name:  "metadata over http to a remote host",
			edits: []edit{{"tenants[1].idp_metadata_url", "http://login.microsoftonline.com/x/md.xml"}},
			want:  []problem{{"tenants[1].idp_metadata_url", "must use https"}},
		},
		{
			name:  "metadata over http to a name that starts like localhost",
			edits: []edit{{"tenants[1].idp_metadata_url", "http://localhost.evil.example/md.xml"}},
			want:  []problem{{"tenants[1].idp_metadata_url", "must use https"}},
		},
		{
			name:  "metadata URL ftp",
			edits: []edit{{"tenants[1].idp_metadata_url", "ftp://login.microsoftonline.com/md.xml"}},
			want:  []problem{{"tenants[1].idp_metadata_url", "must be an absolute https URL"}},
		},
		{
			name:  "metadata URL relative",
			edits: []edit{{"tenants[1].idp_metadata_url", "/md.xml"}},
			want:  []problem{{"tenants[1].idp_metadata_url", "must be an absolute https URL"}},
		},
		{
			name:  "email domain in two tenants",
			edits: []edit{{"tenants[1].email_domains", []any{"contoso.example", "ACME.example"}}},
			want:  []problem{{"tenants[1].email_domains[1]", `"acme.example" is already mapped by tenants[0].email_domains[0]`}},
		},
		{
			name:  "email domain not a domain",
			edits: []edit{{"tenants[0].email_domains", []any{"localhost", "-acme.example", "acme..example", "@acme.example"}}},
			want: []problem{
				{"tenants[0].email_domains[0]", `"localhost" is not a domain name`},
				{"tenants[0].email_domains[1]", "is not a domain name"},
				{"tenants[0].email_domains[2]", "is not a domain name"},
				{"tenants[0].email_domains[3]", "is not a domain name"},
			},
		},
		{
			name:  "empty allowed group",
			edits: []edit{{"tenants[0].allowed_groups", []any{"readers", " "}}},
			want:  []problem{{"tenants[0].allowed_groups[1]", "must not be empty"}},
		},
		{
			name:  "default_relay_state protocol-relative",
			edits: []edit{{"tenants[0].default_relay_state", "//evil.example"}},
			want:  []problem{{"tenants[0].default_relay_state", `"//evil.example" must be a path on this site`}},
		},
		{
			name:  "default_relay_state absolute URL",
			edits: []edit{{"tenants[0].default_relay_state", "https://evil.example/"}},
			want:  []problem{{"tenants[0].default_relay_state", "must be a path on this site"}},
		},
		{
			name:  "default_relay_state backslash",
			edits: []edit{{"tenants[0].default_relay_state", `/\evil.example`}},
			want:  []problem{{"tenants[0].default_relay_state", "must be a path on this site"}},
		},
		{
			name:  "default_relay_state relative",
			edits: []edit{{"tenants[0].default_relay_state", "documents"}},
			want:  []problem{{"tenants[0].default_relay_state", "must be a path on this site"}},
		},
		{
			name:  "unknown nameid_format",
			edits: []edit{{"tenants[1].nameid_format", "upn"}},
			want:  []problem{{"tenants[1].nameid_format", `"upn" is not one of email, unspecified, persistent, transient`}},
		},

		// Log.
		{
			name:  "log level and format",
			edits: []edit{{"log", map[string]any{"level": "loud", "format": "xml"}}},
			want: []problem{
				{"log.level", `"loud" is not one of debug, info, warn, error`},
				{"log.format", `"xml" is not json or text`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := apply(t, baseDoc(), tt.edits...)
			_, err := config.Parse(marshal(t, doc), fx.dir, envOf(tt.env))
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("Parse: got %q, want no error", err)
			}
			checkProblems(t, err, tt.want)
		})
	}
}

// TestParseReportsEveryProblem puts many mistakes into one file and checks
// that every one is reported, each once, with its key path.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := map[string]any{
		"public_url":       "https://sso.example.com/app",
		"listen":           "127.0.0.1:9090",
		"upstream":         "ftp://x",
		"upstream_timeout": "60",
		"shutdown_timeout": "-1s",
		"sp": map[string]any{
			"cert_file": "missing-cert.pem",
			"key_file":  spKeyFile,
		},
		"session": map[string]any{
			"lifetime": "forever",
			"keys": []any{
				map[string]any{"hash_key": b64n(31), "block_key": b64n(20)},
				map[string]any{"hash_key": "%%%", "block_key_env": "UNSET"},
				map[string]any{"hash_key_file": hashKeyFile, "hash_key_env": "H"},
			},
		},
		"tenants": []any{
			map[string]any{"id": "acme", "idp_metadata_file": "idp/missing.xml", "idp_metadata_signing_cert": "signers/none.pem", "email_domains": []any{"acme.example"}},
			map[string]any{"id": "Acme", "idp_metadata_url": "http://idp.example.com/md", "email_domains": []any{"acme.example"}},
			map[string]any{"id": "a/b"},
			map[string]any{"id": "a b", "idp_metadata_file": metadataFile, "idp_metadata_url": "https://idp.example.com/md"},
			map[string]any{"id": "..", "idp_metadata_file": metadataFile, "default_relay_state": "//evil.example"},
			map[string]any{"id": "ä", "idp_metadata_file": metadataFile, "nameid_format": "bogus"},
			map[string]any{"id": "", "idp_metadata_file": metadataFile},
		},
		"log": map[string]any{"level": "verbose"},
	}
	want := []problem{
		{"public_url", "must not have a path"},
		{"upstream", "must be an absolute http or https URL"},
		{"upstream_timeout", "not a duration"},
		{"shutdown_timeout", "must be positive"},
		{"admin_listen", "must not share a port with listen"},
		{"sp.cert_file", "does not exist"},
		{"session.lifetime", "not a duration"},
		{"session.keys[0].hash_key", "decodes to 31 bytes"},
		{"session.keys[0].block_key", "decodes to 20 bytes"},
		{"session.keys[1].hash_key", "not valid base64"},
		{"session.keys[1].block_key_env", "environment variable UNSET is not set"},
		{"session.keys[2]", "exactly one of hash_key"},
		{"session.keys[2]", "exactly one of block_key"},
		{"tenants[0].idp_metadata_signing_cert", "does not exist"},
		{"tenants[1].id", `"Acme" duplicates tenants[0].id`},
		{"tenants[1].idp_metadata_url", "must use https"},
		{"tenants[1].email_domains[0]", "is already mapped by tenants[0].email_domains[0]"},
		{"tenants[2].id", "is not URL-safe"},
		{"tenants[2]", "one of idp_metadata_file and idp_metadata_url is required"},
		{"tenants[3].id", "is not URL-safe"},
		{"tenants[3]", "set only one of"},
		{"tenants[4].id", "is not URL-safe"},
		{"tenants[4].default_relay_state", "must be a path on this site"},
		{"tenants[5].id", "is not URL-safe"},
		{"tenants[5].nameid_format", "is not one of"},
		{"tenants[6].id", "is required"},
		{"log.level", "is not one of"},
	}
	cfg, err := config.Parse(marshal(t, doc), fx.dir, envOf(map[string]string{"H": b64(hashKey)}))
	checkProblems(t, err, want)

	// The joined error lists every problem, one a line.
	if got, wantN := strings.Count(err.Error(), "\n")+1, len(want); got != wantN {
		t.Errorf("lines in error: got %d, want %d:\n%s", got, wantN, err)
	}
	// A checker goes on to load metadata from the partial config; the
	// tenants keep their indexes.
	if cfg == nil {
		t.Fatal("Parse: got nil Config with validation problems, want a partial one")
	}
	if len(cfg.Tenants) != 7 {
		t.Fatalf("partial Tenants: got %d, want 7", len(cfg.Tenants))
	}
	if got, want := cfg.Tenants[4].MetadataFile, fx.path(metadataFile); got != want {
		t.Errorf("partial Tenants[4].MetadataFile: got %q, want %q", got, want)
	}
}

// TestParseDocument checks problems with the document as a whole.
func TestParseDocument(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []problem
	}{
		{"empty", "", []problem{{"", "config is empty"}}},
		{"blank", "  \n\n", []problem{{"", "config is empty"}}},
		{"only a comment", "# gateway\n", []problem{{"", "config is empty"}}},
		{
			name: "two documents",
			yaml: "public_url: https://a.example\n---\npublic_url: https://b.example\n",
			want: []problem{{"", "config must hold exactly one YAML document"}},
		},
		{
			name: "not YAML",
			yaml: "public_url: [unclosed\n",
			want: []problem{{"", "invalid YAML"}},
		},
		{
			name: "a list, not a mapping",
			yaml: "- public_url: https://a.example\n",
			want: []problem{{"", "must be a mapping (line 1)"}},
		},
		{
			name: "duplicate key",
			yaml: "upstream: http://127.0.0.1:3000\npublic_url: https://a.example\nupstream: http://evil.example\n",
			want: []problem{{"upstream", `mapping key "upstream" already defined at line 1`}},
		},
		{
			name: "an empty mapping reports every required key",
			yaml: "{}\n",
			want: []problem{
				{"public_url", "is required"},
				{"upstream", "is required"},
				{"sp.cert_file", "is required"},
				{"sp.key_file", "is required"},
				{"session.keys", "at least one key is required"},
				{"tenants", "at least one tenant is required"},
			},
		},
		{
			name: "a leading document marker is fine",
			yaml: "---\n{}\n",
			want: []problem{
				{"public_url", "is required"},
				{"upstream", "is required"},
				{"sp.cert_file", "is required"},
				{"sp.key_file", "is required"},
				{"session.keys", "at least one key is required"},
				{"tenants", "at least one tenant is required"},
			},
		},
		{
			name: "too large",
			yaml: "# " + strings.Repeat("x", 4<<20),
			want: []problem{{"", "config is larger than 4194304 bytes"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.yaml), t.TempDir(), envOf(nil))
			checkProblems(t, err, tt.want)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "gateway.yaml")
	cfg, err := config.Load(name, envOf(nil))
	if cfg != nil {
		t.Errorf("Load: got a Config, want nil")
	}
	checkProblems(t, err, []problem{{"", "read config: open " + name}})
}

func TestProblems(t *testing.T) {
	t.Parallel()
	p1 := &config.Problem{Path: "upstream", Msg: "is required"}
	p2 := &config.Problem{Path: "tenants[0].id", Msg: "is required"}
	p3 := &config.Problem{Msg: "config is empty"}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"one", p1, []string{"upstream: is required"}},
		{"no path", p3, []string{"config is empty"}},
		{"joined", errors.Join(p1, p2), []string{"upstream: is required", "tenants[0].id: is required"}},
		{"nested joins", errors.Join(p1, errors.Join(p2, p3)), []string{"upstream: is required", "tenants[0].id: is required", "config is empty"}},
		{"plain error", errors.New("boom"), []string{"boom"}},
		{"joined plain error", errors.Join(p1, errors.New("boom")), []string{"upstream: is required", "boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, p := range config.Problems(tt.err) {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Problems: got %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("same pointers", func(t *testing.T) {
		t.Parallel()
		got := config.Problems(errors.Join(p1, errors.Join(p2)))
		if len(got) != 2 || got[0] != p1 || got[1] != p2 {
			t.Errorf("Problems: got %v, want [%p %p]", got, p1, p2)
		}
	})

	t.Run("one per problem from Parse", func(t *testing.T) {
		t.Parallel()
		_, err := config.Parse([]byte("public_url: ftp://x\nupstream: /y\nlisten: nope\n"), t.TempDir(), envOf(nil))
		got := config.Problems(err)
		want := []string{
			`public_url: must be an absolute http or https URL (got "ftp://x")`,
			`upstream: must be an absolute http or https URL (got "/y")`,
			`listen: must be host:port (got "nope")`,
			"sp.cert_file: is required",
			"sp.key_file: is required",
			"session.keys: at least one key is required",
			"tenants: at least one tenant is required",
		}
		var gotStrs []string
		for _, p := range got {
			gotStrs = append(gotStrs, p.Error())
			var asProblem *config.Problem
			if !errors.As(err, &asProblem) {
				t.Errorf("errors.As(err, *Problem): got false, want true")
			}
		}
		if !slices.Equal(gotStrs, want) {
			t.Errorf("Problems:\ngot  %q\nwant %q", gotStrs, want)
		}
	})
}
