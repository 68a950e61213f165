package ingress

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/gateway"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// The hosts the client asks nginx for: public_url's, and a host of the
// tenant globex's own.
const (
	publicHost = "docs.nginx.test"
	globexHost = "docs.globex.test"
	loginPath  = "/auth/api/v1/saml/login/"
	selectPath = "/auth/api/v1/saml/select"
	// user is samltest's default user.
	user = "alice@contoso.example"
)

// seen is what the upstream received: the identity headers and every
// header name, as sent.
type seen struct {
	URI     string              `json:"uri"`
	Headers map[string][]string `json:"headers"`
}

// nginxStack is an ingress (nginx, or Caddy), with its shipped
// configuration, in front of the gateway and an upstream that records what
// reaches it.
type nginxStack struct {
	base   string // http://docs.nginx.test:<nginx port>
	port   string
	idp    *samltest.IDP
	mu     sync.Mutex
	hits   []seen
	client *http.Client
	jar    *cookiejar.Jar
}

// startIngress starts an ingress on ln in front of the gateway and the
// upstream (host:port each), serving publicHost and globexHost, and
// returns the address to dial.
type startIngress func(t *testing.T, ln net.Listener, gateway, upstream string) string

func startNginxStack(t *testing.T) *nginxStack {
	t.Helper()
	return startStack(t, func(t *testing.T, ln net.Listener, gateway, upstream string) string {
		return StartNginx(t, NginxOptions{Listener: ln, Gateway: gateway, Upstream: upstream, ServerName: publicHost + " " + globexHost})
	})
}

// startStack starts the gateway (trusting 127.0.0.1, with tenants acme and
// globex, globex on a host of its own) and a recording upstream behind
// the ingress that start starts.
func startStack(t *testing.T, start startIngress) *nginxStack {
	t.Helper()
	s := &nginxStack{idp: samltest.NewIDP(t)}
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits = append(s.hits, seen{URI: r.RequestURI, Headers: r.Header.Clone()})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{URI: r.RequestURI, Headers: r.Header})
	}))
	t.Cleanup(up.Close)

	nginxLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, s.port, _ = net.SplitHostPort(nginxLn.Addr().String())
	s.base = "http://" + net.JoinHostPort(publicHost, s.port)
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	testfiles.SPKeyPair(t, dir, "sp.crt", "sp.key")
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'n'}, 32))
	testfiles.WriteAll(t, dir, map[string][]byte{"idp.xml": s.idp.MetadataXML(), "config.yaml": fmt.Appendf(nil, `public_url: %s
listen: %s
admin_listen: 127.0.0.1:0
upstream: %s
allow_insecure_http: true
trusted_proxies: [127.0.0.1/32]
shutdown_delay: 0s
log: {access: true}
sp: {cert_file: sp.crt, key_file: sp.key}
session:
  keys: [{hash_key: %s, block_key: %s}]
tenants:
  - id: acme
    idp_metadata_file: idp.xml
  - id: globex
    idp_metadata_file: idp.xml
    hosts: [%s]
`, s.base, gwLn.Addr(), up.URL, key, key, globexHost)})
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Build(t.Context(), cfg, gateway.Deps{
		Registry: prometheus.NewRegistry(), Version: "e2e",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw.PublicHandler())
	srv.Listener.Close()
	srv.Listener = gwLn
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)

	nginx := start(t, nginxLn, gwLn.Addr().String(), up.Listener.Addr().String())
	s.jar, _ = cookiejar.New(nil)
	s.client = &http.Client{
		Jar: s.jar,
		// Every host name is nginx.
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, nginx)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	return s
}

// reply is a response read in full.
type reply struct {
	code   int
	header http.Header
	body   string
}

// do sends one request through nginx; headers are "Name: value", sent
// with exactly that spelling.
func (s *nginxStack) do(t *testing.T, method, rawURL string, body url.Values, headers ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header[name] = append(req.Header[name], value)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (s *nginxStack) upstreamHits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hits)
}

const html = "Accept: text/html,application/xhtml+xml"

var authnRequestID = regexp.MustCompile(`ID="([^"]+)"`)

