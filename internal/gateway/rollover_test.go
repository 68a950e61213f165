package gateway

import (
	"bufio"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// rolloverIDP serves an IdP's App Federation Metadata Url: whatever the
// test last published, or an error while it says so.
type rolloverIDP struct {
	srv *httptest.Server

	mu     sync.Mutex
	doc    []byte
	status int // 0: 200
}

func newRolloverIDP(t *testing.T, doc []byte) *rolloverIDP {
	t.Helper()
	m := &rolloverIDP{doc: doc}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		m.mu.Lock()
		doc, status := m.doc, m.status
		m.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
		}
		_, _ = w.Write(doc)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *rolloverIDP) publish(doc []byte, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.doc, m.status = doc, status
}

type rolloverEnv struct {
	gw  *Gateway
	reg *prometheus.Registry
	idp *samltest.IDP
	md  *rolloverIDP
}

// newRolloverEnv builds a gateway from a config file whose one tenant,
// acme, reads its IdP metadata from idp_metadata_url, served from idp.
func newRolloverEnv(t *testing.T, idp *samltest.IDP) *rolloverEnv {
	t.Helper()
	md := newRolloverIDP(t, idp.MetadataXML())
	up := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(up.Close)
	dir := t.TempDir()
	testfiles.SPKeyPair(t, dir, "sp.crt", "sp.key")
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	testfiles.WriteAll(t, dir, map[string][]byte{"config.yaml": fmt.Appendf(nil, `public_url: https://docs.example.com
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
    idp_metadata_url: %s/federationmetadata/2007-06/federationmetadata.xml?appid=acme
    email_domains: [acme.example]
`, up.URL, key, key, md.srv.URL)})
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	gw, err := Build(t.Context(), cfg, Deps{Registry: reg, Version: "test", MetadataClient: md.srv.Client(), InitialFetchWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := &rolloverEnv{gw: gw, reg: reg, idp: idp, md: md}
	if n := e.certs(t); n != 1 {
		t.Fatalf("after Build: got %d IdP certificates, want 1", n)
	}
	return e
}

// login posts an IdP-initiated response signed with key, naming cert in
// its KeyInfo (nil: the IdP's current key and certificate), and reports
// whether it made a session.
func (e *rolloverEnv) login(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate) (bool, *httptest.ResponseRecorder) {
	t.Helper()
	tenant, ok := e.gw.Provider().CurrentTenants().Get("acme")
	if !ok {
		t.Fatal("no tenant acme")
	}
	r := samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID, SigningKey: key, SigningCert: cert}
	form := e.idp.PostForm(t, r, "")
	req := publicRequest(http.MethodPost, samlsp.LoginPath+"acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	e.gw.PublicHandler().ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" && c.Value != "" {
			return true, rec
		}
	}
	return false, rec
}

// mustLogin signs in n times with the given key (nil: the IdP's).
func (e *rolloverEnv) mustLogin(t *testing.T, what string, n int, key *rsa.PrivateKey, cert *x509.Certificate) {
	t.Helper()
	for i := range n {
		if ok, rec := e.login(t, key, cert); !ok {
			t.Fatalf("%s: login %d: got %d %q, want a session", what, i+1, rec.Code, rec.Body)
		}
	}
}

// refresh publishes the IdP's metadata and makes the gateway fetch it.
func (e *rolloverEnv) refresh(t *testing.T) {
	t.Helper()
	e.md.publish(e.idp.MetadataXML(), 0)
	if err := e.gw.Refresher().RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatalf("refresh: %v", err)
	}
}

// certs is how many signing certificates acme trusts now.
func (e *rolloverEnv) certs(t *testing.T) int {
	t.Helper()
	tenant, _ := e.gw.Provider().CurrentTenants().Get("acme")
	md := tenant.IDP()
	if md == nil {
		st, _ := e.gw.Refresher().Status("acme")
		t.Fatalf("acme has no IdP metadata: %s", st.LastError)
	}
	return len(md.SigningCerts)
}

// series returns the values of a metric family by its labels rendered as
// `k="v",...` in name order, as on /metrics.
func (e *rolloverEnv) series(t *testing.T, name string) map[string]float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// logins is sso_gateway_logins_total for acme's IdP-initiated logins by
// result and reason; failures is the sum of every failure series.
func (e *rolloverEnv) logins(t *testing.T) (success, failures float64, byReason map[string]float64) {
	t.Helper()
	byReason = map[string]float64{}
	for labels, v := range e.series(t, "sso_gateway_logins_total") {
		switch {
		case labels == `flow="idp",reason="none",result="success",tenant="acme"`:
			success = v
		case strings.Contains(labels, `result="failure"`):
			failures += v
			if v > 0 {
				byReason[labels] = v
			}
		}
	}
	return success, failures, byReason
}

// scrape reads one sample from /metrics on the admin handler; ok is false
// when the series is absent.
func (e *rolloverEnv) scrape(t *testing.T, series string) (float64, bool) {
	t.Helper()
	rec := get(t, e.gw.AdminHandler(), "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: got %d, want 200", rec.Code)
	}
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		value, found := strings.CutPrefix(sc.Text(), series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("/metrics: %s: %v", series, err)
		}
		return v, true
	}
	return 0, false
}

