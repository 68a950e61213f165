// Package correlation gives every request an ID that appears in the
// response headers, on error pages, in the log lines about the request and
// in the request forwarded upstream, so that a user's screenshot leads an
// operator straight to the log line with the real reason.
package correlation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header carries the correlation ID on responses and on requests forwarded
// upstream. An inbound value is never trusted: a client could otherwise
// make its requests look like someone else's in the logs.
const Header = "X-Correlation-Id"

type ctxKey struct{}

// NewID returns a fresh random ID: 16 hex digits, short enough to read out
// over the phone, unguessable enough not to collide.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// FromContext returns the request's correlation ID, or "" outside
// Middleware.
func FromContext(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithID returns ctx carrying id.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// Middleware assigns each request a new ID and sets it on the response.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := NewID()
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(WithID(r.Context(), id)))
	})
}
