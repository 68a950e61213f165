package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load balancer stands for a Kubernetes Service with an ingress in
// front, or nginx / Envoy with active health checks:
//
//   - Every healthInterval it asks each backend's admin /readyz and sends
//     new requests only to backends whose last answer was 200. A backend
//     starts not ready until its first check passes. An answer other than
//     200, or a refused connection, takes the backend out at once: the
//     gateway's shutdown_delay is the time the load balancer has to notice.
//     A check that times out (healthTimeout) counts only after
//     healthTimeouts in a row, like a readiness probe's failureThreshold,
//     so that a machine too busy to answer in time does not empty the
//     pool.
//   - Requests go round-robin over the ready backends.
//   - When a backend cannot be reached or breaks off before its response
//     headers (a transport error), a request that is idempotent and has no
//     body (so nothing of it is lost) is sent once more to the next ready
//     backend, like nginx's `proxy_next_upstream error` and Envoy's
//     `retry_on: connect-failure,reset`. Other requests, and responses
//     the backend did send (502, 503, 504 included), are passed to the
//     client as they are: a gateway's error page is an answer, not a
//     connection error.
//   - The Host header is passed on (the gateway builds URLs from
//     public_url, but the upstream may use Host), and each response says
//     which backend made it in X-Lb-Backend, so that tests can aim a
//     SIGTERM at the replica serving a download.
//   - Backends come and go as pods do (add, remove): a replacement gets new
//     ports.
//
// It keeps idle connections to the backends, as real load balancers do,
// which is what makes a gateway's shutdown interesting: those connections
// are closed under it.
const (
	healthInterval = 100 * time.Millisecond
	healthTimeout  = time.Second
	healthTimeouts = 3
)

// lbBackendHeader names the response header that says which backend served
// a request.
const lbBackendHeader = "X-Lb-Backend"

type loadBalancer struct {
	srv       *httptest.Server
	transport *http.Transport
	health    *http.Client

	mu       sync.Mutex
	backends []*backend

	next    atomic.Uint64 // round-robin counter
	retries atomic.Int64  // requests sent again after a transport error
	noReady atomic.Int64  // requests that found no ready backend

	errMu  sync.Mutex
	errors []string // transport errors, for the report
}

// transportErrors returns the transport errors seen so far and forgets
// them.
func (lb *loadBalancer) transportErrors() []string {
	lb.errMu.Lock()
	defer lb.errMu.Unlock()
	errs := lb.errors
	lb.errors = nil
	return errs
}

type backend struct {
	g     *gateway
	ready atomic.Bool
	stop  chan struct{}
	done  chan struct{}
}

func newLoadBalancer(t testing.TB) *loadBalancer {
	t.Helper()
	lb := &loadBalancer{
		transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
		health: &http.Client{
			Timeout:   healthTimeout,
			Transport: &http.Transport{DisableKeepAlives: true},
		},
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The backend is chosen in RoundTrip, per attempt.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "backend.invalid"
			pr.Out.Host = pr.In.Host
		},
		Transport:     lb,
		FlushInterval: -1, // stream downloads as they come
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "lb: "+err.Error(), http.StatusBadGateway)
		},
	}
	lb.srv = httptest.NewServer(rp)
	t.Cleanup(func() {
		lb.srv.Close()
		lb.mu.Lock()
		bs := lb.backends
		lb.backends = nil
		lb.mu.Unlock()
		for _, b := range bs {
			b.halt()
		}
		lb.transport.CloseIdleConnections()
	})
	return lb
}

func (lb *loadBalancer) url() string { return lb.srv.URL }

// add puts g behind the load balancer; it gets traffic once its /readyz
// answers 200.
func (lb *loadBalancer) add(g *gateway) {
	b := &backend{g: g, stop: make(chan struct{}), done: make(chan struct{})}
	lb.mu.Lock()
	lb.backends = append(lb.backends, b)
	lb.mu.Unlock()
	go lb.check(b)
}

