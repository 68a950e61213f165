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

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"

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
// trusted X-Forwarded-For) and sends only part of the body.
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

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitInFlight waits until pool has want requests in flight.
func waitInFlight(t *testing.T, tg *testGateway, pool string, want int) {
	t.Helper()
	limiter := func() *throttle {
		p := tg.gw.state.Load().logins
		return map[string]*throttle{poolACS: p.acs, poolSLO: p.slo, poolPages: p.pages}[pool]
	}
	waitFor(t, fmt.Sprintf("%d %s requests in flight (now %d)", want, pool, limiter().InFlight()),
		func() bool { return limiter().InFlight() == want })
}

// holdHeader, on a request to the SAML endpoints, makes it keep its slot
// until the test ends (see serveHolding).
const holdHeader = "X-Test-Hold"

// serveHolding serves tg like serveGateway, except that every request to
// the SAML endpoints that carries holdHeader keeps its slot until the test
// ends.
func serveHolding(t *testing.T, tg *testGateway) string {
	t.Helper()
	release := make(chan struct{})
	tg.gw.admitted = func(r *http.Request) {
		if r.Header.Get(holdHeader) != "" {
			<-release
		}
	}
	addr := serveGateway(t, tg)
	// Before the server's cleanup, which waits for these requests.
	t.Cleanup(func() { close(release) })
	return addr
}

// samlRequest sends a request to the SAML endpoints as client and returns
// the response, its body read.
func samlRequest(t *testing.T, addr, method, path, client string, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Host = testPublicHost
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set("Accept", "text/html")
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// postACS posts an empty form to the ACS as client and returns the
// response.
func postACS(t *testing.T, addr, client string) (*http.Response, string) {
	t.Helper()
	return samlRequest(t, addr, http.MethodPost, samlsp.LoginPath+"acme", client, "SAMLResponse=x")
}

// heldACS posts to the ACS as client in the background; the request keeps
// its slot until the test ends (serveHolding).
func heldACS(t *testing.T, addr, client string) {
	t.Helper()
	held(t, addr, http.MethodPost, samlsp.LoginPath+"acme", client, "SAMLResponse=x")
}

// held sends a request to the SAML endpoints as client in the background;
// it keeps its slot until the test ends (serveHolding).
func held(t *testing.T, addr, method, path, client, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	req.Host = testPublicHost
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", client)
	req.Header.Set(holdHeader, "1")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
}

func TestLoginConcurrencyLimits(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "  - id: hosted\n    idp_metadata_file: idp.xml\n    hosts: [acme.docs.example.com]\n"+
		"trusted_proxies: [127.0.0.1]\nlimits: {login_concurrency_per_client: 2, login_concurrency: 3}\n")
	addr := serveHolding(t, tg)
	const alice, bob, carol = "198.51.100.1", "198.51.100.2", "198.51.100.3"

	heldACS(t, addr, alice)
	heldACS(t, addr, alice)
	waitInFlight(t, tg, poolACS, 2)

	// Alice's third is refused; Bob is not Alice.
	resp, body := postACS(t, addr, alice)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "Too many sign-ins") || !strings.Contains(body, resp.Header.Get("X-Correlation-Id")) {
		t.Errorf("alice's third: %d Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if got := testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("client")); got != 1 {
		t.Errorf(`throttled{scope="client"}: %v, want 1`, got)
	}
	resp, _ = postACS(t, addr, bob)
	if resp.StatusCode == http.StatusTooManyRequests {
		t.Errorf("bob was refused for alice's requests")
	}

	// Three in flight in all: Carol is refused too.
	heldACS(t, addr, bob)
	waitInFlight(t, tg, poolACS, 3)
	if resp, _ := postACS(t, addr, carol); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("carol with the total reached: %d, want 429", resp.StatusCode)
	}
	if got := testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("total")); got != 1 {
		t.Errorf(`throttled{scope="total"}: %v, want 1`, got)
	}

	// The other pools are not the ACS's: Alice, over her ACS limit, and
	// everyone, with the ACS pool full, still sign out, choose their
	// organisation, start a login and complete a handoff.
	for _, tc := range []struct{ name, method, host, path string }{
		{"select", http.MethodGet, testPublicHost, samlsp.SelectPath},
		{"logout", http.MethodGet, testPublicHost, samlsp.LogoutPath},
		{"login start", http.MethodGet, testPublicHost, samlsp.LoginPath + "acme"},
		{"handoff", http.MethodGet, "acme.docs.example.com", samlsp.HandoffPath + "?t=x"},
		{"single logout", http.MethodGet, testPublicHost, samlsp.SLOPath + "acme?SAMLRequest=x"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		req.Host = tc.host
		req.Header.Set("X-Forwarded-For", alice)
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			t.Errorf("%s with the ACS pool full: got 429", tc.name)
		}
	}

	// Requests outside the SAML endpoints are never limited.
	for range 5 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/docs", nil)
		req.Host = testPublicHost
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

