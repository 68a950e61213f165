package config_test

import (
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/gctune"
)

// TestGCSettings: gc.gogc and gc.memory_limit_ratio default to gctune's
// defaults, take what is set, and refuse what is not a setting.
func TestGCSettings(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, tt := range []struct {
		name  string
		edits []edit
		want  config.GC
	}{
		{"defaults", nil, config.GC{GOGC: gctune.DefaultGOGC, MemoryLimitRatio: gctune.DefaultMemoryLimitRatio}},
		{"set", []edit{{"gc", map[string]any{"gogc": 200, "memory_limit_ratio": 0.8}}}, config.GC{GOGC: 200, MemoryLimitRatio: 0.8}},
		{"ratio 1", []edit{{"gc.memory_limit_ratio", "1"}}, config.GC{GOGC: gctune.DefaultGOGC, MemoryLimitRatio: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.GC != tt.want {
				t.Errorf("got %+v, want %+v", c.GC, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		edits []edit
		want  []problem
	}{
		{"gogc zero", []edit{{"gc.gogc", 0}}, []problem{{"gc.gogc", `must be a positive whole number (got "0")`}}},
		{"gogc off", []edit{{"gc.gogc", "off"}}, []problem{{"gc.gogc", `must be a positive whole number (got "off")`}}},
		{"ratio zero", []edit{{"gc.memory_limit_ratio", 0}}, []problem{{"gc.memory_limit_ratio", `must be a number above 0 and at most 1 (got "0")`}}},
		{"ratio above 1", []edit{{"gc.memory_limit_ratio", 1.5}}, []problem{{"gc.memory_limit_ratio", `(got "1.5")`}}},
		{"ratio a percentage", []edit{{"gc.memory_limit_ratio", "90%"}}, []problem{{"gc.memory_limit_ratio", `(got "90%")`}}},
		{"unknown key", []edit{{"gc.gomemlimit", "400MiB"}}, []problem{{"gc.gomemlimit", "unknown key"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			checkProblems(t, err, tt.want)
		})
	}
}

// TestSessionCacheSettings: session.cache_entries and session.cache_mib
// default to the session cache's bounds; cache_entries 0 turns it off.
func TestSessionCacheSettings(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, tt := range []struct {
		name        string
		edits       []edit
		entries, mb int
	}{
		{"defaults", nil, config.DefaultSessionCacheEntries, config.DefaultSessionCacheMiB},
		{"set", []edit{{"session.cache_entries", 500}, {"session.cache_mib", "16"}}, 500, 16},
		{"off", []edit{{"session.cache_entries", 0}}, 0, config.DefaultSessionCacheMiB},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Session.CacheEntries != tt.entries || c.Session.CacheMiB != tt.mb {
				t.Errorf("got %d entries, %d MiB; want %d, %d", c.Session.CacheEntries, c.Session.CacheMiB, tt.entries, tt.mb)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		edits []edit
		want  []problem
	}{
		{"negative entries", []edit{{"session.cache_entries", -1}}, []problem{{"session.cache_entries", `must be a whole number, 0 for no cache (got "-1")`}}},
		{"zero MiB", []edit{{"session.cache_mib", 0}}, []problem{{"session.cache_mib", `must be a positive whole number (got "0")`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(marshal(t, apply(t, baseDoc(), tt.edits...)), fx.dir, envOf(nil))
			checkProblems(t, err, tt.want)
		})
	}
}
