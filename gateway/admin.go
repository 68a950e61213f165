package gateway

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sso-gateway/sso-gateway/internal/buildinfo"
)

// adminHandler serves the admin listener: metrics and health. It is never
// mounted on the public listener.
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
	return mux
}

// serveReady answers 503 while draining and while no tenant can sign
// anyone in; otherwise 200. A tenant without IdP metadata (its metadata URL
// has not answered) is listed as not ready but does not fail the probe:
// taking every replica out of the load balancer would take every other
// tenant down with it. sso_gateway_tenant_ready alerts on it instead.
func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	tenants := g.provider.CurrentTenants().List()
	var body []byte
	ready := 0
	for _, t := range tenants {
		if t.Ready() {
			ready++
			continue
		}
		reason := "no IdP metadata yet"
		if s, ok := g.refresher.Status(t.ID); ok && s.LastError != "" {
			reason = s.LastError
		}
		body = fmt.Appendf(body, "tenant %s: not ready: %s\n", t.ID, reason)
	}
	body = fmt.Appendf(body, "%d of %d tenants ready\n", ready, len(tenants))
	status := http.StatusOK
	switch {
	case g.draining.Load():
		status = http.StatusServiceUnavailable
		body = append(body, "draining\n"...)
	case ready == 0:
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
