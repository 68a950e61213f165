// Package proxy is the last two steps of the gateway's public request path
// (the router in internal/gateway sends it every request that is not for
// the gateway's own endpoints): it checks the session cookie, then
// forwards the request to the upstream with verified identity headers.
//
// Requests without a session never reach the upstream. A browser
// navigation is sent to sign in; anything else (XHR, fetch, WebDAV clients,
// websockets) gets 401 with a small JSON body, so background requests never
// start logins or pile up tracking cookies.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/sso-gateway/sso-gateway/internal/identityjwt"

	"github.com/sso-gateway/sso-gateway/internal/logging"
	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/redirect"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Authenticator decides who is signed in and how to sign in. *samlsp.Provider
// implements it.
type Authenticator interface {
	// Authenticate returns the request's session; false means none.
	Authenticate(r *http.Request) (*samlsp.Session, bool)
	// LoginRedirect sends a browser without a session to sign in.
	LoginRedirect(w http.ResponseWriter, r *http.Request)
	// LoginURL is where the browser that sent r signs in and returns to
	// returnTo, a path checked with redirect.Local ("" for the default).
	LoginURL(r *http.Request, returnTo string) string
	// SessionCookieName is the session cookie's name.
	SessionCookieName() string
}

var _ Authenticator = (*samlsp.Provider)(nil)

// Asserter signs a session's identity as a JWT (HeaderJWTAssertion).
// *identityjwt.Signer implements it.
type Asserter interface {
	// Token returns s's token, kept in c (which is kept with s's
	// rendered identity headers) until it must be signed again.
	Token(s *samlsp.Session, c *identityjwt.Cache) (string, error)
}

var _ Asserter = (*identityjwt.Signer)(nil)

// Options configure a Proxy.
type Options struct {
	// Upstream is the backend; its path, if any, is prefixed to every
	// forwarded path.
	Upstream *url.URL
	// PublicScheme is the scheme browsers use ("https" behind a
	// TLS-terminating load balancer), sent as X-Forwarded-Proto.
	PublicScheme string
	// UpstreamTimeout bounds the wait for response headers; zero means 60s.
	UpstreamTimeout time.Duration
	// UpstreamHost, if set, is the Host header sent upstream. Empty keeps
	// the Host the client used, as most legacy backends need to build
	// absolute URLs (WebDAV Destination headers, redirects) that work.
	UpstreamHost string
	Auth         Authenticator
	// Transport overrides the upstream transport, for tests; nil means
	// NewTransport(UpstreamTimeout).
	Transport http.RoundTripper
	Logger    *slog.Logger
	Metrics   *Metrics
	// Assertion, if not nil, signs the identity sent upstream as
	// HeaderJWTAssertion; nil sends none.
	Assertion Asserter
	// CanonicalHost checks the Host of the original request a
	// forward-auth subrequest describes (ServeVerify), as the router checks
	// every other request's: it returns the host in its one spelling and
	// whether the gateway serves it. Nil accepts any host as sent.
	CanonicalHost func(host string) (string, bool)
	// Clock is the time source of ServeVerify's cache lifetimes; nil
	// means the real clock. It must be the Authenticator's.
	Clock clockwork.Clock
	// AccessLog writes one line per request outside the SAML endpoints.
	// With a Logger from logging.New they are written by its fast lines,
	// buffered when it writes to a logging.Output.
	AccessLog bool
}

// Proxy is the public handler.
type Proxy struct {
	auth      Authenticator
	asserter  Asserter // Options.Assertion
	rp        *httputil.ReverseProxy
	transport http.RoundTripper
	log       *slog.Logger
	lines     *logging.Lines // log's fast lines, or nil
	metrics   *Metrics
	accessLog bool
	scheme    string // Options.PublicScheme
	hosts     func(string) (string, bool)
	clock     clockwork.Clock
	// verifyCacheControl is ServeVerify's Cache-Control for each max-age
	// it may send, built once rather than on every answer.
	verifyCacheControl [verifyMaxAge/time.Second + 1]string
}

