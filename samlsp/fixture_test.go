package samlsp

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// The fixture's tenants. acme and initech share one Entra directory (same
// IdP, same certificate), as two Customer_IDs of one company would; globex
// has its own directory, refuses IdP-initiated logins and restricts groups;
// legacy accepts SHA-1.
const (
	acme    = "acme"
	initech = "initech"
	globex  = "globex"
	legacy  = "legacy"
)

var allTenants = []string{acme, initech, globex, legacy}

const globexGroup = "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

type fixture struct {
	t         testing.TB
	clock     *clockwork.FakeClock
	public    *url.URL
	p         *Provider
	reg       *prometheus.Registry
	keys      []SessionKey
	idps      map[string]*samltest.IDP // by tenant
	sharedIDP *samltest.IDP
}

type fixtureOption func(*fixtureConfig)

type fixtureConfig struct {
	public string
	keys   []SessionKey
}

func withPublicURL(u string) fixtureOption { return func(c *fixtureConfig) { c.public = u } }
func withKeys(k ...SessionKey) fixtureOption {
	return func(c *fixtureConfig) { c.keys = k }
}

func newSessionKey(t testing.TB) SessionKey {
	t.Helper()
	return SessionKey{Hash: randomBytes(t, 32), Block: randomBytes(t, 32)}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// testKeys are made once per test binary: RSA key generation dominates
// the run time otherwise. Index 0-2 are IdP keys, 3 the SP's, 4 one nobody
// trusts.
var testKeys = sync.OnceValue(func() []*selfsigned.KeyPair {
	out := make([]*selfsigned.KeyPair, 5)
	for i := range out {
		kp, err := selfsigned.New(selfsigned.Options{CommonName: "Microsoft Azure Federated SSO Certificate"})
		if err != nil {
			panic(err)
		}
		out[i] = kp
	}
	return out
})

func newFixture(t testing.TB, opts ...fixtureOption) *fixture {
	t.Helper()
	cfg := fixtureConfig{public: "https://docs.example.com"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.keys == nil {
		cfg.keys = []SessionKey{newSessionKey(t)}
	}
	public, err := url.Parse(cfg.public)
	if err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(time.Now().Truncate(time.Second))
	reg := prometheus.NewRegistry()
	p, err := New(Options{
		Secure:          public.Scheme == "https",
		SessionKeys:     cfg.keys,
		SessionLifetime: 8 * time.Hour,
		Clock:           clock,
		Metrics:         NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, clock: clock, public: public, p: p, reg: reg, keys: cfg.keys, idps: map[string]*samltest.IDP{}}
	keys := testKeys()
	newIDP := func(kp *selfsigned.KeyPair, tenantID string) *samltest.IDP {
		return &samltest.IDP{TenantID: tenantID, Key: kp.Key, Cert: kp.Cert, Now: clock.Now}
	}
	f.sharedIDP = newIDP(keys[0], "11111111-1111-4111-8111-111111111111")
	f.idps[acme] = f.sharedIDP
	f.idps[initech] = f.sharedIDP
	f.idps[globex] = newIDP(keys[1], "22222222-2222-4222-8222-222222222222")
	f.idps[legacy] = newIDP(keys[2], "33333333-3333-4333-8333-333333333333")
	var tos []TenantOptions
	for _, id := range allTenants {
		tos = append(tos, tenantOptions(f, id))
	}
	ts, err := p.NewTenants(tos)
	if err != nil {
		t.Fatal(err)
	}
	p.SetTenants(ts)
	return f
}

// tenantOptions are tenant id's settings in the fixture.
func tenantOptions(f *fixture, id string) TenantOptions {
	f.t.Helper()
	md, err := metadata.Parse(f.idps[id].MetadataXML(), f.clock.Now(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	sp := testKeys()[3]
	to := TenantOptions{
		ID: id, URLs: TenantURLs(f.public, id), IDP: md,
		SPKey: sp.Key, SPCert: sp.Cert,
		NameIDFormat:      "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		AllowIDPInitiated: true,
		DefaultRelayState: "/",
		EmailDomains:      []string{id + ".example"},
	}
	switch id {
	case globex:
		to.AllowIDPInitiated = false
		to.AllowedGroups = []string{globexGroup}
		to.DefaultRelayState = "/home"
	case legacy:
		to.AllowSHA1 = true
	}
	return to
}

func (f *fixture) tenant(id string) *Tenant {
	t, ok := f.p.CurrentTenants().Get(id)
	if !ok {
		f.t.Fatalf("no tenant %q", id)
	}
	return t
}

// serve runs one request through the provider the way the gateway does.
func (f *fixture) serve(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	reqinfo.Correlate(f.p).ServeHTTP(rec, r)
	return rec
}

// login is an SP-initiated login that the browser has started.
type login struct {
	relayState string
	requestID  string
	tracker    *http.Cookie
	redirect   *url.URL
	authn      *crewsaml.AuthnRequest
	authnXML   []byte
}

// startLogin starts an SP-initiated login at tenant.
func (f *fixture) startLogin(tenant, returnTo string) *login {
	f.t.Helper()
	target := LoginPath + tenant
	if returnTo != "" {
		target += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	rec := f.serve(httptest.NewRequest(http.MethodGet, target, nil))
	if rec.Code != http.StatusFound {
		f.t.Fatalf("start login: got status %d, want 302: %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		f.t.Fatal(err)
	}
	l := &login{redirect: loc, relayState: loc.Query().Get("RelayState")}
	for _, ck := range rec.Result().Cookies() {
		if strings.Contains(ck.Name, trackerCookie) && ck.MaxAge > 0 {
			l.tracker = ck
		}
	}
	if l.tracker == nil {
		f.t.Fatalf("start login: no tracking cookie in %q", rec.Header().Values("Set-Cookie"))
	}
	l.authnXML = inflate(f.t, loc.Query().Get("SAMLRequest"))
	l.authn = &crewsaml.AuthnRequest{}
	if err := xml.Unmarshal(l.authnXML, l.authn); err != nil {
		f.t.Fatalf("AuthnRequest: %v", err)
	}
	l.requestID = l.authn.ID
	return l
}

func inflate(t testing.TB, s string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("SAMLRequest base64: %v", err)
	}
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("SAMLRequest inflate: %v", err)
	}
	return out
}

// response returns a response from tenant's IdP addressed to tenant, as
// Entra would send it, with changes applied.
func (f *fixture) response(tenant string, change func(*samltest.Response)) samltest.Response {
	t := f.tenant(tenant)
	r := samltest.Response{
		Destination: t.ACSURL.String(),
		Audience:    t.EntityID,
		NameID:      "b.simon@" + tenant + ".example",
	}
	if tenant == globex {
		r.Attributes = samltest.DefaultAttributes(f.idps[globex].TenantID, r.NameID, "B Simon", globexGroup)
	}
	if change != nil {
		change(&r)
	}
	return r
}

// postACS posts form to tenant's ACS with cookies.
func (f *fixture) postACS(tenant string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, LoginPath+tenant, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return f.serve(req)
}

// sessionCookie returns the session cookie rec set, or nil.
func sessionCookieOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, ck := range rec.Result().Cookies() {
		if strings.HasSuffix(ck.Name, sessionCookie) && ck.Value != "" {
			return ck
		}
	}
	return nil
}

// authenticate presents cookie on a new request.
func (f *fixture) authenticate(cookie *http.Cookie) (*Session, bool) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	return f.p.Authenticate(req)
}

func (f *fixture) logins(tenant, flow, result, reason string) float64 {
	return testutil.ToFloat64(f.p.metrics.logins.WithLabelValues(tenant, flow, result, reason))
}
