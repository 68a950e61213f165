package proxy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/demo/docs"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Sessions the fake authenticator knows, by the value of the ssogw_session
// cookie.
var (
	alice = &samlsp.Session{
		Tenant: "acme",
		NameID: "alice@acme.example",
		Email:  "alice@acme.example",
		Name:   "Alice Example",
		Groups: []string{"0b6e2b7c-staff", "5f1d9a20-legal"},
	}
	bob = &samlsp.Session{
		Tenant: "globex",
		NameID: "bob",
		Name:   "Bøb Ünïcode", // no email, no groups, non-ASCII name
	}
)

const (
	// sessionCookie is what a signed-in client sends; the fake
	// authenticator accepts it as alice.
	sessionCookie = "ssogw_session=valid"
	// loginURL is where the fake authenticator's LoginRedirect points.
	loginURL = "https://login.test/start"
	// samlBody is what the fake SAML handler answers.
	samlBody = "served by the fake SAML handler"
)

// fakeAuth accepts the ssogw_session cookie values in sessions.
type fakeAuth struct {
	sessions  map[string]*samlsp.Session
	redirects atomic.Int64
}

var _ proxy.Authenticator = (*fakeAuth)(nil)

func (a *fakeAuth) Authenticate(r *http.Request) (*samlsp.Session, bool) {
	c, err := r.Cookie("ssogw_session")
	if err != nil {
		return nil, false
	}
	s, ok := a.sessions[c.Value]
	return s, ok
}

func (a *fakeAuth) LoginRedirect(w http.ResponseWriter, r *http.Request) {
	a.redirects.Add(1)
	http.Redirect(w, r, a.LoginURL(r, r.URL.RequestURI()), http.StatusFound)
}

func (a *fakeAuth) LoginURL(_ *http.Request, returnTo string) string {
	return loginURL + "?return_to=" + url.QueryEscape(returnTo)
}

func (a *fakeAuth) SessionCookieName() string { return "ssogw_session" }

// withOwnPaths sends the gateway's own paths to saml and the rest to p:
// step 3 of the router in internal/gateway, which the proxy never does
// itself, so that these tests can sign in through the proxy's front door.
func withOwnPaths(saml http.Handler, p *proxy.Proxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if samlsp.OwnPath(r) {
			saml.ServeHTTP(w, r)
			return
		}
		p.ServeHTTP(w, r)
	})
}

// fakeSAML records the request URIs it serves.
type fakeSAML struct {
	mu   sync.Mutex
	uris []string
}

func (f *fakeSAML) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.uris = append(f.uris, r.RequestURI)
	f.mu.Unlock()
	w.Header().Set("X-Handled-By", "saml")
	_, _ = io.WriteString(w, samlBody)
}

func (f *fakeSAML) served(uri string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.uris, uri)
}

// gateway is a Proxy behind reqinfo.Correlate in its own
// httptest.Server.
type gateway struct {
	srv  *httptest.Server
	reg  *prometheus.Registry
	auth *fakeAuth
	saml *fakeSAML
}

// newGateway starts a gateway in front of upstream (a URL). opts may adjust
// the Options before New.
func newGateway(tb testing.TB, upstream string, opts ...func(*proxy.Options)) *gateway {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatalf("parse upstream %q: %v", upstream, err)
	}
	g := &gateway{
		reg:  prometheus.NewRegistry(),
		auth: &fakeAuth{sessions: map[string]*samlsp.Session{"valid": alice, "bob": bob}},
		saml: &fakeSAML{},
	}
	o := proxy.Options{
		Upstream:     u,
		PublicScheme: "https",
		Auth:         g.auth,
		Metrics:      proxy.NewMetrics(g.reg),
	}
	for _, f := range opts {
		f(&o)
	}
	p, err := proxy.New(o)
	if err != nil {
		tb.Fatalf("proxy.New: %v", err)
	}
	g.srv = httptest.NewServer(reqinfo.Correlate(withOwnPaths(g.saml, p)))
	tb.Cleanup(g.srv.Close)
	return g
}

// addr is the gateway's host:port.
func (g *gateway) addr() string { return g.srv.Listener.Addr().String() }

// client does not follow redirects, and leaves compression alone so that
// tests see exactly what the gateway sent.
func (g *gateway) client() *http.Client {
	return &http.Client{
		Transport: g.srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: time.Minute,
	}
}