// remove takes g out, as Kubernetes removes a deleted pod's endpoint.
func (lb *loadBalancer) remove(g *gateway) {
	lb.mu.Lock()
	var gone *backend
	for i, b := range lb.backends {
		if b.g == g {
			gone = b
			lb.backends = append(lb.backends[:i:i], lb.backends[i+1:]...)
			break
		}
	}
	lb.mu.Unlock()
	if gone != nil {
		gone.halt()
	}
}

func (b *backend) halt() {
	close(b.stop)
	<-b.done
}

// waitReady waits until the load balancer sends traffic to g.
func (lb *loadBalancer) waitReady(t testing.TB, g *gateway) {
	t.Helper()
	err := poll(t.Context(), readyWait, 20*time.Millisecond, func() error {
		lb.mu.Lock()
		defer lb.mu.Unlock()
		for _, b := range lb.backends {
			if b.g == g && b.ready.Load() {
				return nil
			}
		}
		return fmt.Errorf("the load balancer does not see %s as ready", g.name)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, g.tail(20))
	}
}

// check is one backend's health-check loop.
func (lb *loadBalancer) check(b *backend) {
	defer close(b.done)
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	timeouts := 0
	for {
		resp, err := lb.health.Get(b.g.adminURL() + "/readyz")
		var ne net.Error
		switch {
		case err == nil:
			resp.Body.Close()
			timeouts = 0
			b.ready.Store(resp.StatusCode == http.StatusOK)
		case errors.As(err, &ne) && ne.Timeout():
			if timeouts++; timeouts >= healthTimeouts {
				b.ready.Store(false)
			}
		default:
			timeouts = 0
			b.ready.Store(false)
		}
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
	}
}

// ready returns the ready backends, starting with the next in round-robin
// order.
func (lb *loadBalancer) ready() []*gateway {
	lb.mu.Lock()
	var up []*gateway
	for _, b := range lb.backends {
		if b.ready.Load() {
			up = append(up, b.g)
		}
	}
	lb.mu.Unlock()
	if len(up) == 0 {
		return nil
	}
	start := int(lb.next.Add(1) % uint64(len(up)))
	order := make([]*gateway, 0, len(up))
	order = append(order, up[start:]...)
	return append(order, up[:start]...)
}

var errNoBackend = errors.New("no ready backend")

// RoundTrip sends req to the next ready backend, and once more to the one
// after it if the first attempt failed at the transport level and req may
// be repeated safely.
func (lb *loadBalancer) RoundTrip(req *http.Request) (*http.Response, error) {
	up := lb.ready()
	if len(up) == 0 {
		lb.noReady.Add(1)
		return nil, errNoBackend
	}
	attempts := 1
	if retriable(req) && len(up) > 1 {
		attempts = 2
	}
	var err error
	for i, g := range up[:attempts] {
		out := req.Clone(req.Context())
		out.URL.Host = g.listen
		var resp *http.Response
		resp, err = lb.transport.RoundTrip(out)
		if err == nil {
			resp.Header.Set(lbBackendHeader, g.name)
			return resp, nil
		}
		if req.Context().Err() != nil {
			// The client went away; nothing to retry for.
			return nil, err
		}
		err = fmt.Errorf("%s: %w", g.name, err)
		lb.errMu.Lock()
		lb.errors = append(lb.errors, fmt.Sprintf("%s %s %s: %v (attempt %d of %d)", time.Now().Format("15:04:05.000"), req.Method, req.URL.Path, err, i+1, attempts))
		lb.errMu.Unlock()
		if i+1 < attempts {
			lb.retries.Add(1)
		}
	}
	return nil, err
}

// retriable reports whether req may be sent again after a transport error:
// an idempotent method and no body.
func retriable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody
}

var _ http.RoundTripper = (*loadBalancer)(nil)
