package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// isoEnv is a gateway whose tenants each trust their own IdP, through a
// metadata file of their own (<id>.xml), with a config the test rewrites.
type isoEnv struct {
	*reloadEnv
	idps map[string]*samltest.IDP
	// extra is YAML appended to a tenant's entry.
	extra map[string]string
	ids   []string
}

func newIsoEnv(t *testing.T, ids ...string) *isoEnv {
	t.Helper()
	return newIsoEnvWatching(t, nil, ids...)
}

// newIsoEnvWatching is newIsoEnv with connState watching the upstream's
// connections; set before the upstream starts, so without a race.
func newIsoEnvWatching(t *testing.T, connState func(net.Conn, http.ConnState), ids ...string) *isoEnv {
	t.Helper()
	e := &isoEnv{
		reloadEnv: &reloadEnv{t: t, dir: t.TempDir(), logs: &syncbuf.Buffer{}},
		idps:      map[string]*samltest.IDP{},
		extra:     map[string]string{},
		ids:       ids,
	}
	e.up = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "upstream ", r.Header.Get("X-Remote-Tenant"))
	}))
	e.up.Config.ConnState = connState
	e.up.Start()
	t.Cleanup(e.up.Close)
	testfiles.SPKeyPair(t, e.dir, "sp.crt", "sp.key")
	for _, id := range ids {
		e.idps[id] = samltest.NewIDP(t)
		e.writeMetadata(id)
	}
	return e
}

// writeMetadata writes the tenant's IdP's metadata as its file.
func (e *isoEnv) writeMetadata(id string) {
	e.t.Helper()
	_ = os.RemoveAll(filepath.Join(e.dir, id+".xml"))
	e.write(id+".xml", string(e.idps[id].MetadataXML()))
}

func (e *isoEnv) writeIsoConfig(ids ...string) {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "public_url: https://docs.example.com\nupstream: %s\nshutdown_delay: 0s\nsp: {cert_file: sp.crt, key_file: sp.key}\nsession:\n  keys:\n    - {hash_key: %s, block_key: %s}\ntenants:\n", e.up.URL, keyA, keyA)
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: %s\n    idp_metadata_file: %s.xml\n%s", id, id, e.extra[id])
	}
	e.write("config.yaml", b.String())
}

// build starts the gateway from the config file, as serve does: only a
// global problem stops it.
func (e *isoEnv) build() {
	e.t.Helper()
	cfg, err := config.Load(e.configPath(), noEnv)
	if err := config.Global(err); err != nil {
		e.t.Fatalf("global problem: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	e.gw, err = Build(e.t.Context(), cfg, Deps{Registry: prometheus.NewRegistry(), Logger: log, LookupEnv: noEnv})
	if err != nil {
		e.t.Fatalf("Build with a tenant problem: %v", err)
	}
}

// signInAt completes an IdP-initiated login at tenant with its own IdP,
// and returns the session cookie, or nil with the response.
func (e *isoEnv) signInAt(id string) (*http.Cookie, *httptest.ResponseRecorder) {
	e.t.Helper()
	urls := samlsp.TenantURLs(&url.URL{Scheme: "https", Host: "docs.example.com"}, id)
	form := e.idps[id].PostForm(e.t, samltest.Response{Destination: urls.ACS.String(), Audience: urls.EntityID}, "")
	rec := e.postACS(id, form)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" && c.Value != "" {
			return c, rec
		}
	}
	return nil, rec
}

// mustSignIn signs in at each tenant and uses the session.
func (e *isoEnv) mustSignIn(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		c, rec := e.signInAt(id)
		if c == nil {
			e.t.Fatalf("sign in at %s: got %d: %s", id, rec.Code, rec.Body)
		}
		if rec := e.get("/x", c); rec.Body.String() != "upstream "+id {
			e.t.Fatalf("session of %s: got %d %q", id, rec.Code, rec.Body)
		}
	}
}

