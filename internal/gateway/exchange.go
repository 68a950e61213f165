package gateway

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sso-gateway/sso-gateway/proxy"
)

// How long the gateway spends on a client outside its own CPU work, when
// the request does not go to the upstream. Bodies and responses that the
// upstream takes part in (authenticated uploads and downloads) are not
// bounded in time; see deploy/CONFIGURATION.md, "Limits and timeouts".
const (
	// refusedBodyDrain is how long the gateway goes on reading a request
	// body it will not use, after it has answered, before it closes the
	// connection. net/http reads up to 256 KiB of such a body to keep the
	// connection, and with no read deadline: a client trickling the body
	// held the connection, and the answer, for ever. A body already
	// received (a small form posted without a session) is read from the
	// buffer at once; the grace only lets a browser still sending see
	// the answer rather than a reset.
	refusedBodyDrain = time.Second
	// ownWriteTimeout bounds writing an answer of the gateway's own (a
	// page, a redirect, a refusal): a few KiB, which reach any client
	// that reads in far less. A client that never reads the answer
	// otherwise held its connection and handler for ever.
	ownWriteTimeout = 30 * time.Second
)

// exchange is one public request and its response, as the gateway sees
// them. It is the one place that decides how a connection ends after an
// answer the gateway gives itself, whoever gives it (the SAML endpoints,
// the proxy's 401s and login redirects, 421s, 429s, error pages): such an
// answer is bounded in time, and when the request's body is left unread
// the answer says "Connection: close" and the rest of the body gets
// refusedBodyDrain to arrive. An answer that comes from the upstream is
// left alone: that body went to the upstream, or is the upstream's to
// refuse.
type exchange struct {
	http.ResponseWriter
	r        *http.Request
	body     *watchedBody // nil: the request has no body
	upstream atomic.Bool  // the upstream answered; set by upstreamMark
	answered bool         // a final status has been written
	// writeTimeout is the Gateway's ownWriteTimeout.
	writeTimeout time.Duration
}

// guardExchanges wraps next so that every public request is an exchange.
func (g *Gateway) guardExchanges(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex := &exchange{ResponseWriter: w, writeTimeout: g.ownWriteTimeout}
		if r.Body != nil && r.Body != http.NoBody {
			ex.body = &watchedBody{ReadCloser: r.Body}
			r.Body = ex.body
		}
		r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
		ex.r = r
		next.ServeHTTP(ex, r)
	})
}

type exchangeKey struct{}

// WriteHeader decides, at the first final status, whether the answer is
// the gateway's own, and if so bounds it.
func (ex *exchange) WriteHeader(code int) {
	if !ex.answered && code >= 200 {
		ex.answered = true
		if !ex.upstream.Load() {
			ex.ownAnswer()
		}
	}
	ex.ResponseWriter.WriteHeader(code)
}

func (ex *exchange) Write(b []byte) (int, error) {
	if !ex.answered {
		ex.WriteHeader(http.StatusOK)
	}
	return ex.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushes, and the hijack of a websocket upgrade).
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.ResponseWriter }

// ownAnswer bounds an answer of the gateway's own. Deadlines set here end
// with the request: net/http sets its own for the next one. A test
// recorder has no deadlines; nothing is lost.
func (ex *exchange) ownAnswer() {
	rc := http.NewResponseController(ex.ResponseWriter)
	_ = rc.SetWriteDeadline(time.Now().Add(ex.writeTimeout))
	if ex.body == nil || ex.body.done.Load() {
		return
	}
	// The body is not going anywhere. net/http would read up to 256 KiB
	// of it without a deadline: before sending the answer if the
	// connection is to be kept, after it otherwise. So the connection
	// ends, and the drain has a deadline. (The public listener speaks
	// HTTP/1.x only: its TLS configuration offers no h2. HTTP/2 would
	// need neither: it resets the stream when the handler returns, and
	// "Connection: close" there ends the client's other streams.)
	if ex.r.ProtoMajor == 1 {
		ex.Header().Set("Connection", "close")
		_ = rc.SetReadDeadline(time.Now().Add(refusedBodyDrain))
	}
}

// watchedBody notes when a request body has been read to its end.
type watchedBody struct {
	io.ReadCloser
	done atomic.Bool // read to EOF: nothing is left on the connection
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.done.Store(true)
	}
	return n, err
}

// upstreamTransport is t, or the default upstream transport, marked.
func upstreamTransport(t http.RoundTripper, responseHeaderTimeout time.Duration) http.RoundTripper {
	if t == nil {
		t = proxy.NewTransport(responseHeaderTimeout)
	}
	return upstreamMark{t}
}

// upstreamMark is the upstream transport, noting in the exchange that the
// upstream answered: what the proxy writes next is the upstream's
// response (a download, a websocket), which the gateway does not bound.
type upstreamMark struct {
	http.RoundTripper
}

func (m upstreamMark) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.RoundTripper.RoundTrip(req)
	if err == nil {
		if ex, ok := req.Context().Value(exchangeKey{}).(*exchange); ok {
			ex.upstream.Store(true)
		}
	}
	return resp, err
}

// CloseIdleConnections closes the idle upstream connections, as a reload
// asks of the transport it replaces.
func (m upstreamMark) CloseIdleConnections() {
	if c, ok := m.RoundTripper.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
