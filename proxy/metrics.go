package proxy

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of a public request outside the gateway's own SAML paths: the
// values of the outcome label of sso_gateway_requests_total.
const (
	outcomeProxied         = "proxied"          // the upstream answered
	outcomeLoginRedirect   = "login_redirect"   // browser sent to sign in
	outcomeUnauthenticated = "unauthenticated"  // 401, no session
	outcomeUpstreamError   = "upstream_error"   // 502
	outcomeUpstreamTimeout = "upstream_timeout" // 504
	outcomeClientClosed    = "client_closed"    // the client went away first
)

// Outcomes lists every outcome label value.
var Outcomes = []string{outcomeProxied, outcomeLoginRedirect, outcomeUnauthenticated, outcomeUpstreamError, outcomeUpstreamTimeout, outcomeClientClosed}

// Metrics are the proxied-traffic metrics.
type Metrics struct {
	requests          *prometheus.CounterVec
	upstreamDuration  prometheus.Histogram
	upstreamResponses *prometheus.CounterVec
}

// NewMetrics registers the proxy metrics on reg, with every series created
// at zero so rates and ratios exist from the first scrape.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_requests_total",
			Help: "Public requests outside the gateway's SAML endpoints, by outcome.",
		}, []string{"outcome"}),
		upstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sso_gateway_upstream_duration_seconds",
			Help:    "Time from forwarding a request to receiving the upstream's response headers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		upstreamResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_upstream_responses_total",
			Help: "Responses received from the upstream, by status class (1xx to 5xx).",
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.upstreamDuration, m.upstreamResponses)
	for _, o := range Outcomes {
		m.requests.WithLabelValues(o)
	}
	for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		m.upstreamResponses.WithLabelValues(c)
	}
	return m
}
