package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// validator accumulates problems while it builds a Config, so that every
// problem is reported, not only the first.
type validator struct {
	publicHost string // lower case, for tenants' hosts to be checked against
	dir        string
	env        LookupEnv
	problems   []error
	warnings   []*Problem
	files      []string // every file the configuration names
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, &Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(path, format string, args ...any) {
	v.warnings = append(v.warnings, &Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// forTenant runs check, and makes the problems it finds tenant problems
// of t: they affect t alone (see Problem).
func (v *validator) forTenant(t *Tenant, check func()) {
	before := len(v.problems)
	check()
	for _, err := range v.problems[before:] {
		p := err.(*Problem)
		p.Tenant = t.ID
		t.Problems = append(t.Problems, p)
	}
}

// path resolves a file name from the config against the config's folder
// and records it as a file the configuration depends on, without reading
// it.
func (v *validator) path(s string) string {
	if !filepath.IsAbs(s) {
		s = filepath.Join(v.dir, s)
	}
	v.files = append(v.files, s)
	return s
}

func (v *validator) config(f *file) *Config {
	c := &Config{}
	c.PublicURL = v.publicURL("public_url", f.PublicURL)
	if c.PublicURL != nil {
		v.publicHost = strings.TrimSuffix(strings.ToLower(c.PublicURL.Hostname()), ".")
	}
	c.Upstream = v.httpURL("upstream", f.Upstream, true)
	c.UpstreamHost = v.hostPort("upstream_host", f.UpstreamHost)
	c.UpstreamTimeout = v.duration("upstream_timeout", f.UpstreamTimeout, DefaultUpstreamTimeout)
	c.ShutdownTimeout = v.duration("shutdown_timeout", f.ShutdownTimeout, DefaultShutdownTimeout)
	c.ShutdownDelay = DefaultShutdownDelay
	if d, err := time.ParseDuration(f.ShutdownDelay); err == nil && d == 0 {
		c.ShutdownDelay = 0 // no delay: nothing balances load in front
	} else {
		c.ShutdownDelay = v.duration("shutdown_delay", f.ShutdownDelay, DefaultShutdownDelay)
	}
	if c.ShutdownDelay > 5*time.Minute {
		v.add("shutdown_delay", "must be at most 5m (got %s)", c.ShutdownDelay)
	}
	c.AllowInsecureHTTP = f.AllowInsecure != nil && *f.AllowInsecure
	if u := c.PublicURL; u != nil && u.Scheme == "http" && !isLoopback(u.Hostname()) && !c.AllowInsecureHTTP {
		v.add("public_url", "is http on %q, so session cookies would cross the network in clear: use https (TLS may end at a load balancer in front), or set allow_insecure_http: true for a throwaway test deployment", u.Hostname())
	}
	c.TrustedProxies = v.trustedProxies("trusted_proxies", f.TrustedProxies)
	c.Limits = v.limits("limits", &f.Limits)
	c.ReplayCache = v.replayCache("replay_cache", &f.ReplayCache)

	if f.TLS != nil {
		c.TLS = v.tlsPair("tls", f.TLS)
	}
	defaultListen := ":8080"
	if f.TLS != nil {
		defaultListen = ":8443"
	}
	c.Listen = v.listenAddr("listen", f.Listen, defaultListen)
	c.AdminListen = v.listenAddr("admin_listen", f.AdminListen, DefaultAdminListen)
	v.adminExposure("admin_listen", c.AdminListen)
	if sharePort(c.Listen, c.AdminListen) {
		v.add("admin_listen", "must not share a port with listen (%s and %s): metrics and health must never be served on the public listener", c.AdminListen, c.Listen)
	}

	c.SP = v.sp("sp", &f.SP)
	c.Session = v.session("session", &f.Session)
	if f.IdentityJWT != nil {
		c.IdentityJWT = v.identityJWT("identity_jwt", f.IdentityJWT)
	}
	c.Tenants = v.tenants("tenants", f.Tenants)
	c.Log = v.log("log", &f.Log)
	c.GC = v.gc("gc", &f.GC)
	if id := c.Log.DebugAssertionTenant; id != "" && !slices.ContainsFunc(c.Tenants, func(t Tenant) bool { return t.ID == id }) {
		v.add("log.debug_assertion_tenant", "%q is not a configured tenant", id)
	}
	c.Files = v.files
	c.Warnings = v.warnings
	return c
}

func (v *validator) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.add(path, "not a duration like 90s or 8h: %q", s)
		return def
	}
	if d <= 0 {
		v.add(path, "must be positive (got %s)", s)
		return def
	}
	return d
}
