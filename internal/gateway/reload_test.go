package gateway

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// reloadEnv is a gateway built from a config file the test rewrites.
type reloadEnv struct {
	t    *testing.T
	dir  string
	idp  *samltest.IDP
	up   *httptest.Server
	gw   *Gateway
	logs *syncbuf.Buffer
}

// keyA and keyB are session keys (base64 of 32 bytes each).
var (
	keyA = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'a'}, 32))
	keyB = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'b'}, 32))
)

func newReloadEnv(t *testing.T, tenants []string, keys ...string) *reloadEnv {
	t.Helper()
	e := &reloadEnv{t: t, dir: t.TempDir(), idp: samltest.NewIDP(t), logs: &syncbuf.Buffer{}}
	e.up = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream ", r.Header.Get("X-Remote-Tenant"))
	}))
	t.Cleanup(e.up.Close)
	testfiles.SPKeyPair(t, e.dir, "sp.crt", "sp.key")
	e.write("idp.xml", string(e.idp.MetadataXML()))
	e.writeConfig(tenants, keys...)
	cfg, err := config.Load(e.configPath(), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	e.gw, err = Build(t.Context(), cfg, Deps{Registry: prometheus.NewRegistry(), Logger: log, LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func noEnv(string) (string, bool) { return "", false }

func (e *reloadEnv) configPath() string { return filepath.Join(e.dir, "config.yaml") }

func (e *reloadEnv) write(name, data string) {
	e.t.Helper()
	// Write and rename, as editors and Kubernetes do.
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, name)); err != nil {
		e.t.Fatal(err)
	}
}

// writeConfig writes a config with the given tenants (all trusting the
// test IdP) and session keys (first encodes).
func (e *reloadEnv) writeConfig(tenants []string, keys ...string) {
	e.t.Helper()
	if len(keys) == 0 {
		keys = []string{keyA}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "public_url: https://docs.example.com\nupstream: %s\nshutdown_delay: 0s\nsp: {cert_file: sp.crt, key_file: sp.key}\nsession:\n  keys:\n", e.up.URL)
	for _, k := range keys {
		fmt.Fprintf(&b, "    - {hash_key: %s, block_key: %s}\n", k, k)
	}
	b.WriteString("tenants:\n")
	for _, id := range tenants {
		fmt.Fprintf(&b, "  - id: %s\n    idp_metadata_file: idp.xml\n", id)
	}
	e.write("config.yaml", b.String())
}

// signIn completes an IdP-initiated login at tenant.
func (e *reloadEnv) signIn(tenant string) *http.Cookie {
	e.t.Helper()
	rec := e.postACS(tenant, e.idp.PostForm(e.t, e.response(tenant, ""), ""))
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" && c.Value != "" {
			return c
		}
	}
	e.t.Fatalf("sign in at %s: got %d: %s", tenant, rec.Code, rec.Body)
	return nil
}

func (e *reloadEnv) response(tenant, inResponseTo string) samltest.Response {
	urls := samlsp.TenantURLs(&url.URL{Scheme: "https", Host: "docs.example.com"}, tenant)
	return samltest.Response{Destination: urls.ACS.String(), Audience: urls.EntityID, InResponseTo: inResponseTo}
}

