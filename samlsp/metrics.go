package samlsp

import (
	"sync/atomic"

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
	logouts       *prometheus.CounterVec
	handoffs      *prometheus.CounterVec // by result only: see handoff.go
	// sessionRejections are looked up once: Authenticate runs on every
	// request.
	sessionRejections map[string]prometheus.Counter
	// sessionCacheHits and sessionCacheMisses count the session cache's
	// lookups; cache is the cache in use, for the gauges.
	sessionCacheHits, sessionCacheMisses prometheus.Counter
	cache                                atomic.Pointer[sessionCache]
}

// Reasons a session cookie is not a session, the values of the reason
// label of sso_gateway_session_rejections_total.
const (
	rejectInvalid = "invalid"     // does not decode: tampered, truncated, or made with a key no longer configured
	rejectExpired = "expired"     // past its lifetime or the IdP's SessionNotOnOrAfter
	rejectTenant  = "tenant_gone" // its tenant is no longer configured
	rejectHost    = "wrong_host"  // presented at a host that does not serve its tenant
	rejectPolicy  = "policy"      // the tenant's current policy (allowed_groups) refuses it
	// rejectDuplicate: the request names the session cookie, or one of its
	// pieces, more than once. Which copy the browser lists first depends
	// on path length and age, so a copy planted for a parent domain or a
	// deeper path would decide who the user is.
	rejectDuplicate = "duplicate_cookie"
)

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
	m.logouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_logouts_total",
		Help: "Single logouts, by tenant, flow (sp: started at the gateway, idp: started at the IdP) and result (success: the IdP took part; local: the IdP has no logout endpoint or could not be reached; failure: its message did not validate). The local session always ends.",
	}, []string{"tenant", "flow", "result"})
	rejections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_session_rejections_total",
		Help: "Session cookies presented but not accepted, by reason (invalid, expired, tenant_gone, wrong_host, policy, duplicate_cookie). A jump of invalid after a change of session keys means a key was removed too early.",
	}, []string{"reason"})
	m.sessionRejections = map[string]prometheus.Counter{}
	for _, r := range []string{rejectInvalid, rejectExpired, rejectTenant, rejectHost, rejectPolicy, rejectDuplicate} {
		m.sessionRejections[r] = rejections.WithLabelValues(r)
	}
	m.handoffs = newHandoffCounter()
	lookups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_session_cache_lookups_total",
		Help: "Session cookies looked up in the cache of decoded sessions, by result (hit, miss). A miss decodes the cookie (HMAC, AES, JSON).",
	}, []string{"result"})
	m.sessionCacheHits = lookups.WithLabelValues("hit")
	m.sessionCacheMisses = lookups.WithLabelValues("miss")
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sso_gateway_session_cache_entries",
		Help: "Decoded sessions in the session cache.",
	}, func() float64 { n, _ := m.cache.Load().size(); return float64(n) })
	bytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sso_gateway_session_cache_bytes",
		Help: "Memory the session cache holds, estimated: the cookie values and the decoded sessions.",
	}, func() float64 { _, b := m.cache.Load().size(); return float64(b) })
	reg.MustRegister(m.logins, m.loginStarts, m.loginDuration, m.flowDuration, m.logouts, rejections, m.handoffs, lookups, entries, bytes)
	return m
}

// initTenant creates a tenant's success and start counters at zero, so
// that "no successful logins" can be alerted on from the first scrape. The
// latency histograms appear with the first login: at thousands of tenants,
// empty histograms would be most of the series.
func (m *Metrics) initTenant(id string) {
	for _, flow := range []string{flowSP, flowIDP} {
		m.logins.WithLabelValues(id, flow, "success", "none")
	}
	m.loginStarts.WithLabelValues(id)
}

// forgetTenant removes a tenant's series when it is no longer configured.
func (m *Metrics) forgetTenant(id string) {
	match := prometheus.Labels{"tenant": id}
	m.logins.DeletePartialMatch(match)
	m.loginStarts.DeletePartialMatch(match)
	m.loginDuration.DeletePartialMatch(match)
	m.flowDuration.DeletePartialMatch(match)
	m.logouts.DeletePartialMatch(match)
}