// New returns the public handler.
func New(o Options) (*Proxy, error) {
	if o.Upstream == nil || o.Auth == nil || o.Metrics == nil {
		return nil, errors.New("proxy: Upstream, Auth and Metrics are required")
	}
	timeout := o.UpstreamTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	transport := o.Transport
	if transport == nil {
		transport = NewTransport(timeout)
	}
	p := &Proxy{auth: o.Auth, asserter: o.Assertion, log: o.Logger, metrics: o.Metrics, accessLog: o.AccessLog, transport: transport, scheme: o.PublicScheme,
		hosts: o.CanonicalHost, clock: o.Clock}
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.lines = logging.LinesOf(p.log)
	for age := range p.verifyCacheControl {
		p.verifyCacheControl[age] = "private, max-age=" + strconv.Itoa(age)
	}
	upstream := *o.Upstream
	scheme := o.PublicScheme
	upstreamHost := o.UpstreamHost
	p.rp = &httputil.ReverseProxy{
		// Rewrite, not Director: the hop-by-hop step runs before Rewrite, so
		// a client's "Connection: X-Remote-User" cannot remove the headers
		// set here, and the client's X-Forwarded-* are already gone.
		Rewrite: func(pr *httputil.ProxyRequest) {
			st := stateFrom(pr.In.Context())
			pr.SetURL(&upstream)
			// ReverseProxy drops query parameters it cannot parse (";",
			// bad escapes) and SetURL re-encodes the rest; the gateway makes
			// no decision on the query, so it goes upstream as received.
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = upstreamHost
			if upstreamHost == "" {
				pr.Out.Host = pr.In.Host
			}
			h := pr.Out.Header
			deleteReserved(h)
			id := identityOf(st.session)
			// Every value set here shares one array: the identity, its
			// assertion, three forwarding fields, the correlation ID and
			// the cookies.
			hs := headerSet{h: h, vals: make([]string, 0, len(id.names)+6)}
			id.setOn(&hs)
			if st.assertion != "" {
				hs.set(HeaderJWTAssertion, st.assertion)
			}
			// SetXForwarded would name only the TCP peer; behind trusted
			// load balancers the verified chain starts at the client.
			// These are its fields, set without an allocation each.
			if xff := reqinfo.OriginOf(pr.In).ForwardedFor(); xff != "" {
				hs.set("X-Forwarded-For", xff)
				hs.set("X-Forwarded-Host", pr.In.Host)
				hs.set("X-Forwarded-Proto", forwardedProto(scheme, pr.In))
			} else {
				pr.SetXForwarded()
				if scheme != "" {
					h.Set("X-Forwarded-Proto", scheme)
				}
			}
			if v, changed := strippedCookies(h["Cookie"]); changed {
				if v == "" {
					delete(h, "Cookie")
				} else {
					hs.set("Cookie", v)
				}
			}
			hs.set(reqinfo.CorrelationHeader, reqinfo.CorrelationID(pr.In.Context()))
		},
		Transport:      transport,
		BufferPool:     newBufferPool(),
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// CloseIdleConnections closes the upstream connections that no request is
// using. A configuration reload makes a new Proxy with a new transport, and
// calls it on the one it replaces; requests in flight are not affected.
func (p *Proxy) CloseIdleConnections() {
	if c, ok := p.transport.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// NewTransport returns the upstream transport: many idle connections (the
// default of two per host would open a new upstream connection for most
// requests under load), bounded connect and header waits, and no
// transparent compression so bodies pass through unchanged.
func NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // never route upstream traffic through an environment proxy
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// ServeHTTP routes one public request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.metrics.inFlight.Inc()
	// The state and the recorder in one allocation.
	st := &requestState{start: time.Now()}
	st.rec.ResponseWriter = w
	rec := &st.rec
	// Deferred: the ReverseProxy aborts a response whose upstream body
	// breaks off by panicking with http.ErrAbortHandler, and that request
	// is counted and logged too.
	defer p.finish(rec, r, st)
	s, ok := p.auth.Authenticate(r)
	if !ok {
		p.unauthenticated(rec, r, st)
		return
	}
	st.session = s
	if up := upgradeOf(r); up != "" && !strings.EqualFold(up, "websocket") || r.Header["Http2-Settings"] != nil {
		// Only websockets may switch protocols. After an h2c upgrade the
		// client would speak HTTP/2 straight to the upstream through
		// the tunnel, each request carrying whatever identity headers
		// it liked.
		st.setOutcome(outcomeRefused)
		page.Write(rec, r, page.Errorf(http.StatusBadRequest, "This connection upgrade is not supported.",
			fmt.Errorf("proxy: refused Upgrade %q", up)))
		return
	}
	if st.assertion, ok = p.assertion(r, s); !ok {
		st.setOutcome(outcomeRefused)
		page.Write(rec, r, page.Errorf(http.StatusInternalServerError, "The gateway could not vouch for your identity. Please try again in a moment.", nil))
		return
	}
	p.rp.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
}

// assertion returns the value of HeaderJWTAssertion for s: its signed
// identity, or "" when the proxy signs none. false means signing failed,
// which is logged: the request must not go on without it, since the
// upstream would refuse it. Every answer that vouches for s sets it, the
// proxied request's headers and the forward-auth answer alike.
func (p *Proxy) assertion(r *http.Request, s *samlsp.Session) (string, bool) {
	if p.asserter == nil {
		return "", true
	}
	token, err := p.asserter.Token(s, &identityOf(s).assertion)
	if err != nil {
		p.log.LogAttrs(r.Context(), slog.LevelError, "identity JWT not signed",
			slog.String("error", err.Error()),
			slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		return "", false
	}
	return token, true
}

// finish counts the request and writes its access-log line.
func (p *Proxy) finish(rec *recorder, r *http.Request, st *requestState) {
	p.metrics.inFlight.Dec()
	p.metrics.requests[st.outcome()].Inc()
	if !p.accessLog {
		return
	}
	if p.lines != nil {
		p.accessLine(rec, r, st)
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("method", r.Method),
		// Without the query, which may carry tokens; escaped, as sent.
		slog.String("path", r.URL.EscapedPath()),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_seconds", time.Since(st.start).Seconds()),
		slog.String("outcome", st.outcome()),
	)
	if st.verify {
		attrs = append(attrs, slog.String("kind", kindVerify))
	}
	if st.upstream > 0 {
		attrs = append(attrs, slog.Float64("upstream_seconds", st.upstream.Seconds()))
	}
	if st.session != nil {
		attrs = append(attrs, slog.String("tenant", st.session.Tenant), slog.String("user", st.session.NameID))
	}
	attrs = append(attrs,
		slog.String("client_ip", reqinfo.OriginOf(r).String()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// accessLine is finish's access-log line through the logger's fast lines:
// the same line, byte for byte, without an allocation per field.
func (p *Proxy) accessLine(rec *recorder, r *http.Request, st *requestState) {
	ln := p.lines.Start(slog.LevelInfo, "request")
	if ln == nil {
		return
	}
	ln.String("method", r.Method)
	ln.String("path", r.URL.EscapedPath())
	ln.Int("status", int64(rec.status))
	ln.Int("bytes", rec.bytes)
	ln.Float("duration_seconds", time.Since(st.start).Seconds())
	ln.String("outcome", st.outcome())
	if st.verify {
		ln.String("kind", kindVerify)
	}
	if st.upstream > 0 {
		ln.Float("upstream_seconds", st.upstream.Seconds())
	}
	if st.session != nil {
		ln.String("tenant", st.session.Tenant)
		ln.String("user", st.session.NameID)
	}
	ln.String("client_ip", reqinfo.OriginOf(r).String())
	ln.String("correlation_id", reqinfo.CorrelationID(r.Context()))
	p.lines.End(ln)
}

// recorder notes the status and body size of a response for the access
// log. It unwraps for http.ResponseController (flushes, deadlines) and
// notes a hijack, which is how the ReverseProxy answers a websocket
// upgrade: it writes the 101 on the hijacked connection itself.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 && code >= 200 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil {
		rec.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// upgradeOf returns the protocols r asks to switch to, joined, when
// Connection lists Upgrade (otherwise the ReverseProxy drops the field).
func upgradeOf(r *http.Request) string {
	for _, v := range r.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return strings.TrimSpace(strings.Join(r.Header["Upgrade"], ","))
			}
		}
	}
	return ""
}

// unauthenticated answers a request without a valid session: a browser
// navigation is sent to sign in; anything else gets 401 with a
// WWW-Authenticate challenge (RFC 9110 §11.6.1 requires one) and a small
// JSON body, both naming the URL that signs the user in and brings them
// back to the page they were on.
func (p *Proxy) unauthenticated(w http.ResponseWriter, r *http.Request, st *requestState) {
	if wantsSignIn(r) {
		st.setOutcome(outcomeLoginRedirect)
		p.auth.LoginRedirect(w, r)
		return
	}
	st.setOutcome(outcomeUnauthenticated)
	p.challenge(w, r, p.auth.LoginURL(r, p.returnTo(r)))
}

// challenge is the 401 of a request without a session that is not sent to
// sign in, naming login, where the user signs in.
func (p *Proxy) challenge(w http.ResponseWriter, r *http.Request, login string) {
	w.Header().Set("WWW-Authenticate", cookieChallenge(login, p.auth.SessionCookieName()))
	page.WriteJSON(w, http.StatusUnauthorized, map[string]string{
		"error":          "authentication required",
		"login_url":      login,
		"correlation_id": reqinfo.CorrelationID(r.Context()),
	})
}

// returnTo is the page to come back to after signing in for a request that
// is not a navigation: a script's request comes from a page, which its
// same-origin Referer names; otherwise the request itself. "" when neither
// is a safe local path.
func (p *Proxy) returnTo(r *http.Request) string {
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host != "" &&
		strings.EqualFold(ref.Host, r.Host) && (p.scheme == "" || ref.Scheme == p.scheme) {
		if target, ok := redirect.Local(ref.RequestURI()); ok {
			return target
		}
	}
	if target, ok := redirect.Local(r.URL.RequestURI()); ok {
		return target
	}
	return ""
}

// cookieChallenge is the WWW-Authenticate value of a 401. HTTP has no
// standard scheme for signing in with a form and a cookie; this is the
// "Cookie" scheme of draft-broyer-http-cookie-auth, with its auth-params
// separated by commas as RFC 9110 §11.2 has them. Browsers show no prompt
// for a scheme they do not know.
func cookieChallenge(loginURL, cookieName string) string {
	return `Cookie realm="sso-gateway", form-action=` + quotedString(loginURL) + `, cookie-name=` + quotedString(cookieName)
}

// quotedString is s as an RFC 9110 quoted-string: in quotes, with '"' and
// '\' escaped by a backslash.
func quotedString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	st := stateFrom(resp.Request.Context())
	elapsed := time.Since(st.start)
	st.upstream = elapsed
	p.metrics.upstreamDuration.Observe(elapsed.Seconds())
	p.metrics.upstreamResponses[statusClass(resp.StatusCode)].Inc()
	st.setOutcome(outcomeProxied)
	stripGatewaySetCookies(resp.Header)
	return nil
}

// errorHandler maps upstream failures to pages: 504 when the upstream did
// not answer in time, 502 when it could not be reached or broke off.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client went away; there is nobody to answer.
		st.setOutcome(outcomeClientClosed)
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		st.setOutcome(outcomeUpstreamTimeout)
		p.logUpstreamError(r, err)
		page.Write(w, r, page.Errorf(http.StatusGatewayTimeout, "The document service did not answer in time. Please try again in a moment.", err))
		return
	}
	st.setOutcome(outcomeUpstreamError)
	p.logUpstreamError(r, err)
	page.Write(w, r, page.Errorf(http.StatusBadGateway, "The document service is not available right now. Please try again in a moment.", err))
}

