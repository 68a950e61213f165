package gateway

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/httpguard"
	"github.com/sso-gateway/sso-gateway/internal/replay"
)

// reasonMisdirected is the sso_gateway_rejected_requests_total reason of
// a request for a host the gateway does not serve.
const reasonMisdirected = "misdirected"

// reasonBadHost is the sso_gateway_rejected_requests_total reason of a
// request whose Host is not a host[:port].
const reasonBadHost = "bad_host"

// metrics are the gateway's own metrics: configuration reloads and
// requests refused before routing.
type metrics struct {
	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	lastOK      prometheus.Gauge
	rejected    *prometheus.CounterVec
	throttled   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_config_reloads_total",
			Help: "Configuration reloads (SIGHUP or a change of the file), by result (success or failure).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sso_gateway_config_last_reload_successful",
			Help: "1 when the last configuration reload (or the start-up load) succeeded, 0 when the last reload was refused and an older configuration is serving.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sso_gateway_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded (Unix time), at start-up or by the last successful reload.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_rejected_requests_total",
			Help: "Requests refused before routing, by reason: ambiguous or malformed HTTP/1.x framing on the plaintext public listener (framing, syntax, too_large, h2c), a Host that is not a host[:port] (bad_host, 400), or a Host the gateway does not serve (misdirected; browser navigations are redirected to public_url's host, the rest get 421).",
		}, []string{"reason"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sso_gateway_login_throttled_total",
			Help: "Requests to the SAML endpoints refused with 429 because too many were in flight, by scope (client or total).",
		}, []string{"scope"}),
	}
	reg.MustRegister(m.reloads, m.lastSuccess, m.lastOK, m.rejected, m.throttled)
	m.throttled.WithLabelValues(scopeClient)
	m.throttled.WithLabelValues(scopeTotal)
	for _, r := range []string{httpguard.ReasonFraming, httpguard.ReasonSyntax, httpguard.ReasonTooLarge, httpguard.ReasonH2C, reasonMisdirected, reasonBadHost} {
		m.rejected.WithLabelValues(r)
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	return m
}

// tenantCollector reports each configured tenant's state at scrape time,
// from the tenant table in force, so removed tenants leave no stale series.
type tenantCollector struct {
	g *Gateway
}

var (
	readyDesc = prometheus.NewDesc("sso_gateway_tenant_ready",
		"1 when the tenant has usable IdP metadata and can sign users in, else 0.", []string{"tenant"}, nil)
	problemsDesc = prometheus.NewDesc("sso_gateway_tenant_problems",
		"Problems with the tenant's own configuration and IdP metadata found by the last load or reload (a metadata file that is missing, unparsable or expired, metadata of another Entra directory, a pinned signer that does not load); 0 when none. A tenant with problems is not ready, or keeps serving its last good metadata until they are fixed.", []string{"tenant"}, nil)
	certExpiryDesc = prometheus.NewDesc("sso_gateway_idp_certificate_expiry_timestamp_seconds",
		"When the earliest-expiring currently valid signing certificate in the tenant's IdP metadata expires (Unix time).", []string{"tenant"}, nil)
	metadataSuccessDesc = prometheus.NewDesc("sso_gateway_idp_metadata_last_success_timestamp_seconds",
		"When the tenant's IdP metadata was last loaded, or confirmed unchanged by its URL (Unix time).", []string{"tenant"}, nil)
)

func (c *tenantCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readyDesc
	ch <- problemsDesc
	ch <- certExpiryDesc
	ch <- metadataSuccessDesc
}

func (c *tenantCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.g.state.Load()
	if st == nil {
		return
	}
	now := c.g.clock.Now()
	for _, t := range c.g.provider.CurrentTenants().List() {
		s := c.g.tenantStatus(st, t)
		ready := 0.0
		if s.ready {
			ready = 1
			if exp := t.IDP().EarliestExpiry(now); !exp.IsZero() {
				ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(exp.Unix()), t.ID)
			}
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready, t.ID)
		problems := 0
		if l := st.loads[t.ID]; l != nil {
			problems = len(l.problems)
		}
		ch <- prometheus.MustNewConstMetric(problemsDesc, prometheus.GaugeValue, float64(problems), t.ID)
		if !s.loaded.IsZero() {
			ch <- prometheus.MustNewConstMetric(metadataSuccessDesc, prometheus.GaugeValue, float64(s.loaded.Unix()), t.ID)
		}
	}
}

// replayCollector reports whether the shared replay store answers, asked
// at scrape time. Without a shared store it reports nothing.
type replayCollector struct {
	store *replay.Redis
}

var replayUpDesc = prometheus.NewDesc("sso_gateway_replay_store_up",
	"1 when the Redis replay store answered a PING at this scrape, else 0 (logins fail closed while it is 0). Absent without replay_cache.", nil, nil)

func (c replayCollector) Describe(ch chan<- *prometheus.Desc) { ch <- replayUpDesc }

func (c replayCollector) Collect(ch chan<- prometheus.Metric) {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	up := 1.0
	if err := c.store.Ping(ctx); err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(replayUpDesc, prometheus.GaugeValue, up)
}
