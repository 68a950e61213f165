// The correlation ID: every request gets one that appears in the response
// headers, on error pages, in the log lines about the request and in the
// request forwarded upstream, so that a user's screenshot leads an operator
// straight to the log line with the real reason.

package reqinfo

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// CorrelationHeader carries the correlation ID on responses and on requests forwarded
// upstream. An inbound value is never trusted: a client could otherwise
// make its requests look like someone else's in the logs.
const CorrelationHeader = "X-Correlation-Id"

type ctxKey struct{}

// NewCorrelationID returns a fresh random ID: 16 hex digits, short enough to read out
// over the phone, random enough not to collide.
//
// The ID is a label, never a secret: nothing is looked up or authorized
// by it. So it comes from the runtime's generator (ChaCha8, seeded by
// the operating system, one state per thread), which needs no system
// call and no lock on every request, rather than from crypto/rand.
func NewCorrelationID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

// info is what the context holds for a request: its correlation ID, the
// one-value slice the response header gets, and its origin once the
// router has resolved it. One allocation and one context value per
// request, however much is known about it.
type info struct {
	s   string
	hdr [1]string
	// origin is set once, by WithOrigin, before anything reads it.
	origin    Origin
	hasOrigin bool
}

func infoOf(ctx context.Context) *info {
	v, _ := ctx.Value(ctxKey{}).(*info)
	return v
}

// CorrelationID returns the request's correlation ID, or "" outside
// Correlate.
func CorrelationID(ctx context.Context) string {
	if v := infoOf(ctx); v != nil {
		return v.s
	}
	return ""
}

// WithCorrelationID returns ctx carrying s.
func WithCorrelationID(ctx context.Context, s string) context.Context {
	return context.WithValue(ctx, ctxKey{}, &info{s: s})
}

// Correlate assigns each request a new ID and sets it on the response.
func Correlate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := &info{s: NewCorrelationID()}
		// CorrelationHeader is canonical; the slice holds its one value only, so
		// that an Add copies it.
		v.hdr[0] = v.s
		w.Header()[CorrelationHeader] = v.hdr[:]
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	})
}
