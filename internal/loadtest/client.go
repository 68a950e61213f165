package loadtest

import (
	"context"
	"time"
)

// target is what a load client sends: GET path with the Host header host,
// to the server at addr (host:port), with each request carrying the next
// of cookies in turn as its Cookie header ("" for none).
type target struct {
	addr    string
	host    string
	path    string
	cookies []string
}

// requestCookies returns the Cookie headers to rotate through: cookies, or
// a single request without a cookie.
func (t target) requestCookies() []string {
	if len(t.cookies) == 0 {
		return []string{""}
	}
	return t.cookies
}

// Headers of every benchmark request, after Host and before Cookie: what
// a browser sends on a navigation, so that every server parses a
// realistic request head.
const (
	userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	accept    = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
)

// loadResult is what one run of a load client measured.
type loadResult struct {
	Requests int64
	Duration time.Duration
	// Bytes is what the client read: whole responses with wrk, bodies
	// with the Go client.
	Bytes int64
	// Errors counts connections or requests that failed (connect, read,
	// write, timeout); StatusErrors counts responses other than the
	// expected ones (wrk: status ≥ 400; the Go client: anything but 200).
	Errors, StatusErrors int64
	P50, P99             time.Duration
}

// rate is requests per second.
func (r loadResult) rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// loadClient sends requests to a target for a while, on a fixed number of
// keep-alive connections.
type loadClient interface {
	// name says which client it is, for the report.
	name() string
	run(ctx context.Context, t target, d time.Duration) (loadResult, error)
}
