package gateway

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sso-gateway/sso-gateway/internal/buildinfo"
)

// adminHandler serves the admin listener: metrics, health, the tenant
// report, the identity JWT's public keys and the Go profiler. It is never mounted on the public listener.
func (g *Gateway) adminHandler(reg *prometheus.Registry, version string) http.Handler {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(version),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", g.serveReady)
	mux.HandleFunc("GET /tenants", g.serveTenants)
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) { serveJWKS(w, r, g.state.Load()) })
	handleProfiler(mux)
	return mux
}

// handleProfiler serves Go's profiler (net/http/pprof) under
// /debug/pprof/ on mux, path by path; anything else under the prefix is
// 404. net/http/pprof also registers itself on http.DefaultServeMux when
// imported, which no listener of the gateway serves: both have handlers
// of their own (TestProfilerNotOnPublicListener).
func handleProfiler(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/{$}", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	// go tool pprof posts the addresses it wants named.
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	// The runtime's named profiles. block and mutex hold nothing unless
	// their sampling is turned on (runtime.SetBlockProfileRate,
	// SetMutexProfileFraction), which the gateway leaves off: it costs on
	// every contended lock and every wait.
	for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"} {
		mux.Handle("GET /debug/pprof/"+name, pprof.Handler(name))
	}
}

// serveReady answers 503 while draining; otherwise 200, listing every
// tenant that is not ready, or serves its last good metadata because of a
// tenant problem. A tenant's problem does not
// fail the probe: every replica has the same configuration, so taking them
// out of the load balancer would only take every other tenant down too,
// and the tenant's users would not even see the page that tells them to
// call their administrator. sso_gateway_tenant_ready and
// sso_gateway_tenant_problems alert on it instead. The one exception is a
// replica on which no tenant is ready yet and some wait for their metadata
// URL: another replica, which has it, serves better.
func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	st := g.state.Load()
	tenants := g.provider.CurrentTenants().List()
	var body []byte
	ready, waiting := 0, false
	for _, t := range tenants {
		s := g.tenantStatus(st, t)
		switch {
		case !s.ready:
			waiting = waiting || s.transient
			problem := strings.Join(s.problems, "; ")
			if problem == "" {
				problem = "waiting for the first fetch of its IdP metadata URL"
			}
			body = fmt.Appendf(body, "tenant %s: not ready: %s\n", t.ID, problem)
		case s.kept:
			body = fmt.Appendf(body, "tenant %s: ready with its last good IdP metadata; problem: %s\n", t.ID, strings.Join(s.problems, "; "))
		}
		// A ready tenant whose metadata URL fails keeps working with
		// its last good document: /tenants and
		// SSOGatewayIDPMetadataRefreshFailing tell about it.
		if s.ready {
			ready++
		}
	}
	body = fmt.Appendf(body, "%d of %d tenants ready\n", ready, len(tenants))
	status := http.StatusOK
	switch {
	case g.draining.Load():
		status = http.StatusServiceUnavailable
		body = append(body, "draining\n"...)
	case ready == 0 && waiting:
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusOK {
		body = append(body, "ready\n"...)
	} else {
		body = append(body, "not ready\n"...)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// buildInfo is sso_gateway_build_info: constant 1, labelled with the
// version, the VCS revision and the Go version the binary was built with,
// as the toolchain stamped them (see package buildinfo). A non-empty
// version overrides the stamped one.
func buildInfo(version string) prometheus.Collector {
	info := buildinfo.Read()
	if version != "" {
		info.Version = version
	}
	revision := info.Revision
	if revision == "" {
		revision = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sso_gateway_build_info",
		Help:        "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": revision, "goversion": info.GoVersion},
	})
	g.Set(1)
	return g
}