func (e *reloadEnv) postACS(tenant string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := publicRequest(http.MethodPost, samlsp.LoginPath+tenant, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.gw.PublicHandler().ServeHTTP(rec, req)
	return rec
}

// get requests path with cookies through the public handler.
func (e *reloadEnv) get(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := publicRequest(http.MethodGet, path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	e.gw.PublicHandler().ServeHTTP(rec, req)
	return rec
}

func (e *reloadEnv) reloads(result string) float64 {
	return testutil.ToFloat64(e.gw.metrics.reloads.WithLabelValues(result))
}

func TestReloadAddsAndRemovesTenants(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme", "globex"})
	globexSession := e.signIn("globex")
	if rec := e.get("/x", globexSession); rec.Body.String() != "upstream globex" {
		t.Fatalf("before reload: got %q", rec.Body)
	}
	e.writeConfig([]string{"acme", "initech"})
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := e.reloads("success"); got != 1 {
		t.Errorf("got %v successful reloads, want 1", got)
	}
	if rec := e.get(samlsp.LoginPath + "initech"); rec.Code != http.StatusFound {
		t.Errorf("new tenant: got %d, want its login to start", rec.Code)
	}
	if rec := e.get(samlsp.LoginPath + "globex"); rec.Code != http.StatusNotFound {
		t.Errorf("removed tenant: got %d, want 404", rec.Code)
	}
	if rec := e.get("/x", globexSession); rec.Code != http.StatusUnauthorized {
		t.Errorf("session of a removed tenant: got %d, want 401", rec.Code)
	}
	metrics := httptest.NewRecorder()
	e.gw.AdminHandler().ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if strings.Contains(metrics.Body.String(), `tenant="globex"`) {
		t.Error("metrics still have series for the removed tenant")
	}
	if !strings.Contains(metrics.Body.String(), `sso_gateway_tenant_ready{tenant="initech"} 1`) {
		t.Error("metrics lack the new tenant")
	}
}

// TestInvalidReloadKeepsServing: every problem of a broken config is
// logged, and the old configuration keeps serving.
func TestInvalidReloadKeepsServing(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"})
	session := e.signIn("acme")
	e.write("config.yaml", "public_url: ftp://nope\nupstream: /x\nbogus_key: 1\ntenants: []\n")
	if err := e.gw.ReloadFile(t.Context()); err == nil {
		t.Fatal("a broken config reloaded")
	}
	if got := e.reloads("failure"); got != 1 {
		t.Errorf("got %v failed reloads, want 1", got)
	}
	if got := testutil.ToFloat64(e.gw.metrics.lastOK); got != 0 {
		t.Errorf("config_last_reload_successful after a refused reload: %v, want 0", got)
	}
	for _, want := range []string{"bogus_key: unknown key", "public_url: must be an absolute http or https URL", "upstream: must be an absolute", "tenants: at least one tenant"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, e.logs)
		}
	}
	if rec := e.get("/x", session); rec.Body.String() != "upstream acme" {
		t.Errorf("after a refused reload: got %d %q, want the old config serving", rec.Code, rec.Body)
	}
	// Fixed, it reloads, and the gauge says so.
	e.writeConfig([]string{"acme"})
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.gw.metrics.lastOK); got != 1 {
		t.Errorf("config_last_reload_successful after a good reload: %v, want 1", got)
	}
}

// TestLoginInFlightAcrossReload: a login started before a reload (its
// tracked AuthnRequest is in the browser's cookie) completes after it,
// even when the reload rotates the session keys.
func TestLoginInFlightAcrossReload(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"}, keyA)
	start := e.get(samlsp.LoginPath + "acme?return_to=%2Fdeep%2Flink")
	loc, _ := url.Parse(start.Header().Get("Location"))
	relayState := loc.Query().Get("RelayState")
	var tracker *http.Cookie
	for _, c := range start.Result().Cookies() {
		if strings.Contains(c.Name, "ssogw_req_") {
			tracker = c
		}
	}
	if tracker == nil {
		t.Fatal("no tracking cookie")
	}
	authn := inflateAuthnRequestID(t, loc.Query().Get("SAMLRequest"))

	e.writeConfig([]string{"acme", "initech"}, keyB, keyA) // new key first, old still listed
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec := e.postACS("acme", e.idp.PostForm(t, e.response("acme", authn), relayState), tracker)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/deep/link" {
		t.Fatalf("login across reload: got %d %q, want 303 to /deep/link: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
}

// TestSessionKeyRotationByReload: rolling a key in first keeps sessions;
// retiring the old key ends them.
func TestSessionKeyRotationByReload(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"}, keyA)
	old := e.signIn("acme")
	e.writeConfig([]string{"acme"}, keyB, keyA)
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec := e.get("/x", old); rec.Code != http.StatusOK {
		t.Fatalf("old session after rolling in a new key: got %d, want 200", rec.Code)
	}
	fresh := e.signIn("acme")
	e.writeConfig([]string{"acme"}, keyB)
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rec := e.get("/x", old); rec.Code != http.StatusUnauthorized {
		t.Errorf("session of a retired key: got %d, want 401", rec.Code)
	}
	if rec := e.get("/x", fresh); rec.Code != http.StatusOK {
		t.Errorf("session of the new key: got %d, want 200", rec.Code)
	}
}

// TestWatchReloads: SIGHUP and a change of the config file both reload.
func TestWatchReloads(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- e.gw.Watch(ctx, hup) }()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	has := func(id string) func() bool {
		return func() bool { _, ok := e.gw.Provider().CurrentTenants().Get(id); return ok }
	}

	// fsnotify: rewrite the file (by rename, as editors do).
	time.Sleep(100 * time.Millisecond) // let the watcher start
	e.writeConfig([]string{"acme", "initech"})
	waitFor("the file change to reload", has("initech"))

	// SIGHUP reloads without any file event.
	before := e.reloads("success")
	hup <- os.Interrupt // any value: Watch does not look at which signal
	waitFor("SIGHUP to reload", func() bool { return e.reloads("success") > before })

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Watch: %v", err)
	}
}