func (p *Proxy) logUpstreamError(r *http.Request, err error) {
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "upstream error",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("error", err.Error()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
}

// requestState travels in the request context from ServeHTTP to the
// ReverseProxy callbacks, which run on the same goroutine.
type requestState struct {
	rec     recorder // the response, as ServeHTTP passes it on
	session *samlsp.Session
	// assertion is the value of HeaderJWTAssertion, or "" for none.
	assertion string
	start     time.Time
	upstream  time.Duration // to the upstream's response headers, when it answered
	out       string
	verify    bool // a forward-auth request (ServeVerify)
}

// kindVerify is the access log's kind of a forward-auth request, whose
// method and path are the original request's.
const kindVerify = "verify"

type stateKey struct{}

func stateFrom(ctx context.Context) *requestState {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	return st
}

func (st *requestState) setOutcome(o string) { st.out = o }

func (st *requestState) outcome() string {
	if st.out == "" {
		return outcomeUpstreamError
	}
	return st.out
}

// forwardedProto is X-Forwarded-Proto: the configured public scheme, or
// the scheme of the client's connection, as SetXForwarded has it.
func forwardedProto(scheme string, in *http.Request) string {
	switch {
	case scheme != "":
		return scheme
	case in.TLS != nil:
		return "https"
	}
	return "http"
}

func statusClass(code int) string {
	switch {
	case code < 200:
		return "1xx"
	case code < 300:
		return "2xx"
	case code < 400:
		return "3xx"
	case code < 500:
		return "4xx"
	}
	return "5xx"
}

// copyBufferSize is the size of the buffers streamed bodies are copied
// through.
const copyBufferSize = 32 << 10

// bufferPool recycles the copy buffers of streamed bodies. It keeps
// pointers to arrays: a slice put in a sync.Pool would be boxed, one
// allocation per request.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (bp *bufferPool) Get() []byte { return bp.pool.Get().(*[copyBufferSize]byte)[:] }

func (bp *bufferPool) Put(b []byte) {
	if len(b) == copyBufferSize {
		bp.pool.Put((*[copyBufferSize]byte)(b))
	}
}
