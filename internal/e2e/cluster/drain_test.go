package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// traffic sends requests with one session through the load balancer from
// a few loops until stopped, and keeps every failure.
type traffic struct {
	lb     *loadBalancer
	sent   atomic.Int64
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	failures []string
	backends map[string]int // successful requests per replica
}

// startTraffic starts loops goroutines, each sending a request as soon as
// the previous one is answered, with a short pause.
func startTraffic(lb *loadBalancer, s *session, loops int) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{lb: lb, cancel: cancel, backends: map[string]int{}}
	base := lb.url()
	lb.transportErrors() // only this traffic's are reported
	start := time.Now()
	for range loops {
		tr.wg.Go(func() {
			for ctx.Err() == nil {
				tr.sent.Add(1)
				r, err := whoami(base, s)
				if err == nil {
					err = checkReply(r, s)
				}
				tr.mu.Lock()
				if err != nil {
					tr.failures = append(tr.failures, fmt.Sprintf("%6dms via %q: %v", time.Since(start).Milliseconds(), r.header.Get(lbBackendHeader), err))
				} else {
					tr.backends[r.header.Get(lbBackendHeader)]++
				}
				tr.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return tr
}

// checkReply is validAt for a reply already read.
func checkReply(r reply, s *session) error {
	u, ok := r.upstream()
	if !ok {
		return fmt.Errorf("got %v, want 200 from the upstream", r)
	}
	if u.User != s.user {
		return fmt.Errorf("upstream got X-Remote-User %q, want %q", u.User, s.user)
	}
	return nil
}

// stop stops the loops and fails t if any request failed.
func (tr *traffic) stop(t *testing.T, what string) {
	t.Helper()
	tr.cancel()
	tr.wg.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.failures) > 0 {
		shown := tr.failures
		if len(shown) > 20 {
			shown = shown[:20]
		}
		t.Errorf("%s: %d of %d requests through the load balancer failed, want none:\n  %s",
			what, len(tr.failures), tr.sent.Load(), strings.Join(shown, "\n  "))
	}
	if tr.sent.Load() == 0 {
		t.Errorf("%s: no request was sent", what)
	}
	t.Logf("%s: %d requests through the load balancer, %d failed; served by %v", what, tr.sent.Load(), len(tr.failures), tr.backends)
	if errs := tr.lb.transportErrors(); len(errs) > 0 {
		t.Logf("%s: the load balancer met %d transport errors (each retried on another replica if it could be):\n  %s", what, len(errs), strings.Join(errs, "\n  "))
	}
}

// testDrain: SIGTERM to the replica that is serving a slow download. Its
// /readyz turns 503 at once, the load balancer sends new requests to the
// others, and the download finishes whole (the gateway keeps serving for
// shutdown_delay, then drains in-flight requests); the process exits 0
// within shutdown_delay + shutdown_timeout. A new replica takes its place.
func testDrain(t *testing.T, c *cluster) {
	rs := c.current()
	s := login(t, rs[0], c.fileIDP, fileTenant, "ivan@acme.example")

	req, err := http.NewRequest(http.MethodGet, c.lb.url()+"/files/report.pdf/download", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = publicHost
	req.Header.Set("Cookie", s.cookie)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("download: got %d %q, want 200", resp.StatusCode, b)
	}
	var g *gateway
	for _, r := range rs {
		if r.name == resp.Header.Get(lbBackendHeader) {
			g = r
		}
	}
	if g == nil {
		t.Fatalf("the download came from %q, not a replica of %v", resp.Header.Get(lbBackendHeader), rs)
	}

	tr := startTraffic(c.lb, s, 2)
	sigterm := time.Now()
	g.terminate(t)

	// /readyz says 503 at once, before the listener closes.
	err = poll(t.Context(), shutdownDelay, 10*time.Millisecond, func() error {
		if code, body := g.readyz(); code != http.StatusServiceUnavailable {
			return fmt.Errorf("got %d %q, want 503", code, body)
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s /readyz within %v of SIGTERM: %v", g.name, shutdownDelay, err)
	}

	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	downloaded := time.Since(sigterm)
	if err != nil || n != downloadSize {
		t.Errorf("download from %s: %d bytes, %v; want %d bytes", g.name, n, err, downloadSize)
	} else if sum := downloadSum(); string(h.Sum(nil)) != string(sum[:]) {
		t.Errorf("download from %s: %d bytes with the wrong SHA-256", g.name, n)
	}
	if downloaded < shutdownDelay {
		t.Logf("note: the download finished %v after SIGTERM, before the listener closed; the drain was not exercised", downloaded)
	}

	limit := shutdownDelay + shutdownTimeout + exitMargin
	code := g.waitExit(t, limit)
	exited := time.Since(sigterm)
	tr.stop(t, "during the drain")
	if code != 0 {
		t.Errorf("%s exit code: got %d, want 0\n%s", g.name, code, g.tail(10))
	}
	if !strings.Contains(g.log.String(), "shutting down") {
		t.Errorf("%s did not log its shutdown:\n%s", g.name, g.tail(10))
	}
	t.Logf("%s: SIGTERM, download of %d bytes complete after %v, exit %d after %v",
		g.name, n, downloaded.Round(time.Millisecond), code, exited.Round(time.Millisecond))

	c.removeReplica(g)
	c.addReplica(t)
}

// testDrainTimeout: a download longer than shutdown_delay +
// shutdown_timeout is cut off when the timeout ends, the process does not
// wait longer than that, says so in its log, and exits with status 1 (it
// did not shut down cleanly).
func testDrainTimeout(t *testing.T, c *cluster) {
	g := c.current()[0]
	g.reconfigure(t, "success", func(sp *gatewaySpec) { sp.shutdownTimeout = time.Second })
	s := login(t, g, c.fileIDP, fileTenant, "karl@acme.example")
	req, err := http.NewRequest(http.MethodGet, g.url()+"/files/huge.iso/download", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = publicHost
	req.Header.Set("Cookie", s.cookie)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sigterm := time.Now()
	g.terminate(t)
	n, err := io.Copy(io.Discard, resp.Body)
	cut := time.Since(sigterm)
	if err == nil || n >= downloadSize {
		t.Errorf("a download longer than delay + timeout: got %d bytes, %v; want it cut off", n, err)
	}
	code := g.waitExit(t, shutdownDelay+time.Second+exitMargin)
	c.removeReplica(g)
	if code != 1 || !strings.Contains(g.log.String(), "requests still in flight were cut off") {
		t.Errorf("%s after a drain that timed out: exit %d, want 1 and a log line saying requests were cut off\n%s", g.name, code, g.tail(5))
	}
	t.Logf("a download still running %v after SIGTERM (delay %v + timeout 1s) is cut off after %d bytes (%v); exit %d",
		cut.Round(time.Millisecond), shutdownDelay, n, err, code)
	c.addReplica(t)
}

// testRollingRestart replaces every replica in turn (SIGTERM one, start its
// replacement, wait until the load balancer sends it traffic, wait for
// the old one to exit, next) while clients keep sending requests through
// the load balancer: none may fail, and a session from before the restart
// is valid on every new replica.
func testRollingRestart(t *testing.T, c *cluster) {
	old := c.current()
	s := login(t, old[0], c.fileIDP, fileTenant, "judy@acme.example")
	tr := startTraffic(c.lb, s, 3)
	for _, g := range old {
		start := time.Now()
		g.terminate(t)
		ng := c.addReplica(t)
		code := g.waitExit(t, shutdownDelay+shutdownTimeout+exitMargin)
		c.removeReplica(g)
		if code != 0 {
			t.Errorf("%s exit code: got %d, want 0\n%s", g.name, code, g.tail(10))
		}
		t.Logf("%s replaced by %s in %v (exit %d)", g.name, ng.name, time.Since(start).Round(time.Millisecond), code)
	}
	tr.stop(t, "during the rolling restart")
	for _, g := range c.current() {
		checkValid(t, g.name, g.url(), s)
	}
}
