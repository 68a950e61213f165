package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// loginBodyTimeout bounds the arrival of the body of a POST to the ACS or
// the SLO endpoint, which the browser relays from the IdP. A real one is
// at most samlsp.MaxACSBody (256 KiB), usually 10 to 50 KiB, and arrives
// in milliseconds; 10 s, like the header timeout, still lets the largest
// through at 26 KB/s. The body is read before the request takes a slot,
// so a client trickling it costs a connection for this long, not a slot.
const loginBodyTimeout = 10 * time.Second

// Pools of the SAML endpoints. Each admits limits.login_concurrency
// requests in all and limits.login_concurrency_per_client per client, and
// a request holds its slot only while the gateway works on it: its body,
// if any, has arrived, so only CPU (XML parsing, signature checks,
// decryption) and the replay store keep it. The pools are separate so
// that a flood of one kind of work cannot starve the others: a flood of
// responses to verify does not stop anyone from signing out or choosing
// their organisation.
const (
	// poolACS: POST login/{id}, the IdP's signed response. The costliest:
	// up to 256 KiB of XML, signature verification, decryption, a replay
	// store round trip.
	poolACS = "acs"
	// poolSLO: slo/{id}, the IdP's signed logout message (GET or POST)
	// and the gateway's signed answer. Sign-out must work while sign-in
	// is flooded.
	poolSLO = "slo"
	// poolPages: everything else under the prefix (GET login/{id},
	// select, logout, handoff, metadata). No body; answered in
	// microseconds, except a sign-out with a session, which signs one
	// LogoutRequest.
	poolPages = "pages"
)

// newBodyTimeouts registers the counter of SAML request bodies that did
// not arrive within loginBodyTimeout.
func newBodyTimeouts(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sso_gateway_login_body_timeouts_total",
		Help: "Requests to the ACS or SLO endpoints whose body did not arrive in time; they got 408 and their connection was closed.",
	})
	reg.MustRegister(c)
	return c
}

// loginPools are the three limiters of the SAML endpoints.
type loginPools struct {
	acs, slo, pages *throttle
}

func newLoginPools(l config.Limits) *loginPools {
	o := throttleOptions{PerClient: l.LoginConcurrencyPerClient, Total: l.LoginConcurrency, IPv6Prefix: l.IPv6ClientPrefix}
	return &loginPools{acs: newThrottle(o), slo: newThrottle(o), pages: newThrottle(o)}
}

// of returns r's pool and whether its body is read before it enters: the
// ACS and SLO endpoints read a form; nothing else under the prefix reads
// a body. Paths are matched escaped, as samlsp.Provider routes them.
func (p *loginPools) of(r *http.Request) (name string, l *throttle, readsBody bool) {
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, samlsp.LoginPath) && r.Method == http.MethodPost:
		return poolACS, p.acs, true
	case strings.HasPrefix(path, samlsp.SLOPath):
		return poolSLO, p.slo, r.Method == http.MethodPost
	default:
		return poolPages, p.pages, false
	}
}

// serveSAML serves a request to the SAML endpoints: its body first, within
// loginBodyTimeout, then the work, within its pool's limits.
func (g *Gateway) serveSAML(w http.ResponseWriter, r *http.Request, st *state, info reqinfo.Origin) {
	pool, limiter, readsBody := st.logins.of(r)
	if readsBody && !g.readLoginBody(w, r, info) {
		return
	}
	release, refused := limiter.Acquire(info.Client)
	if refused != "" {
		g.metrics.throttled.WithLabelValues(refused).Inc()
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "sign-in request refused: too many in flight",
			slog.String("scope", refused), slog.String("pool", pool), slog.String("client_ip", info.String()),
			slog.String("path", r.URL.Path), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		w.Header().Set("Retry-After", "2")
		page.Write(w, r, page.Errorf(http.StatusTooManyRequests,
			"Too many sign-ins are in progress from your network. Please try again in a moment.",
			fmt.Errorf("gateway: login concurrency limit (%s, %s)", pool, refused)))
		return
	}
	defer release()
	if g.admitted != nil {
		g.admitted(r)
	}
	g.provider.ServeHTTP(w, r)
}

// readLoginBody reads r's body, at most samlsp.MaxACSBody and one byte
// more, within loginBodyTimeout, and hands the handler that copy, so that
// parsing it never waits for the network. It answers and returns false
// when the body does not arrive. The copy grows as bytes arrive: sizing
// it by Content-Length would let a client that sends nothing make the
// gateway hold 256 KiB. A longer body is cut at one byte over the limit,
// which the handlers refuse as too large; its rest is never read (the
// exchange closes the connection).
func (g *Gateway) readLoginBody(w http.ResponseWriter, r *http.Request, info reqinfo.Origin) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	// A socket deadline, so real time whatever the injected clock says.
	// A test recorder does not support it; its bodies are in memory.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.loginBodyTimeout))
	g.bodiesArriving.Add(1)
	buf, err := io.ReadAll(io.LimitReader(r.Body, samlsp.MaxACSBody+1))
	g.bodiesArriving.Add(-1)
	// Cleared at once: after the body, net/http waits on the connection
	// to notice a client that goes away, and a deadline there would
	// cancel the request while it is being verified.
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		status, msg := http.StatusBadRequest, "The request could not be read."
		if errors.Is(err, os.ErrDeadlineExceeded) {
			status, msg = http.StatusRequestTimeout, "The sign-in message took too long to arrive. Please try again."
			g.bodyTimeouts.Inc()
		}
		g.log.LogAttrs(r.Context(), slog.LevelWarn, "sign-in request refused: body not received",
			slog.String("client_ip", info.String()), slog.String("path", r.URL.Path),
			slog.Int("received_bytes", len(buf)), slog.String("error", err.Error()),
			slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		// Where the body stands is unknown: the connection ends.
		w.Header().Set("Connection", "close")
		page.Write(w, r, page.Errorf(status, msg, fmt.Errorf("gateway: read SAML request body: %w", err)))
		// The rest of the body is not worth the drain the exchange
		// grants: the client had its time.
		_ = rc.SetReadDeadline(time.Now())
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	return true
}
