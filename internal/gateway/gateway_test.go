package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

type testGateway struct {
	gw       *Gateway
	cfg      *config.Config
	idp      *samltest.IDP
	upstream *httptest.Server
	hits     *atomic.Int64
}

// newTestGateway builds a gateway from a real config file, with one tenant
// "acme" trusting a samltest IdP, in front of upstream.
func newTestGateway(t testing.TB, upstream http.Handler, extra string) *testGateway {
	t.Helper()
	hits := &atomic.Int64{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		upstream.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	idp := samltest.NewIDP(t)
	testfiles.SPKeyPair(t, dir, "sp.crt", "sp.key")
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	testfiles.WriteAll(t, dir, map[string][]byte{"idp.xml": idp.MetadataXML(), "config.yaml": []byte(fmt.Sprintf(`public_url: https://docs.example.com
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
upstream: %s
shutdown_timeout: 5s
shutdown_delay: 0s
sp: {cert_file: sp.crt, key_file: sp.key}
session:
  keys: [{hash_key: %s, block_key: %s}]
tenants:
  - id: acme
    idp_metadata_file: idp.xml
    email_domains: [acme.example]
%s`, up.URL, key, key, extra))})
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	gw, err := Build(context.Background(), cfg, Deps{Registry: prometheus.NewRegistry(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &testGateway{gw: gw, cfg: cfg, idp: idp, upstream: up, hits: hits}
}

// signIn posts an IdP-initiated response for acme and returns the session
// cookie.
func (tg *testGateway) signIn(t testing.TB) *http.Cookie {
	t.Helper()
	tenant, _ := tg.gw.Provider().CurrentTenants().Get("acme")
	form := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
	req := publicRequest(http.MethodPost, samlsp.LoginPath+"acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	tg.gw.PublicHandler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" {
			return c
		}
	}
	t.Fatalf("sign in: got %d: %s", rec.Code, rec.Body)
	return nil
}

func get(t *testing.T, h http.Handler, path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := publicRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestMetricsExported: every metric deploy/README.md documents is exported on the
// admin listener.
func TestMetricsExported(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	tg.signIn(t)
	body := get(t, tg.gw.AdminHandler(), "/metrics").Body.String()
	for _, name := range []string{
		"sso_gateway_logins_total",
		"sso_gateway_login_starts_total",
		"sso_gateway_login_duration_seconds_bucket",
		"sso_gateway_tenant_ready{tenant=\"acme\"} 1",
		"sso_gateway_idp_certificate_expiry_timestamp_seconds{tenant=\"acme\"}",
		"sso_gateway_idp_metadata_last_success_timestamp_seconds{tenant=\"acme\"}",
		"sso_gateway_config_last_reload_success_timestamp_seconds",
		`sso_gateway_config_reloads_total{result="failure"} 0`,
		"sso_gateway_requests_total",
		"sso_gateway_upstream_duration_seconds",
		"sso_gateway_upstream_responses_total",
		`sso_gateway_rejected_requests_total{reason="framing"} 0`,
		`sso_gateway_login_throttled_total{scope="client"} 0`,
		`sso_gateway_login_handoffs_total{result="unbound"} 0`,
		`sso_gateway_build_info{goversion="go`,
		"go_goroutines",
		"process_cpu_seconds_total",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(body, `sso_gateway_logins_total{flow="idp",reason="none",result="success",tenant="acme"} 1`) {
		t.Error("/metrics does not count the login")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	admin := tg.gw.AdminHandler()
	if rec := get(t, admin, "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("healthz: got %d, want 200", rec.Code)
	}
	rec := get(t, admin, "/readyz")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "1 of 1 tenants ready") {
		t.Errorf("readyz: got %d %q, want 200 with every tenant ready", rec.Code, rec.Body)
	}
	tg.gw.draining.Store(true)
	if rec := get(t, admin, "/readyz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining: got %d, want 503", rec.Code)
	}
}

// TestAdminNotOnPublicListener: the public listener never answers the
// admin paths itself; without a session they are refused, with one they
// are the upstream's.
func TestAdminNotOnPublicListener(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}), "")
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		rec := get(t, tg.gw.PublicHandler(), path)
		if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "go_goroutines") {
			t.Errorf("%s without a session: got %d, want 401", path, rec.Code)
		}
	}
	session := tg.signIn(t)
	rec := get(t, tg.gw.PublicHandler(), "/metrics", session)
	if rec.Body.String() != "upstream /metrics" {
		t.Errorf("/metrics with a session: got %q, want the upstream's page", rec.Body)
	}
}

func TestUnreachableUpstream(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	session := tg.signIn(t)
	tg.upstream.Close()
	req := publicRequest(http.MethodGet, "/documents", nil)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(session)
	rec := httptest.NewRecorder()
	tg.gw.PublicHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), rec.Header().Get("X-Correlation-Id")) {
		t.Fatalf("got %d, want the 502 page with the correlation ID", rec.Code)
	}
}

// TestGracefulShutdown: cancelling the context turns readiness off and lets
// an in-flight request finish; new connections are refused.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{})
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}), "")
	session := tg.signIn(t)
	// Plain HTTP although public_url is https (TLS ends at a load balancer).
	srv := startServing(t, tg.gw)

	result := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.public+"/slow", nil)
		req.Host = testPublicHost
		req.AddCookie(session)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		result <- string(b)
	}()
	<-started
	srv.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for !tg.gw.draining.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !tg.gw.draining.Load() {
		t.Fatal("not draining after the context ended")
	}
	close(release)
	if got := <-result; got != "finished" {
		t.Errorf("in-flight request: got %q, want %q", got, "finished")
	}
	if err := srv.wait(); err != nil {
		t.Errorf("ServeListeners: %v", err)
	}
	if _, err := http.Get("http://" + srv.public + "/"); err == nil {
		t.Error("the public listener still accepts connections after shutdown")
	}
}

