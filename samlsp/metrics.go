package samlsp

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Flow labels.
const (
	flowSP  = "sp"
	flowIDP = "idp"
)

// Metrics are the login metrics. Labels only take tenant IDs from the
// configuration and values from small fixed sets, so an attacker cannot
// create series: an unknown tenant is refused before anything is counted.
type Metrics struct {
	logins        *prometheus.CounterVec
	loginStarts   *prometheus.CounterVec
	loginDuration *prometheus.HistogramVec
	flowDuration  *prometheus.HistogramVec
}

// NewMetrics registers the login metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_logins_total",
			Help: "SAML responses handled at the ACS, by tenant, flow (sp or idp), result (success or failure) and failure reason (none on success).",
		}, []string{"tenant", "flow", "result", "reason"}),
		loginStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_login_starts_total",
			Help: "SP-initiated logins started (redirects to the IdP), by tenant.",
		}, []string{"tenant"}),
		loginDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sso_gateway_login_duration_seconds",
			Help:    "Time to handle a SAML response at the ACS (parse, verify, set the session), by tenant.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"tenant"}),
		flowDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sso_gateway_login_flow_duration_seconds",
			Help:    "SP-initiated login as the user feels it: from the redirect to the IdP until the session is set, by tenant.",
			Buckets: []float64{1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600},
		}, []string{"tenant"}),
	}
	reg.MustRegister(m.logins, m.loginStarts, m.loginDuration, m.flowDuration)
	return m
}

// initTenant creates a tenant's success, start and latency series at zero,
// so that "no successful logins" can be alerted on from the first scrape.
func (m *Metrics) initTenant(id string) {
	for _, flow := range []string{flowSP, flowIDP} {
		m.logins.WithLabelValues(id, flow, "success", "none")
	}
	m.loginStarts.WithLabelValues(id)
	m.loginDuration.WithLabelValues(id)
	m.flowDuration.WithLabelValues(id)
}
