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
	outcomeRefused         = "refused"          // 400 or 500, not forwarded (an upgrade other than websocket; the identity JWT not signed)
	outcomeVerified        = "verified"         // forward auth: 200 with the identity
	outcomeVerifyDenied    = "verify_denied"    // forward auth: no session (401, or 302 to sign in), or 403
)

// Outcomes returns every outcome label value, in a new slice on each call.
func Outcomes() []string {
	return []string{outcomeProxied, outcomeLoginRedirect, outcomeUnauthenticated, outcomeUpstreamError, outcomeUpstreamTimeout, outcomeClientClosed, outcomeRefused, outcomeVerified, outcomeVerifyDenied}
}

// statusClasses are the values of the code label.
var statusClasses = []string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Metrics are the proxied-traffic metrics. The labelled series are looked
// up once here, not on every request.
type Metrics struct {
	requests          map[string]prometheus.Counter // by outcome
	upstreamDuration  prometheus.Histogram
	upstreamResponses map[string]prometheus.Counter // by status class
	inFlight          prometheus.Gauge
}

// NewMetrics registers the proxy metrics on reg, with every series created
// at zero so rates and ratios exist from the first scrape.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_requests_total",
		Help: "Public requests outside the gateway's SAML endpoints, by outcome.",
	}, []string{"outcome"})
	responses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_upstream_responses_total",
		Help: "Responses received from the upstream, by status class (1xx to 5xx).",
	}, []string{"code"})
	m := &Metrics{
		requests: map[string]prometheus.Counter{},
		upstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sso_gateway_upstream_duration_seconds",
			Help:    "Time from forwarding a request to receiving the upstream's response headers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		upstreamResponses: map[string]prometheus.Counter{},
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sso_gateway_requests_in_flight",
			Help: "Public requests outside the SAML endpoints being served now, long downloads and open websockets included.",
		}),
	}
	reg.MustRegister(requests, m.upstreamDuration, responses, m.inFlight)
	for _, o := range Outcomes() {
		m.requests[o] = requests.WithLabelValues(o)
	}
	for _, c := range statusClasses {
		m.upstreamResponses[c] = responses.WithLabelValues(c)
	}
	return m
}