func (e *isoEnv) admin(path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func (e *isoEnv) gauge(name, tenant string) string {
	e.t.Helper()
	body := e.admin("/metrics").Body.String()
	prefix := fmt.Sprintf("%s{tenant=%q} ", name, tenant)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return "absent"
}

// tenantBreak is one kind of tenant problem: how to cause it, and what is
// reported.
type tenantBreak struct {
	name string
	// brk breaks tenant "broken" in env e (files and e.extra).
	brk func(t *testing.T, e *isoEnv)
	// fix undoes it; nil writes the tenant's good metadata back and clears
	// its extra YAML.
	fix func(t *testing.T, e *isoEnv)
	// path and msg are the problem's key path and a fragment of it.
	path, msg string
	// keptOnReload is whether a reload that brings the problem keeps the
	// tenant's last good metadata.
	keptOnReload bool
}

func tenantBreaks() []tenantBreak {
	withCert := func(bits int, notBefore, notAfter time.Time) func(*testing.T, *isoEnv) {
		return func(t *testing.T, e *isoEnv) {
			idp := samltest.NewIDP(t)
			idp.Key, idp.Cert = samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", bits, notBefore, notAfter)
			e.write("broken.xml", string(idp.MetadataXML()))
		}
	}
	now := time.Now()
	return []tenantBreak{
		{name: "missing file", brk: func(t *testing.T, e *isoEnv) {
			if err := os.Remove(filepath.Join(e.dir, "broken.xml")); err != nil {
				t.Fatal(err)
			}
		}, path: "tenants[1].idp_metadata_file", msg: "broken.xml", keptOnReload: true},
		{name: "unreadable file", brk: func(t *testing.T, e *isoEnv) {
			// A folder: as root, file permissions would not stop the read.
			_ = os.Remove(filepath.Join(e.dir, "broken.xml"))
			if err := os.Mkdir(filepath.Join(e.dir, "broken.xml"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, path: "tenants[1].idp_metadata_file", msg: "read IdP metadata", keptOnReload: true},
		{name: "unparsable file", brk: func(t *testing.T, e *isoEnv) {
			e.write("broken.xml", "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\"><oops")
		}, path: "tenants[1].idp_metadata_file", msg: "unusable IdP metadata", keptOnReload: true},
		{name: "a certificate, not metadata", brk: func(t *testing.T, e *isoEnv) {
			key, cert := samltest.NewKeyPair(t, "cert", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
			samltest.WriteKeyPairPEM(t, e.dir, "pem", key, cert)
			data, err := os.ReadFile(filepath.Join(e.dir, "pem-cert.pem"))
			if err != nil {
				t.Fatal(err)
			}
			e.write("broken.xml", string(data))
		}, path: "tenants[1].idp_metadata_file", msg: "certificate", keptOnReload: true},
		{name: "expired certificate", brk: withCert(2048, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -17)),
			path: "tenants[1].idp_metadata_file", msg: "expired", keptOnReload: true},
		{name: "certificate not valid yet", brk: withCert(2048, now.AddDate(0, 0, 3), now.AddDate(3, 0, 0)),
			path: "tenants[1].idp_metadata_file", msg: "valid", keptOnReload: true},
		{name: "refused signing certificate", brk: withCert(1024, now.Add(-time.Hour), now.AddDate(1, 0, 0)),
			path: "tenants[1].idp_metadata_file", msg: "1024-bit key", keptOnReload: true},
		{name: "metadata of another directory", brk: func(t *testing.T, e *isoEnv) {
			e.extra["broken"] = "    entra_tenant_id: 99999999-9999-4999-8999-999999999999\n"
		}, path: "tenants[1].entra_tenant_id", msg: "belongs to another organisation",
			// The metadata it had is of the directory the new entra_tenant_id
			// contradicts: keeping it would keep a contradiction.
			keptOnReload: false},
		{name: "pinned metadata signer missing", brk: func(t *testing.T, e *isoEnv) {
			e.extra["broken"] = "    idp_metadata_signing_cert: nowhere.pem\n"
		}, path: "tenants[1].idp_metadata_signing_cert", msg: "does not exist", keptOnReload: true},
	}
}

// TestOneTenantsProblemStaysItsOwn starts and reloads a gateway with one
// broken tenant of three, for every kind of tenant problem: the gateway
// starts, the broken tenant is not ready and says why everywhere an
// operator looks, the others sign users in, and the broken one recovers
// when its file is fixed. A reload that breaks it applies everything else
// and keeps its last good metadata.
func TestOneTenantsProblemStaysItsOwn(t *testing.T) {
	t.Parallel()
	for _, c := range tenantBreaks() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newIsoEnv(t, "acme", "broken", "contoso")
			fix := func() {
				if c.fix != nil {
					c.fix(t, e)
					return
				}
				e.extra["broken"] = ""
				e.writeMetadata("broken")
			}

			// Start with the problem.
			c.brk(t, e)
			e.writeIsoConfig(e.ids...)
			e.build()
			e.mustSignIn("acme", "contoso")
			if got := e.gauge("sso_gateway_tenant_ready", "broken"); got != "0" {
				t.Errorf("tenant_ready{broken}: got %s, want 0", got)
			}
			if got := e.gauge("sso_gateway_tenant_problems", "broken"); got != "1" {
				t.Errorf("tenant_problems{broken}: got %s, want 1", got)
			}
			if got := e.gauge("sso_gateway_tenant_problems", "acme"); got != "0" {
				t.Errorf("tenant_problems{acme}: got %s, want 0", got)
			}
			ready := e.admin("/readyz")
			want := "tenant broken: not ready: " + c.path + ": "
			if ready.Code != http.StatusOK || !strings.Contains(ready.Body.String(), want) || !strings.Contains(ready.Body.String(), c.msg) ||
				!strings.Contains(ready.Body.String(), "2 of 3 tenants ready") {
				t.Errorf("/readyz: got %d %q, want 200 with %q…%q", ready.Code, ready.Body, want, c.msg)
			}
			tenants := e.admin("/tenants").Body.String()
			if !strings.Contains(tenants, "tenant broken (ready: NO)\n  PROBLEM:                "+c.path) {
				t.Errorf("/tenants lacks the problem:\n%s", tenants)
			}
			if !strings.Contains(e.logs.String(), "tenant problem") || !strings.Contains(e.logs.String(), c.path) {
				t.Errorf("log lacks the tenant problem:\n%s", e.logs)
			}
			// Its users are told that their administrator must act.
			req := publicRequest(http.MethodGet, samlsp.LoginPath+"broken", nil)
			req.Header.Set("Accept", "text/html")
			rec := httptest.NewRecorder()
			e.gw.PublicHandler().ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "administrator") ||
				strings.Contains(rec.Body.String(), "try again in a few minutes") || rec.Header().Get("Retry-After") != "" ||
				!strings.Contains(rec.Body.String(), `id="correlation-id"`) {
				t.Errorf("login at the broken tenant: got %d %q (Retry-After %q), want 503 naming the administrator, with the reference",
					rec.Code, rec.Body, rec.Header().Get("Retry-After"))
			}
			if strings.Contains(rec.Body.String(), c.msg) && c.msg != "expired" && c.msg != "valid" {
				t.Errorf("the page shows the internal problem: %s", rec.Body)
			}

			// Fixed, a reload makes it ready.
			fix()
			e.writeIsoConfig(e.ids...)
			if err := e.gw.ReloadFile(t.Context()); err != nil {
				t.Fatalf("reload with the fix: %v", err)
			}
			e.mustSignIn("acme", "broken", "contoso")
			if got := e.gauge("sso_gateway_tenant_problems", "broken"); got != "0" {
				t.Errorf("tenant_problems{broken} when fixed: got %s, want 0", got)
			}

			// Broken again by a reload that also adds a tenant: the rest
			// applies, and the tenant keeps its last good metadata if it
			// may.
			c.brk(t, e)
			e.ids = append(e.ids, "newco")
			e.idps["newco"] = samltest.NewIDP(t)
			e.writeMetadata("newco")
			e.writeIsoConfig(e.ids...)
			if err := e.gw.ReloadFile(t.Context()); err != nil {
				t.Fatalf("a reload with a tenant problem was refused: %v", err)
			}
			if got := e.reloads("success"); got != 2 {
				t.Errorf("successful reloads: got %v, want 2", got)
			}
			if got := testutil.ToFloat64(e.gw.metrics.lastOK); got != 1 {
				t.Errorf("config_last_reload_successful: got %v, want 1: the configuration applied", got)
			}
			e.mustSignIn("acme", "contoso", "newco")
			ready = e.admin("/readyz")
			if c.keptOnReload {
				e.mustSignIn("broken")
				want := "tenant broken: ready with its last good IdP metadata; problem: " + c.path
				if !strings.Contains(ready.Body.String(), want) {
					t.Errorf("/readyz: got %q, want %q", ready.Body, want)
				}
				if !strings.Contains(e.logs.String(), "keeps its last good IdP metadata") {
					t.Errorf("log does not say the tenant keeps its metadata:\n%s", e.logs)
				}
			} else {
				if c, _ := e.signInAt("broken"); c != nil {
					t.Error("a tenant whose old metadata contradicts its new configuration still signs users in")
				}
				if !strings.Contains(ready.Body.String(), "tenant broken: not ready: "+c.path) {
					t.Errorf("/readyz: got %q, want broken not ready", ready.Body)
				}
			}
			if got := e.gauge("sso_gateway_tenant_problems", "broken"); got != "1" {
				t.Errorf("tenant_problems{broken} after the reload: got %s, want 1", got)
			}

			// And fixed again.
			fix()
			e.writeIsoConfig(e.ids...)
			if err := e.gw.ReloadFile(t.Context()); err != nil {
				t.Fatal(err)
			}
			e.mustSignIn("broken")
			if body := e.admin("/readyz").Body.String(); !strings.Contains(body, "4 of 4 tenants ready") || strings.Contains(body, "problem") {
				t.Errorf("/readyz when fixed: %q", body)
			}
		})
	}
}