// TestMetadataProblemsHaveKeyPaths: a tenant's unusable metadata file does
// not stop Build; CheckMetadata (what `check` runs) and the tenant reports
// name it with its key path and tenant.
func TestMetadataProblemsHaveKeyPaths(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	cfg := *tg.cfg
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := os.WriteFile(bad, []byte("<nope/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Tenants = append([]config.Tenant{}, cfg.Tenants...)
	cfg.Tenants = append(cfg.Tenants, config.Tenant{ID: "broken", MetadataFile: bad})
	gw, err := Build(context.Background(), &cfg, Deps{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("Build with a tenant problem: %v", err)
	}
	ps := config.Problems(CheckMetadata(t.Context(), &cfg, nil, time.Now()))
	if len(ps) != 1 || ps[0].Path != "tenants[1].idp_metadata_file" || ps[0].Tenant != "broken" {
		t.Fatalf("CheckMetadata: got %q, want one problem of tenant broken at tenants[1].idp_metadata_file", ps)
	}
	reports := gw.TenantReports()
	if got := reports[1].Problems; reports[1].Ready || len(got) != 1 || !strings.HasPrefix(got[0], "tenants[1].idp_metadata_file: ") {
		t.Errorf("report of the broken tenant: got ready %v, problems %q", reports[1].Ready, got)
	}
	if !reports[0].Ready || len(reports[0].Problems) != 0 {
		t.Errorf("report of acme: got %+v, want ready without problems", reports[0])
	}
}

// TestUnreachableMetadataURL: a tenant whose metadata URL does not answer
// is not ready, and says why, but the gateway starts and serves the others.
func TestUnreachableMetadataURL(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	cfg := *tg.cfg
	u, _ := url.Parse("http://127.0.0.1:1/federationmetadata.xml")
	cfg.Tenants = append(append([]config.Tenant{}, cfg.Tenants...), config.Tenant{ID: "unreachable", MetadataURL: u, MetadataRefresh: time.Hour})
	gw, err := Build(t.Context(), &cfg, Deps{Registry: prometheus.NewRegistry(), InitialFetchWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(t, gw.AdminHandler(), "/readyz")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "tenant unreachable: not ready: tenants[1].idp_metadata_url: fetch IdP metadata") || !strings.Contains(rec.Body.String(), "1 of 2 tenants ready") {
		t.Errorf("readyz: got %d %q, want 200 naming the unreachable tenant", rec.Code, rec.Body)
	}
	metrics := get(t, gw.AdminHandler(), "/metrics").Body.String()
	for _, want := range []string{`sso_gateway_tenant_ready{tenant="unreachable"} 0`, `sso_gateway_idp_metadata_refresh_total{result="fetch_error",tenant="unreachable"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	req := publicRequest(http.MethodGet, samlsp.LoginPath+"unreachable", nil)
	req.Header.Set("Accept", "text/html")
	login := httptest.NewRecorder()
	gw.PublicHandler().ServeHTTP(login, req)
	// The URL may answer later (or on another replica): try again.
	if login.Code != http.StatusServiceUnavailable || login.Header().Get("Retry-After") == "" ||
		!strings.Contains(login.Body.String(), "try again in a few minutes") {
		t.Errorf("login at the unready tenant: got %d %q (Retry-After %q), want 503 asking to try again later",
			login.Code, login.Body, login.Header().Get("Retry-After"))
	}
	acme := httptest.NewRecorder()
	req = publicRequest(http.MethodGet, samlsp.LoginPath+"acme", nil)
	gw.PublicHandler().ServeHTTP(acme, req)
	if acme.Code != http.StatusFound {
		t.Errorf("login at acme: got %d, want 302 to its IdP", acme.Code)
	}
}

// TestShutdownDelay: told to stop, the gateway reports not ready at once
// but keeps serving for shutdown_delay, so that a load balancer takes it
// out of rotation before its listener closes.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}), "")
	tg.cfg.ShutdownDelay = 3 * time.Second
	session := tg.signIn(t)
	srv := startServing(t, tg.gw)
	ready := func() int {
		resp, err := http.Get("http://" + srv.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d", got)
	}
	stopped := time.Now()
	srv.cancel()
	for ready() != http.StatusServiceUnavailable {
		time.Sleep(5 * time.Millisecond)
	}
	// Still serving, on a new connection.
	req, _ := http.NewRequest(http.MethodGet, "http://"+srv.public+"/doc", nil)
	req.Host = testPublicHost
	req.AddCookie(session)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if time.Since(stopped) < tg.cfg.ShutdownDelay {
		if err != nil {
			t.Fatalf("a request during the delay: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "served" {
			t.Errorf("a request during the delay: %d %q", resp.StatusCode, b)
		}
	}
	if err := srv.wait(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(stopped); d < tg.cfg.ShutdownDelay {
		t.Errorf("stopped after %v, before the %v delay", d, tg.cfg.ShutdownDelay)
	}
}

// testPublicHost is public_url's host in the tests' configurations.
const testPublicHost = "docs.example.com"

// publicRequest is a request to the public listener, for public_url's
// host: the gateway refuses any other.
func publicRequest(method, target string, body io.Reader) *http.Request {
	req := httptest.NewRequest(method, target, body)
	req.Host = testPublicHost
	return req
}
