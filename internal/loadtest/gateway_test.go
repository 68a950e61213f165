package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
)

// TestGatewayConfig checks the generated configuration with the gateway's
// own validation: it must load without any problem, with the benchmark's
// tenant, upstream, login limit and replay cache.
func TestGatewayConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idp, err := newIDP("test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sp"})
	if err != nil {
		t.Fatal(err)
	}
	f := gatewayFiles{
		spCert: filepath.Join(dir, "sp.crt"), spKey: filepath.Join(dir, "sp.key"), idpMetadata: filepath.Join(dir, "idp.xml"),
		hashKey: randomBase64(64), blockKey: randomBase64(32), entraTenantID: idp.TenantID,
	}
	for path, data := range map[string][]byte{f.spCert: sp.CertPEM(), f.spKey: sp.KeyPEM(), f.idpMetadata: idp.MetadataXML()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, redisURL := range []string{"", "redis://127.0.0.1:6390"} {
		t.Run("redis="+redisURL, func(t *testing.T) {
			t.Parallel()
			doc := gatewayConfig(f, "127.0.0.1:18080", "127.0.0.1:19090", "127.0.0.1:18081", redisURL)
			cfg, err := config.Parse([]byte(doc), dir, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("config.Parse: got error %q, want success\n%s", err, doc)
			}
			if got, want := cfg.Upstream.String(), "http://127.0.0.1:18081"; got != want {
				t.Errorf("upstream: got %q, want %q", got, want)
			}
			if got, want := cfg.Limits.LoginConcurrencyPerClient, 4*loginPosters; got != want {
				t.Errorf("login_concurrency_per_client: got %d, want %d", got, want)
			}
			if got := cfg.ReplayCache.RedisURL; got != redisURL {
				t.Errorf("replay_cache.redis_url: got %q, want %q", got, redisURL)
			}
			if len(cfg.Tenants) != 1 || cfg.Tenants[0].ID != gatewayTenant || cfg.Tenants[0].EntraTenantID != idp.TenantID || len(cfg.Tenants[0].Problems) > 0 {
				t.Errorf("tenants: got %+v, want %s of directory %s, without problems", cfg.Tenants, gatewayTenant, idp.TenantID)
			}
		})
	}
}

const metricsPage = `# HELP sso_gateway_requests_total Public requests outside the gateway's SAML endpoints, by outcome.
# TYPE sso_gateway_requests_total counter
sso_gateway_requests_total{outcome="client_closed"} 3
sso_gateway_requests_total{outcome="login_redirect"} 0
sso_gateway_requests_total{outcome="proxied"} 123456
sso_gateway_requests_total{outcome="unauthenticated"} 1e+06
sso_gateway_requests_in_flight 2
sso_gateway_requests_total_other{outcome="proxied"} 7
sso_gateway_upstream_responses_total{code="2xx"} 123456
`

func TestMetricByLabel(t *testing.T) {
	t.Parallel()
	got := metricByLabel(metricsPage, "sso_gateway_requests_total", "outcome")
	want := map[string]float64{"client_closed": 3, "login_redirect": 0, "proxied": 123456, "unauthenticated": 1e6}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
}

func TestCheckOutcomes(t *testing.T) {
	t.Parallel()
	before := map[string]float64{"proxied": 100, "client_closed": 5}
	for _, tc := range []struct {
		name    string
		after   map[string]float64
		wantErr string
	}{
		{"all proxied", map[string]float64{"proxied": 50000, "client_closed": 5}, ""},
		{"the client stopped mid-request", map[string]float64{"proxied": 50000, "client_closed": 5 + 64}, ""},
		{"too many closed", map[string]float64{"proxied": 50000, "client_closed": 5 + 65}, "client_closed: 65"},
		{"session refused", map[string]float64{"proxied": 100, "login_redirect": 40000, "client_closed": 5}, "login_redirect: 40000"},
		{"several", map[string]float64{"proxied": 100, "upstream_error": 2, "refused": 1}, "refused: 1, upstream_error: 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkOutcomes(before, tc.after, 32)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("got error %q, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}

func TestUntraversable(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	open := filepath.Join(root, "open", "inner")
	closed := filepath.Join(root, "closed", "inner")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(closed), 0o700); err != nil {
		t.Fatal(err)
	}
	if got, want := untraversable(closed), filepath.Dir(closed); got != want {
		t.Errorf("untraversable(%s): got %q, want %q", closed, got, want)
	}
	// The test's own temporary folder may be closed above root.
	if got := untraversable(open); got != "" && !strings.HasPrefix(root, got) {
		t.Errorf("untraversable(%s): got %q, want \"\" or a folder above %s", open, got, root)
	}
}