// The cheap pages have their own pool, with the same limits: they are
// bounded too, and a flood of them does not reach the ACS.
func TestPagesPool(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "trusted_proxies: [127.0.0.1]\nlimits: {login_concurrency_per_client: 1, login_concurrency: 5}\n")
	addr := serveHolding(t, tg)
	const alice = "198.51.100.1"
	held(t, addr, http.MethodGet, samlsp.SelectPath, alice, "")
	waitInFlight(t, tg, poolPages, 1)
	if resp, _ := samlRequest(t, addr, http.MethodGet, samlsp.LogoutPath, alice, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("alice's second page: got %d, want 429", resp.StatusCode)
	}
	if resp, _ := postACS(t, addr, alice); resp.StatusCode == http.StatusTooManyRequests {
		t.Errorf("alice's sign-in response refused for her page")
	}
}

// Clients are counted per IPv6 /64 (limits.ipv6_client_prefix): the
// addresses of one host count together, and another /64 is another
// client. IPv4-mapped addresses are IPv4.
func TestLoginLimitsPerIPv6Prefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, extra    string
		held           []string
		other          string
		wantOtherLimit bool
	}{
		{"same /64", "", []string{"2001:db8:1:2::1", "2001:db8:1:2::2"}, "2001:db8:1:2:ab:cd:ef:1", true},
		{"another /64", "", []string{"2001:db8:1:2::1", "2001:db8:1:2::2"}, "2001:db8:1:3::1", false},
		{"IPv4-mapped", "", []string{"198.51.100.7", "::ffff:198.51.100.7"}, "198.51.100.7", true},
		{"a /56 configured", "  ipv6_client_prefix: 56\n", []string{"2001:db8:1:200::1", "2001:db8:1:2ff::1"}, "2001:db8:1:280::1", true},
		{"beyond the /56", "  ipv6_client_prefix: 56\n", []string{"2001:db8:1:200::1", "2001:db8:1:2ff::1"}, "2001:db8:1:300::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGateway(t, http.NotFoundHandler(),
				"trusted_proxies: [127.0.0.1]\nlimits:\n  login_concurrency_per_client: 2\n  login_concurrency: 10\n"+tt.extra)
			addr := serveHolding(t, tg)
			for _, c := range tt.held {
				heldACS(t, addr, c)
			}
			waitInFlight(t, tg, poolACS, len(tt.held))
			resp, _ := postACS(t, addr, tt.other)
			if got := resp.StatusCode == http.StatusTooManyRequests; got != tt.wantOtherLimit {
				t.Errorf("%s after %v: got %d, want refused %v", tt.other, tt.held, resp.StatusCode, tt.wantOtherLimit)
			}
		})
	}
}

// A flood of ACS posts whose bodies trickle in, from more addresses and
// in greater number than the limits admit, holds no slot: meanwhile a
// real sign-in from another client succeeds, and sign-out and the
// organisation page answer, even to the flooding addresses.
func TestSlowLoginBodiesHoldNoSlot(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "trusted_proxies: [127.0.0.1]\nlimits: {login_concurrency_per_client: 2, login_concurrency: 4}\n")
	addr := serveGateway(t, tg)
	const flood = 16
	for i := range flood {
		slowACS(t, addr, fmt.Sprintf("203.0.113.%d", i/2+1))
	}
	throttled := func() float64 {
		return testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("total")) +
			testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("client"))
	}
	waitFor(t, "every slow post to be waited for or refused", func() bool {
		return tg.gw.bodiesArriving.Load()+int64(throttled()) == flood
	})
	if n := tg.gw.state.Load().logins.acs.InFlight(); n != 0 {
		t.Errorf("ACS slots held by bodies still arriving: %d", n)
	}

	tenant, _ := tg.gw.Provider().CurrentTenants().Get("acme")
	form := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
	resp, body := samlRequest(t, addr, http.MethodPost, samlsp.LoginPath+"acme", "198.51.100.1", form.Encode())
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound || !hasCookie(resp, "__Host-ssogw_session") {
		t.Errorf("a real sign-in during the flood: got %d, want a redirect with a session\n%s", resp.StatusCode, body)
	}
	for _, path := range []string{samlsp.LogoutPath, samlsp.SelectPath} {
		if resp, body := samlRequest(t, addr, http.MethodGet, path, "203.0.113.1", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s from a flooding address: got %d, want 200\n%s", path, resp.StatusCode, body)
		}
	}
	if got := throttled(); got != 0 {
		t.Errorf("requests throttled: %v, want 0", got)
	}
}

func hasCookie(resp *http.Response, name string) bool {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// A client that trickles its ACS post gets 408 at the body deadline and
// loses the connection, having never held a slot.
func TestLoginBodyTimeout(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	tg.gw.loginBodyTimeout = 300 * time.Millisecond
	addr := serveGateway(t, tg)
	c := slowACS(t, addr, "ignored")
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
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a trickled ACS post: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close || !strings.Contains(string(body), "took too long") {
		t.Errorf("a trickled ACS post: got %d (close %v), want 408 and Connection: close\n%s", resp.StatusCode, resp.Close, body)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection stayed open after the 408")
	}
	if got := testutil.ToFloat64(tg.gw.bodyTimeouts); got != 1 {
		t.Errorf("sso_gateway_login_body_timeouts_total: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(tg.gw.metrics.throttled.WithLabelValues("total")); got != 0 {
		t.Errorf(`throttled{scope="total"}: %v, want 0`, got)
	}
}