const certExpirySeries = `sso_gateway_idp_certificate_expiry_timestamp_seconds{tenant="acme"}`

func (e *rolloverEnv) wantCertExpiry(t *testing.T, what string, want time.Time) {
	t.Helper()
	got, ok := e.scrape(t, certExpirySeries)
	if !ok {
		t.Fatalf("%s: /metrics lacks %s", what, certExpirySeries)
	}
	if int64(got) != want.Unix() {
		t.Errorf("%s: %s: got %q, want %q (%s)", what, certExpirySeries,
			strconv.FormatInt(int64(got), 10), strconv.FormatInt(want.Unix(), 10), want.UTC().Format(time.RFC3339))
	}
}

func (e *rolloverEnv) wantReady(t *testing.T, what string) {
	t.Helper()
	rec := get(t, e.gw.AdminHandler(), "/readyz")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "1 of 1 tenants ready") {
		t.Errorf("%s: /readyz: got %d %q, want 200 with acme ready", what, rec.Code, rec.Body)
	}
	if v, ok := e.scrape(t, `sso_gateway_tenant_ready{tenant="acme"}`); !ok || v != 1 {
		t.Errorf("%s: sso_gateway_tenant_ready: got %v (present %v), want 1", what, v, ok)
	}
}

func (e *rolloverEnv) wantRefreshes(t *testing.T, want map[string]float64) {
	t.Helper()
	got := e.series(t, "sso_gateway_idp_metadata_refresh_total")
	if !maps.Equal(got, want) {
		t.Errorf("sso_gateway_idp_metadata_refresh_total: got %v, want %v", got, want)
	}
}

// rolloverKeys are an Entra app's signing certificates around a rollover:
// the active one, which expires in a month, and its successor, valid for
// three years.
func rolloverKeys(t *testing.T) (oldKey *rsa.PrivateKey, oldCert *x509.Certificate, newKey *rsa.PrivateKey, newCert *x509.Certificate) {
	t.Helper()
	now := time.Now()
	oldKey, oldCert = samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.AddDate(-3, 0, 1), now.AddDate(0, 1, 0))
	newKey, newCert = samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(3, 0, 0))
	return oldKey, oldCert, newKey, newCert
}

// TestCertificateRollover walks through an Entra signing certificate
// rollover as the tenant's admin does it, with the gateway reading the
// App Federation Metadata Url: no login fails on the way, and the old
// certificate is no longer trusted at the end.
func TestCertificateRollover(t *testing.T) {
	t.Parallel()
	oldKey, oldCert, newKey, newCert := rolloverKeys(t)
	idp := samltest.NewIDP(t)
	idp.Key, idp.Cert = oldKey, oldCert
	e := newRolloverEnv(t, idp)
	logins := 0

	// Step 1: the app signs with its only certificate.
	e.mustLogin(t, "step 1, old key", 3, nil, nil)
	logins += 3
	e.wantCertExpiry(t, "step 1", oldCert.NotAfter)

	// Step 2: the admin adds a new certificate. Entra lists it, inactive,
	// after the active one; the gateway trusts both from the next refresh.
	idp.ExtraCerts = []*x509.Certificate{newCert}
	e.refresh(t)
	if n := e.certs(t); n != 2 {
		t.Fatalf("step 2: got %d trusted certificates, want 2", n)
	}
	e.mustLogin(t, "step 2, old key", 3, nil, nil)
	e.mustLogin(t, "step 2, new key published but not active yet", 1, newKey, newCert)
	logins += 4
	e.wantCertExpiry(t, "step 2 (the old certificate still expires first)", oldCert.NotAfter)

	// Step 3: the admin makes the new certificate active. Entra signs with
	// it and keeps the old one listed. Responses signed just before the
	// switch are still on their way.
	e.mustLogin(t, "step 3, response signed before the switch, posted after", 1, oldKey, oldCert)
	idp.Key, idp.Cert, idp.ExtraCerts = newKey, newCert, []*x509.Certificate{oldCert}
	e.refresh(t)
	if n := e.certs(t); n != 2 {
		t.Fatalf("step 3: got %d trusted certificates, want 2", n)
	}
	e.mustLogin(t, "step 3, new key", 3, nil, nil)
	e.mustLogin(t, "step 3, old key", 1, oldKey, oldCert)
	logins += 5

	success, failures, byReason := e.logins(t)
	if failures != 0 {
		t.Errorf("steps 1-3: got %v failed logins (%v), want 0", failures, byReason)
	}
	if success != float64(logins) {
		t.Errorf("steps 1-3: got %v successful logins, want %d", success, logins)
	}

	// Step 4: the admin deletes the old certificate.
	idp.ExtraCerts = nil
	e.refresh(t)
	if n := e.certs(t); n != 1 {
		t.Fatalf("step 4: got %d trusted certificates, want 1", n)
	}
	e.mustLogin(t, "step 4, new key", 2, nil, nil)
	logins += 2
	e.wantCertExpiry(t, "step 4 (the old certificate is gone)", newCert.NotAfter)
	for _, c := range []struct {
		name string
		cert *x509.Certificate
	}{
		{"naming the old certificate", oldCert},
		{"naming the new certificate", newCert},
	} {
		ok, rec := e.login(t, oldKey, c.cert)
		if ok || rec.Code != http.StatusForbidden {
			t.Errorf("step 4, old key %s: got %d (session %v), want 403 and no session", c.name, rec.Code, ok)
		}
	}
	success, failures, byReason = e.logins(t)
	if success != float64(logins) || failures != 2 || byReason[`flow="idp",reason="signature",result="failure",tenant="acme"`] != 2 {
		t.Errorf("after step 4: got %v successes and failures %v, want %d successes and 2 signature failures", success, byReason, logins)
	}
	e.wantRefreshes(t, map[string]float64{`result="success",tenant="acme"`: 4})
	e.wantReady(t, "after step 4")
}