// TestKeptMetadataNotUnderNewSigners: a tenant whose pinned metadata
// signer changes does not keep metadata the old signer vouched for when
// its new file does not load.
func TestKeptMetadataNotUnderNewSigners(t *testing.T) {
	t.Parallel()
	e := newIsoEnv(t, "acme", "broken")
	e.writeIsoConfig(e.ids...)
	e.build()
	e.mustSignIn("broken")
	now := time.Now()
	key, cert := samltest.NewKeyPair(t, "metadata signer", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	samltest.WriteKeyPairPEM(t, e.dir, "signer", key, cert)
	e.extra["broken"] = "    idp_metadata_signing_cert: signer-cert.pem\n"
	e.writeIsoConfig(e.ids...)
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.signInAt("broken"); c != nil {
		t.Error("metadata the new pinned signer did not sign still signs users in")
	}
	body := e.admin("/readyz").Body.String()
	if !strings.Contains(body, "tenant broken: not ready: tenants[1].idp_metadata_file") {
		t.Errorf("/readyz: got %q, want broken not ready", body)
	}
	e.mustSignIn("acme")
}

// TestAllTenantsBrokenStaysReady: when every tenant has a problem of its
// own, every replica is the same, so /readyz stays 200: taking them all
// out of the load balancer would hide the page that tells users to call
// their administrator.
func TestAllTenantsBrokenStaysReady(t *testing.T) {
	t.Parallel()
	e := newIsoEnv(t, "only")
	e.write("only.xml", "not metadata")
	e.writeIsoConfig(e.ids...)
	e.build()
	if rec := e.admin("/readyz"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "0 of 1 tenants ready") {
		t.Errorf("/readyz: got %d %q, want 200", rec.Code, rec.Body)
	}
}

// TestReloadClosesIdleUpstreamConnections: the transport a reload
// replaces does not keep its idle upstream connections open.
func TestReloadClosesIdleUpstreamConnections(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{}, 16)
	e := newIsoEnvWatching(t, func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}, "acme")
	e.writeIsoConfig(e.ids...)
	e.build()
	session, _ := e.signInAt("acme")
	if rec := e.get("/x", session); rec.Code != http.StatusOK {
		t.Fatalf("got %d", rec.Code)
	}
	select {
	case <-closed:
		t.Fatal("the upstream connection closed before the reload")
	case <-time.After(100 * time.Millisecond):
	}
	if err := e.gw.ReloadFile(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle upstream connection of the replaced transport is still open")
	}
}