// TestReloadKeepsURLTenantMetadata: an unchanged URL tenant keeps its
// metadata across a reload without fetching it again.
func TestReloadKeepsURLTenantMetadata(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"})
	count := 0
	var mu sync.Mutex
	mdServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		_, _ = w.Write(e.idp.MetadataXML())
	}))
	t.Cleanup(mdServer.Close)
	withURL := func(extra string) {
		e.writeConfig([]string{"acme"})
		data, _ := os.ReadFile(e.configPath())
		e.write("config.yaml", string(data)+"  - id: remote\n    idp_metadata_url: "+mdServer.URL+"/federationmetadata.xml\n"+extra)
	}
	withURL("")
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.gw.refresher.WaitFirst(t.Context())
	tenant, _ := e.gw.Provider().CurrentTenants().Get("remote")
	if !tenant.Ready() {
		t.Fatal("URL tenant not ready after its first fetch")
	}
	mu.Lock()
	before := count
	mu.Unlock()
	withURL("  - id: another\n    idp_metadata_file: idp.xml\n")
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	tenant, _ = e.gw.Provider().CurrentTenants().Get("remote")
	if !tenant.Ready() {
		t.Error("URL tenant lost its metadata in the reload")
	}
	mu.Lock()
	after := count
	mu.Unlock()
	if after != before {
		t.Errorf("reload fetched the unchanged URL again: %d fetches, want %d", after, before)
	}
	if rec := e.postACS("remote", e.idp.PostForm(t, e.response("remote", ""), "")); rec.Code != http.StatusSeeOther {
		t.Errorf("login at the URL tenant after reload: got %d: %s", rec.Code, rec.Body)
	}
}

func inflate(t *testing.T, s string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func inflateAuthnRequestID(t *testing.T, samlRequest string) string {
	t.Helper()
	xml := inflate(t, samlRequest)
	i := strings.Index(xml, ` ID="`)
	if i < 0 {
		t.Fatalf("no ID in %s", xml)
	}
	rest := xml[i+5:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestReloadRenewsTLSCertificate: the public listener serves the
// certificate of the configuration in force, so a renewed certificate is
// picked up by a reload without a restart.
func TestReloadRenewsTLSCertificate(t *testing.T) {
	t.Parallel()
	e := newReloadEnv(t, []string{"acme"})
	withTLS := func(serial string) *x509.Certificate {
		t.Helper()
		kp, err := selfsigned.New(selfsigned.Options{CommonName: "docs.example.com " + serial, Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		e.write("tls.crt", string(kp.CertPEM()))
		e.write("tls.key", string(kp.KeyPEM()))
		e.writeConfig([]string{"acme"})
		data, _ := os.ReadFile(e.configPath())
		e.write("config.yaml", string(data)+"tls: {cert_file: tls.crt, key_file: tls.key}\n")
		return kp.Cert
	}
	first := withTLS("one")
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := startServing(t, e.gw)

	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.public, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test reads the certificate the server presents
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if got := served(); !got.Equal(first) {
		t.Fatalf("got certificate %q, want %q", got.Subject, first.Subject)
	}
	second := withTLS("two")
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := served(); !got.Equal(second) {
		t.Fatalf("after reload: got certificate %q, want %q", got.Subject, second.Subject)
	}
}
