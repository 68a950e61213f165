// The correlation ID: every request gets one that appears in the response
// headers, on error pages, in the log lines about the request and in the
// request forwarded upstream, so that a user's screenshot leads an operator
// straight to the log line with the real reason.

package reqinfo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// CorrelationHeader carries the correlation ID on responses and on requests forwarded
// upstream. An inbound value is never trusted: a client could otherwise
// make its requests look like someone else's in the logs.
const CorrelationHeader = "X-Correlation-Id"

type ctxKey struct{}

// NewCorrelationID returns a fresh random ID: 16 hex digits, short enough to read out
// over the phone, unguessable enough not to collide.
func NewCorrelationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// id is what the context holds: the ID, and the one-value slice the
// response header gets, in one allocation.
type id struct {
	s   string
	hdr [1]string
}

// CorrelationID returns the request's correlation ID, or "" outside
// Correlate.
func CorrelationID(ctx context.Context) string {
	if v, ok := ctx.Value(ctxKey{}).(*id); ok {
		return v.s
	}
	return ""
}

// WithCorrelationID returns ctx carrying s.
func WithCorrelationID(ctx context.Context, s string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &id{s: s})
}

// Correlate assigns each request a new ID and sets it on the response.
func Correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &id{s: NewCorrelationID()}
		// CorrelationHeader is canonical; the slice holds its one value only, so
		// that an Add copies it.
		v.hdr[0] = v.s
		w.Header()[CorrelationHeader] = v.hdr[:]
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	})
}