// do sends one request through the gateway and returns the response with
// its whole body.
func (g *gateway) do(tb testing.TB, method, target string, header http.Header, body io.Reader) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, g.srv.URL+target, body)
	if err != nil {
		tb.Fatalf("NewRequest %s %s: %v", method, target, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := g.client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return resp, b
}

// raw writes one request, exactly as given, on a new connection to the
// gateway and reads the response. Lines are joined with CRLF and the blank
// line is added, so header names keep the case and spelling the test chose
// and the request target is not cleaned or re-escaped by any client.
func (g *gateway) raw(tb testing.TB, lines ...string) (*http.Response, []byte) {
	tb.Helper()
	conn, err := net.Dial("tcp", g.addr())
	if err != nil {
		tb.Fatalf("dial gateway: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, strings.Join(lines, "\r\n")+"\r\n\r\n"); err != nil {
		tb.Fatalf("write request: %v", err)
	}
	method, _, _ := strings.Cut(lines[0], " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("read response to %q: %v", lines[0], err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body of response to %q: %v", lines[0], err)
	}
	return resp, body
}

// newDocs starts the demo document service on a fresh directory.
func newDocs(tb testing.TB) *httptest.Server {
	tb.Helper()
	s, err := docs.New(docs.Options{Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("docs.New: %v", err)
	}
	srv := httptest.NewServer(s)
	tb.Cleanup(srv.Close)
	return srv
}

// echoed is what the echo upstream answers: the request as it arrived.
type echoed struct {
	Method     string              `json:"method"`
	RequestURI string              `json:"request_uri"`
	Host       string              `json:"host"`
	Header     map[string][]string `json:"header"`
	BodyBytes  int64               `json:"body_bytes"`
}

// echoUpstream answers every request with an echoed body, and with the
// method and request URI in X-Echo-* headers too (for HEAD). hits counts
// the requests it received.
type echoUpstream struct {
	srv  *httptest.Server
	hits atomic.Int64
}

func newEcho(tb testing.TB) *echoUpstream {
	tb.Helper()
	e := &echoUpstream{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Echo-Uri", r.RequestURI)
		_ = json.NewEncoder(w).Encode(echoed{
			Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header, BodyBytes: n,
		})
	}))
	tb.Cleanup(e.srv.Close)
	return e
}

func decodeJSON[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode JSON %q: %v", body, err)
	}
	return v
}

func wantStatus(tb testing.TB, resp *http.Response, body []byte, want int) {
	tb.Helper()
	if resp.StatusCode != want {
		tb.Fatalf("got status %q, want %q (body %q)", resp.Status, fmt.Sprint(want, " ", http.StatusText(want)), body)
	}
}

// closedURL is an http URL on which nothing listens. It is port 1 on
// loopback rather than a port freed by closing a listener, because with
// tests in parallel a freed ephemeral port can be handed to another test's
// server at once; no test listener is ever given a privileged port.
func closedURL(tb testing.TB) string {
	tb.Helper()
	const addr = "127.0.0.1:1"
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		tb.Fatalf("dial %s: got a connection, want it refused (something listens there)", addr)
	}
	return "http://" + addr
}

// wantMetrics compares the two request counters on reg with want, keyed by
// "outcome" and "code" label values; series not named are expected at zero.
// Close the gateway's server first: the outcome of a proxied request is
// counted after its response has been written, and Close waits for that.
func wantMetrics(tb testing.TB, reg prometheus.Gatherer, outcomes map[string]int, codes map[string]int) {
	tb.Helper()
	var b strings.Builder
	b.WriteString("# HELP sso_gateway_requests_total Public requests outside the gateway's SAML endpoints, by outcome.\n")
	b.WriteString("# TYPE sso_gateway_requests_total counter\n")
	for _, o := range proxy.Outcomes() {
		fmt.Fprintf(&b, "sso_gateway_requests_total{outcome=%q} %d\n", o, outcomes[o])
	}
	b.WriteString("# HELP sso_gateway_upstream_responses_total Responses received from the upstream, by status class (1xx to 5xx).\n")
	b.WriteString("# TYPE sso_gateway_upstream_responses_total counter\n")
	for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
		fmt.Fprintf(&b, "sso_gateway_upstream_responses_total{code=%q} %d\n", c, codes[c])
	}
	for o := range outcomes {
		if !slices.Contains(proxy.Outcomes(), o) {
			tb.Errorf("test expects outcome %q, which is not in proxy.Outcomes() %q", o, proxy.Outcomes())
		}
	}
	// A hijacked connection (a websocket) outlives the server's Close, so
	// its outcome may land a moment later.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := testutil.GatherAndCompare(reg, strings.NewReader(b.String()),
			"sso_gateway_requests_total", "sso_gateway_upstream_responses_total")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Error(err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// normalize is how CGI, PHP and nginx (underscores_in_headers) read a
// header name: case-insensitive, with '_' the same as '-'.
func normalize(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}
