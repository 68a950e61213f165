package metadata

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count metadata fetches. The per-tenant gauges (readiness, last
// success, certificate expiry) are read from the tenants at scrape time by
// the gateway, so they never go stale.
type Metrics struct {
	refreshes *prometheus.CounterVec
}

// NewMetrics registers the metadata metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_idp_metadata_refresh_total",
			Help: "Fetches of idp_metadata_url, by tenant and result (success, not_modified, fetch_error, invalid).",
		}, []string{"tenant", "result"}),
	}
	reg.MustRegister(m.refreshes)
	return m
}

// Forget removes a tenant's series, when the tenant is no longer
// configured.
func (m *Metrics) Forget(tenant string) {
	m.refreshes.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
}
