package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// The upstream learns the client's address from a verified chain: a
// client-written X-Forwarded-For counts only behind a trusted proxy, and
// only from the client's own entry rightwards.
func TestForwardedForFromTrustedProxies(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	})
	for _, tc := range []struct {
		name, extra, remote, xff, want string
	}{
		{"no trusted proxies", "", "10.0.0.2:1234", "6.6.6.6", "10.0.0.2"},
		{"untrusted peer", "trusted_proxies: [10.0.0.0/8]\n", "192.0.2.1:1234", "6.6.6.6", "192.0.2.1"},
		{"trusted load balancer", "trusted_proxies: [10.0.0.0/8]\n", "10.0.0.2:1234", "6.6.6.6, 198.51.100.9", "198.51.100.9, 10.0.0.2"},
		{"two trusted hops", "trusted_proxies: [10.0.0.0/8, 172.16.0.1]\n", "10.0.0.2:1234", "198.51.100.9, 172.16.0.1", "198.51.100.9, 172.16.0.1, 10.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGateway(t, echo, tc.extra)
			session := tg.signIn(t)
			req := publicRequest(http.MethodGet, "/docs", nil)
			req.RemoteAddr = tc.remote
			req.Header.Set("X-Forwarded-For", tc.xff)
			req.AddCookie(session)
			rec := httptest.NewRecorder()
			tg.gw.PublicHandler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != tc.want {
				t.Errorf("upstream saw X-Forwarded-For %q (status %d), want %q", rec.Body, rec.Code, tc.want)
			}
		})
	}
}

// slowACS opens a connection that posts to the ACS as client (through the
// trusted X-Forwarded-For) and sends only part of the body, holding a
// login slot until it is closed or the read deadline passes.
func slowACS(t *testing.T, addr, client string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %sacme HTTP/1.1\r\nHost: docs.example.com\r\nX-Forwarded-For: %s\r\nAccept: text/html\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nSAMLResponse=", samlsp.LoginPath, client)
	return c
}

func waitInFlight(t *testing.T, tg *testGateway, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for tg.gw.state.Load().logins.InFlight() != want {
		if time.Now().After(deadline) {
			t.Fatalf("login requests in flight: %d, want %d", tg.gw.state.Load().logins.InFlight(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// postACS posts an empty form to the ACS as client and returns the
// response.
func postACS(t *testing.T, addr, client string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+samlsp.LoginPath+"acme", strings.NewReader("SAMLResponse=x"))
	req.Host = "docs.example.com"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLoginConcurrencyLimits(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "  - id: hosted\n    idp_metadata_file: idp.xml\n    hosts: [acme.docs.example.com]\n"+
		"trusted_proxies: [127.0.0.1]\nlimits: {login_concurrency_per_client: 2, login_concurrency: 3}\n")
	addr := serveGateway(t, tg)
	const alice, bob, carol = "198.51.100.1", "198.51.100.2", "198.51.100.3"

	held := []net.Conn{slowACS(t, addr, alice), slowACS(t, addr, alice)}
	waitInFlight(t, tg, 2)

	// Alice's third is refused; Bob is not Alice.
	resp, body := postACS(t, addr, alice)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "Too many sign-ins") || !strings.Contains(body, resp.Header.Get("X-Correlation-Id")) {
		t.Errorf("alice's third: %d Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if got := testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("client")); got != 1 {
		t.Errorf(`throttled{scope="client"}: %v, want 1`, got)
	}
	// The login handoff on a tenant host is one of the SAML endpoints.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+samlsp.HandoffPath+"?t=x", nil)
	req.Host = "acme.docs.example.com"
	req.Header.Set("X-Forwarded-For", alice)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice's handoff: got %d, want 429", resp.StatusCode)
	}
	resp, _ = postACS(t, addr, bob)
	if resp.StatusCode == http.StatusTooManyRequests {
		t.Errorf("bob was refused for alice's requests")
	}

	// Three in flight in all: Carol is refused too.
	held = append(held, slowACS(t, addr, bob))
	waitInFlight(t, tg, 3)
	if resp, _ := postACS(t, addr, carol); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("carol with the total reached: %d, want 429", resp.StatusCode)
	}
	if got := testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("total")); got != 1 {
		t.Errorf(`throttled{scope="total"}: %v, want 1`, got)
	}

	// A slot frees when its request ends.
	held[0].Close()
	waitInFlight(t, tg, 2)
	if resp, _ := postACS(t, addr, alice); resp.StatusCode == http.StatusTooManyRequests {
		t.Errorf("alice after one of hers ended: 429")
	}

	// Requests outside the SAML endpoints are never limited.
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/docs", nil)
		req.Host = "docs.example.com"
		req.Header.Set("X-Forwarded-For", alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Fatal("a request outside the SAML endpoints was limited")
		}
	}
}

// A client that trickles its ACS post loses the connection at the read
// deadline, and its slot with it.
func TestLoginReadDeadline(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	tg.gw.loginReadTimeout = 300 * time.Millisecond
	addr := serveGateway(t, tg)
	c := slowACS(t, addr, "ignored")
	waitInFlight(t, tg, 1)
	// Keep sending, slower than the deadline allows for the whole body.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := io.WriteString(c, "A"); err != nil {
					return
				}
			}
		}
	}()
	waitInFlight(t, tg, 0)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil && resp.StatusCode < 400 {
		t.Errorf("a trickled ACS post got %d", resp.StatusCode)
	}
}