// TestRolloverSurvivesBrokenRefresh: the metadata URL breaks in the middle
// of a rollover (the new certificate is published, then the URL fails or
// serves something unusable, and meanwhile Entra switches keys). Logins
// keep working with the last good document, readiness stays up, and the
// refresh counter records the failure.
func TestRolloverSurvivesBrokenRefresh(t *testing.T) {
	t.Parallel()
	now := time.Now()
	_, expiredCert := samltest.NewKeyPair(t, "expired", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -1))
	tests := []struct {
		name   string
		broken func(idp *samltest.IDP) ([]byte, int)
		result string
		want   string
	}{
		{"HTTP 500", func(*samltest.IDP) ([]byte, int) { return []byte("AADSTS90033: A transient error"), 500 }, "fetch_error", "HTTP status 500"},
		{"HTTP 404", func(*samltest.IDP) ([]byte, int) { return nil, 404 }, "fetch_error", "HTTP status 404"},
		{"truncated XML", func(idp *samltest.IDP) ([]byte, int) {
			doc := idp.MetadataXML()
			return doc[:len(doc)/2], 0
		}, "invalid", "not SAML metadata"},
		{"a sign-in page", func(*samltest.IDP) ([]byte, int) {
			return []byte("<html><title>Sign in to your account</title></html>"), 0
		}, "invalid", "not SAML metadata"},
		{"only an expired certificate", func(idp *samltest.IDP) ([]byte, int) {
			broken := *idp
			broken.Cert, broken.ExtraCerts = expiredCert, nil
			return broken.MetadataXML(), 0
		}, "invalid", "no signing certificate is valid now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			oldKey, oldCert, newKey, newCert := rolloverKeys(t)
			idp := samltest.NewIDP(t)
			idp.Key, idp.Cert = oldKey, oldCert
			e := newRolloverEnv(t, idp)
			e.mustLogin(t, "before", 1, nil, nil)

			// The new certificate is published and fetched.
			idp.ExtraCerts = []*x509.Certificate{newCert}
			e.refresh(t)

			// Then the URL breaks.
			e.md.publish(tt.broken(idp))
			err := e.gw.Refresher().RefreshNow(t.Context(), "acme")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("broken refresh: got %v, want an error containing %q", err, tt.want)
			}
			if n := e.certs(t); n != 2 {
				t.Errorf("after the broken refresh: got %d trusted certificates, want the last good 2", n)
			}
			e.mustLogin(t, "broken metadata, old key", 2, nil, nil)
			// Entra switches keys while the URL is broken: the last good
			// document already trusts the new certificate.
			e.mustLogin(t, "broken metadata, new key", 2, newKey, newCert)
			e.wantReady(t, "broken metadata")
			e.wantCertExpiry(t, "broken metadata", oldCert.NotAfter)
			e.wantRefreshes(t, map[string]float64{
				`result="success",tenant="acme"`:           2,
				`result="` + tt.result + `",tenant="acme"`: 1,
			})
			if st, _ := e.gw.Refresher().Status("acme"); st.LastError != err.Error() {
				t.Errorf("Status.LastError: got %q, want %q", st.LastError, err)
			}

			// The URL recovers with the rollover done.
			idp.Key, idp.Cert, idp.ExtraCerts = newKey, newCert, nil
			e.refresh(t)
			e.mustLogin(t, "recovered, new key", 1, nil, nil)
			if ok, rec := e.login(t, oldKey, oldCert); ok {
				t.Errorf("recovered, old key: got %d with a session, want it refused", rec.Code)
			}
			e.wantCertExpiry(t, "recovered", newCert.NotAfter)
			success, failures, byReason := e.logins(t)
			if success != 6 || failures != 1 {
				t.Errorf("got %v successes and failures %v, want 6 and 1 (the old key after recovery)", success, byReason)
			}
			e.wantRefreshes(t, map[string]float64{
				`result="success",tenant="acme"`:           3,
				`result="` + tt.result + `",tenant="acme"`: 1,
			})
		})
	}
}
