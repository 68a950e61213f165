package config_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// TestSecuritySettingsParse: trusted proxies, limits, the Redis replay
// cache, the Entra directory ID and the insecure-HTTP override land in
// their typed fields.
func TestSecuritySettingsParse(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	testfiles.Write(t, fx.path("secrets/redis.url"), []byte("rediss://:s3cret@redis.internal:6380/2\n"))
	tests := []struct {
		name  string
		edits []edit
		env   map[string]string
		check func(*testing.T, *config.Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c *config.Config) {
				if c.TrustedProxies != nil || c.AllowInsecureHTTP || c.ReplayCache.RedisURL != "" || c.Tenants[0].EntraTenantID != "" {
					t.Errorf("got %+v %v %+v %q", c.TrustedProxies, c.AllowInsecureHTTP, c.ReplayCache, c.Tenants[0].EntraTenantID)
				}
				want := config.Limits{LoginConcurrencyPerClient: config.DefaultLoginConcurrencyPerClient, LoginConcurrency: config.DefaultLoginConcurrency,
					IPv6ClientPrefix: config.DefaultIPv6ClientPrefix}
				if c.Limits != want {
					t.Errorf("Limits: got %+v, want %+v", c.Limits, want)
				}
			},
		},
		{
			name:  "trusted proxies",
			edits: []edit{{"trusted_proxies", []any{"10.0.0.0/8", " 192.168.1.10 ", "10.1.2.3/16", "::ffff:172.16.0.1", "2001:db8::/32", "::ffff:10.0.0.0/104"}}},
			check: func(t *testing.T, c *config.Config) {
				want := []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.10/32"),
					netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("172.16.0.1/32"),
					netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.0.0.0/8"),
				}
				if !slices.Equal(c.TrustedProxies, want) {
					t.Errorf("TrustedProxies: got %v, want %v", c.TrustedProxies, want)
				}
			},
		},
		{
			name:  "limits",
			edits: []edit{{"limits", map[string]any{"login_concurrency_per_client": 4, "login_concurrency": "100", "ipv6_client_prefix": 56}}},
			check: func(t *testing.T, c *config.Config) {
				if c.Limits != (config.Limits{LoginConcurrencyPerClient: 4, LoginConcurrency: 100, IPv6ClientPrefix: 56}) {
					t.Errorf("Limits: got %+v", c.Limits)
				}
			},
		},
		{
			name:  "redis URL inline",
			edits: []edit{{"replay_cache.redis_url", "redis://redis:6379/0"}},
			check: func(t *testing.T, c *config.Config) {
				if c.ReplayCache.RedisURL != "redis://redis:6379/0" {
					t.Errorf("RedisURL: got %q", c.ReplayCache.RedisURL)
				}
			},
		},
		{
			name:  "redis URL from a file",
			edits: []edit{{"replay_cache.redis_url_file", "secrets/redis.url"}},
			check: func(t *testing.T, c *config.Config) {
				if c.ReplayCache.RedisURL != "rediss://:s3cret@redis.internal:6380/2" {
					t.Errorf("RedisURL: got %q", c.ReplayCache.RedisURL)
				}
			},
		},
		{
			name:  "redis URL from the environment",
			edits: []edit{{"replay_cache.redis_url_env", "REDIS_URL"}},
			env:   map[string]string{"REDIS_URL": "redis://:pw@127.0.0.1:6379"},
			check: func(t *testing.T, c *config.Config) {
				if c.ReplayCache.RedisURL != "redis://:pw@127.0.0.1:6379" {
					t.Errorf("RedisURL: got %q", c.ReplayCache.RedisURL)
				}
			},
		},
		{
			name:  "entra tenant ID is lower-cased",
			edits: []edit{{"tenants[0].entra_tenant_id", " 72F988BF-86F1-41AF-91AB-2D7CD011DB47 "}},
			check: func(t *testing.T, c *config.Config) {
				if got := c.Tenants[0].EntraTenantID; got != "72f988bf-86f1-41af-91ab-2d7cd011db47" {
					t.Errorf("EntraTenantID: got %q", got)
				}
			},
		},
		{
			name:  "http public_url on loopback needs no override",
			edits: []edit{{"public_url", "http://127.0.0.1:8080"}},
			check: func(t *testing.T, c *config.Config) {},
		},
		{
			name:  "http public_url with the override",
			edits: []edit{{"public_url", "http://sso.test.internal"}, {"allow_insecure_http", true}},
			check: func(t *testing.T, c *config.Config) {
				if !c.AllowInsecureHTTP || c.ExternalSecure() {
					t.Errorf("AllowInsecureHTTP %v, ExternalSecure %v", c.AllowInsecureHTTP, c.ExternalSecure())
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(tt.env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestSecuritySettingsProblems(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	tests := []struct {
		name  string
		edits []edit
		env   map[string]string
		want  []problem
	}{
		{
			name:  "http public_url on a real host",
			edits: []edit{{"public_url", "http://sso.example.com"}},
			want:  []problem{{"public_url", `is http on "sso.example.com", so session cookies would cross the network in clear`}},
		},
		{
			name:  "override set to false",
			edits: []edit{{"public_url", "http://10.0.0.5:8080"}, {"allow_insecure_http", false}},
			want:  []problem{{"public_url", "allow_insecure_http: true"}},
		},
		{
			name:  "trusted proxies",
			edits: []edit{{"trusted_proxies", []any{"0.0.0.0/0", "::/0", "lb.internal", "10.0.0.0/33", ""}}},
			want: []problem{
				{"trusted_proxies[0]", "trusts every address"},
				{"trusted_proxies[1]", "trusts every address"},
				{"trusted_proxies[2]", `"lb.internal" is not an IP address or CIDR block`},
				{"trusted_proxies[3]", "is not an IP address or CIDR block"},
				{"trusted_proxies[4]", "is not an IP address or CIDR block"},
			},
		},
		{
			name:  "limits",
			edits: []edit{{"limits", map[string]any{"login_concurrency_per_client": 0, "login_concurrency": "lots"}}},
			want: []problem{
				{"limits.login_concurrency_per_client", `must be a positive whole number (got "0")`},
				{"limits.login_concurrency", `must be a positive whole number (got "lots")`},
			},
		},
		{
			name:  "per-client limit above the total",
			edits: []edit{{"limits", map[string]any{"login_concurrency_per_client": 50, "login_concurrency": 10}}},
			want:  []problem{{"limits.login_concurrency_per_client", "must not exceed login_concurrency (50 > 10)"}},
		},
		{
			name:  "IPv6 client prefix too short",
			edits: []edit{{"limits.ipv6_client_prefix", 16}},
			want:  []problem{{"limits.ipv6_client_prefix", "must be a prefix length from 32 to 128 (got 16)"}},
		},
		{
			name:  "IPv6 client prefix too long",
			edits: []edit{{"limits.ipv6_client_prefix", "129"}},
			want:  []problem{{"limits.ipv6_client_prefix", "must be a prefix length from 32 to 128 (got 129)"}},
		},
		{
			name:  "IPv6 client prefix not a number",
			edits: []edit{{"limits.ipv6_client_prefix", "/64"}},
			want:  []problem{{"limits.ipv6_client_prefix", `must be a positive whole number (got "/64")`}},
		},
		{
			name:  "redis URL scheme",
			edits: []edit{{"replay_cache.redis_url", "http://:hunter2@redis:6379"}},
			want:  []problem{{"replay_cache.redis_url", "must be a redis:// or rediss:// (TLS) URL"}},
		},
		{
			name:  "redis URL without host",
			edits: []edit{{"replay_cache.redis_url", "redis://:hunter2@/0"}},
			want:  []problem{{"replay_cache.redis_url", "must name a host"}},
		},
		{
			name:  "redis URL twice",
			edits: []edit{{"replay_cache", map[string]any{"redis_url": "redis://a:1", "redis_url_env": "X"}}},
			want:  []problem{{"replay_cache", "set at most one of redis_url, redis_url_file and redis_url_env"}},
		},
		{
			name:  "redis URL env unset",
			edits: []edit{{"replay_cache.redis_url_env", "REDIS_URL"}},
			want:  []problem{{"replay_cache.redis_url_env", "environment variable REDIS_URL is not set"}},
		},
		{
			name:  "redis URL file missing",
			edits: []edit{{"replay_cache.redis_url_file", "secrets/nope"}},
			want:  []problem{{"replay_cache.redis_url_file", "secrets/nope"}},
		},
		{
			name:  "entra tenant ID",
			edits: []edit{{"tenants[1].entra_tenant_id", "contoso.onmicrosoft.com"}},
			want:  []problem{{"tenants[1].entra_tenant_id", `"contoso.onmicrosoft.com" is not a directory (tenant) ID`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(tt.env))
			checkProblems(t, err, tt.want)
			// A Redis URL may carry a password: no message repeats it.
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a problem repeats the Redis password: %v", err)
			}
		})
	}
}