// TestURLMetadataOfAnotherDirectory: metadata fetched from a URL that is
// another Entra directory's than entra_tenant_id leaves that tenant not
// ready, saying why, and its users are told their administrator must act.
func TestURLMetadataOfAnotherDirectory(t *testing.T) {
	t.Parallel()
	e := newIsoEnv(t, "acme")
	other := samltest.NewIDP(t)
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write(other.MetadataXML())
	}))
	t.Cleanup(md.Close)
	e.writeIsoConfig(e.ids...)
	cfg := strings.Replace(readFile(t, e.configPath()), "tenants:\n",
		"tenants:\n  - id: remote\n    idp_metadata_url: "+md.URL+"/federationmetadata.xml\n    entra_tenant_id: 99999999-9999-4999-8999-999999999999\n", 1)
	e.write("config.yaml", cfg)
	e.build()
	if err := e.gw.Refresher().RefreshNow(t.Context(), "remote"); err == nil {
		t.Fatal("metadata of another directory was accepted")
	}
	e.mustSignIn("acme")
	ready := e.admin("/readyz").Body.String()
	if want := "tenant remote: not ready: tenants[0].idp_metadata_url: unusable IdP metadata: entra_tenant_id is 99999999-9999-4999-8999-999999999999, but the IdP metadata is directory " + other.TenantID; !strings.Contains(ready, want) {
		t.Errorf("/readyz: got %q, want %q", ready, want)
	}
	req := publicRequest(http.MethodGet, samlsp.LoginPath+"remote", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	e.gw.PublicHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "administrator") || rec.Header().Get("Retry-After") != "" {
		t.Errorf("login at the tenant: got %d %q, want 503 naming the administrator", rec.Code, rec.Body)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