// spLogin follows a navigation without a session through nginx: to the
// sign-in URL, to the IdP, back to the ACS and to the original URL,
// which it returns with the upstream's reply.
func (s *nginxStack) spLogin(t *testing.T, host, target string) (string, reply) {
	t.Helper()
	origin := "http://" + net.JoinHostPort(host, s.port)
	r := s.do(t, http.MethodGet, origin+target, nil, html)
	signin := r.header.Get("Location")
	if r.code == http.StatusFound && strings.HasPrefix(signin, origin+selectPath+"?") {
		// No tenant of the host's and none remembered: the organisation
		// page, where the user names theirs.
		r = s.do(t, http.MethodGet, signin+"&q=acme", nil, html)
		signin = r.header.Get("Location")
		if strings.HasPrefix(signin, "/") {
			signin = origin + signin
		}
	}
	if r.code != http.StatusFound || !strings.HasPrefix(signin, origin+loginPath) {
		t.Fatalf("navigation without a session: got %d Location %q, want 302 to %s%s...: %s", r.code, signin, origin, loginPath, r.body)
	}
	r = s.do(t, http.MethodGet, signin, nil, html)
	loc, err := url.Parse(r.header.Get("Location"))
	if r.code != http.StatusFound || err != nil {
		t.Fatalf("sign-in through nginx: got %d %q, want 302 to the IdP", r.code, r.header.Get("Location"))
	}
	deflated, _ := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	m := authnRequestID.FindSubmatch(xml)
	if err != nil || m == nil {
		t.Fatalf("no AuthnRequest in %q: %v", loc, err)
	}
	tenant := strings.TrimPrefix(strings.SplitN(signin[len(origin):], "?", 2)[0], loginPath)
	acs := s.base + loginPath + tenant
	form := s.idp.PostForm(t, samltest.Response{Destination: acs, Audience: acs, InResponseTo: string(m[1])}, loc.Query().Get("RelayState"))
	r = s.do(t, http.MethodPost, acs, form, html)
	back := r.header.Get("Location")
	if r.code != http.StatusSeeOther && r.code != http.StatusFound {
		t.Fatalf("ACS through nginx: got %d, want a redirect: %s", r.code, r.body)
	}
	if strings.HasPrefix(back, "/") {
		back = s.base + back
	}
	// A tenant with hosts of its own may hop through the handoff.
	for range 3 {
		if !strings.Contains(back, "/auth/api/v1/saml/") {
			break
		}
		r = s.do(t, http.MethodGet, back, nil, html)
		back = r.header.Get("Location")
		if strings.HasPrefix(back, "/") {
			back = origin + back
		}
	}
	return back, s.do(t, http.MethodGet, back, nil, html)
}

