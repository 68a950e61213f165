package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TestSessionCacheDefaults: the configuration's defaults for the session
// cache are samlsp's, which explain them.
func TestSessionCacheDefaults(t *testing.T) {
	t.Parallel()
	if config.DefaultSessionCacheEntries != samlsp.DefaultSessionCacheEntries ||
		int64(config.DefaultSessionCacheMiB)<<20 != samlsp.DefaultSessionCacheBytes {
		t.Errorf("config: %d entries, %d MiB; samlsp: %d entries, %d bytes", config.DefaultSessionCacheEntries, config.DefaultSessionCacheMiB,
			samlsp.DefaultSessionCacheEntries, samlsp.DefaultSessionCacheBytes)
	}
}

// TestSessionCacheOff: session.cache_entries 0 turns the cache off: every
// request decodes its cookie, and none is looked up.
func TestSessionCacheOff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		entries int
		want    string
	}{
		{"on", config.DefaultSessionCacheEntries, `sso_gateway_session_cache_lookups_total{result="hit"} 1`},
		{"off", 0, `sso_gateway_session_cache_lookups_total{result="hit"} 0`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := newTestGateway(t, okUpstream, "")
			cfg := *base.cfg
			cfg.Session.CacheEntries = tt.entries
			gw, err := Build(context.Background(), &cfg, Deps{Registry: prometheus.NewRegistry(), Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			tg := &testGateway{gw: gw, cfg: &cfg, idp: base.idp}
			session := tg.signIn(t)
			for range 2 {
				if rec := get(t, gw.PublicHandler(), "/doc", session); rec.Code != http.StatusOK {
					t.Fatalf("got %d, want 200", rec.Code)
				}
			}
			if body := get(t, gw.AdminHandler(), "/metrics").Body.String(); !strings.Contains(body, tt.want) {
				t.Errorf("metrics lack %q", tt.want)
			}
		})
	}
}