// TestNginxForwardAuth runs the shipped nginx configuration in front of
// the gateway and an upstream.
func TestNginxForwardAuth(t *testing.T) {
	s := startNginxStack(t)

	t.Run("API client gets 401", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/api/docs", nil, "Accept: application/json")
		if r.code != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Cookie ") {
			t.Errorf("got %d (WWW-Authenticate %q), want 401 with the gateway's challenge", r.code, r.header.Get("WWW-Authenticate"))
		}
		if r.header.Get("Location") != "" || s.upstreamHits() != 0 {
			t.Errorf("got Location %q and %d upstream requests, want neither", r.header.Get("Location"), s.upstreamHits())
		}
	})

	t.Run("forged identity without a session", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/api/docs", nil, "X-Remote-User: admin", "Cookie: ssogw_session=forged")
		if r.code != http.StatusUnauthorized || s.upstreamHits() != 0 {
			t.Errorf("got %d, %d upstream requests; want 401 and none", r.code, s.upstreamHits())
		}
	})

	t.Run("navigation signs in and returns to the original URL", func(t *testing.T) {
		back, r := s.spLogin(t, publicHost, "/docs/a%20b?c=d")
		if back != s.base+"/docs/a%20b?c=d" {
			t.Errorf("after signing in: got sent to %q, want %q", back, s.base+"/docs/a%20b?c=d")
		}
		var got seen
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
			t.Fatalf("original URL after signing in: got %d %s", r.code, r.body)
		}
		if got.URI != "/docs/a%20b?c=d" {
			t.Errorf("upstream URI: got %q, want %q", got.URI, "/docs/a%20b?c=d")
		}
	})

	t.Run("identity headers arrive, forged ones are stripped", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/docs/x", nil,
			"X-Remote-User: mallory", "x-remote-tenant: globex", "X_Remote_User: mallory", "X_REMOTE_TENANT: globex",
			"X-Remote-Groups-Overage: true", "X-REMOTE-GROUPS: admins", "X-Remote-Jwt-Assertion: forged", "X-Remote-Email: mallory@evil.example")
		var got seen
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
			t.Fatalf("got %d %s, want the upstream's 200", r.code, r.body)
		}
		h := http.Header(got.Headers)
		want := map[string]string{"X-Remote-User": user, "X-Remote-Tenant": "acme"}
		for name, w := range want {
			if vs := h.Values(name); len(vs) != 1 || vs[0] != w {
				t.Errorf("%s upstream: got %q, want %q", name, vs, w)
			}
		}
		if vs := h.Values("X-Remote-Groups"); strings.Contains(strings.Join(vs, ","), "admins") {
			t.Errorf("X-Remote-Groups upstream: got %q, want the session's (none) only", vs)
		}
		for name, vs := range h {
			n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if strings.Contains(strings.Join(vs, ","), "mallory") || n == "x-remote-groups-overage" || n == "x-remote-jwt-assertion" {
				t.Errorf("a forged header reached the upstream: %s: %q", name, vs)
			}
		}
	})

	t.Run("another tenant's host refuses the session", func(t *testing.T) {
		before := s.upstreamHits()
		// The jar holds acme's cookie for publicHost; carry it there by hand.
		var cookie string
		for _, c := range s.jar.Cookies(&url.URL{Scheme: "http", Host: publicHost}) {
			if c.Name == "ssogw_session" {
				cookie = c.Name + "=" + c.Value
			}
		}
		if cookie == "" {
			t.Fatal("no session cookie after signing in")
		}
		other := "http://" + net.JoinHostPort(globexHost, s.port)
		r := s.do(t, http.MethodGet, other+"/docs", nil, "Accept: application/json", "Cookie: "+cookie)
		if r.code != http.StatusUnauthorized {
			t.Errorf("API request at %s: got %d, want 401", globexHost, r.code)
		}
		r = s.do(t, http.MethodGet, other+"/docs", nil, html, "Cookie: "+cookie)
		if loc := r.header.Get("Location"); r.code != http.StatusFound || !strings.HasPrefix(loc, other+loginPath+"globex") {
			t.Errorf("navigation at %s: got %d %q, want 302 to globex's sign-in there", globexHost, r.code, loc)
		}
		if n := s.upstreamHits(); n != before {
			t.Errorf("got %d upstream requests, want none", n-before)
		}
	})

	t.Run("sign-out", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/auth/api/v1/saml/logout", nil, html)
		if r.code >= 400 {
			t.Fatalf("sign-out through nginx: got %d: %s", r.code, r.body)
		}
		r = s.do(t, http.MethodGet, s.base+"/docs", nil, "Accept: application/json")
		if r.code != http.StatusUnauthorized {
			t.Errorf("after sign-out: got %d, want 401", r.code)
		}
	})

	t.Run("IdP-initiated login through nginx", func(t *testing.T) {
		acs := s.base + loginPath + "acme"
		r := s.do(t, http.MethodPost, acs, s.idp.PostForm(t, samltest.Response{Destination: acs, Audience: acs}, ""), html)
		if r.code != http.StatusSeeOther && r.code != http.StatusFound {
			t.Fatalf("IdP-initiated ACS through nginx: got %d: %s", r.code, r.body)
		}
		r = s.do(t, http.MethodGet, s.base+"/docs", nil, "Accept: application/json")
		var got seen
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil || http.Header(got.Headers).Get("X-Remote-Tenant") != "acme" {
			t.Errorf("after an IdP-initiated login: got %d %s, want the upstream with acme's identity", r.code, r.body)
		}
	})

	t.Run("the verify subrequest location is internal", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/_sso_gateway_verify", nil, "Accept: application/json")
		if r.code == http.StatusOK && r.header.Get("X-Remote-User") != "" {
			t.Errorf("a client reached the verify location: %d %q", r.code, r.header)
		}
	})
}
