package proxy_test

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// These tests run the real service provider behind the proxy: a login at
// the ACS through the gateway, then requests with the session it set, so
// that what the upstream receives follows from what the IdP sent.

// Claims and groups of the tests.
const (
	claimDepartment = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/department"
	groupsLinkClaim = "http://schemas.microsoft.com/claims/groups.link"
	allowedGroup    = "7a1c2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)

// The tenants of samlGateway.
const (
	tenantDept    = "acme"    // X-Remote-Department from the department claim
	tenantPolicy  = "globex"  // allowed_groups
	tenantMinimal = "initech" // session_attributes [email], allowed_groups
	tenantBare    = "umbrella"
)

// samlGateway is a gateway with a real samlsp.Provider in front of the
// echo upstream.
type samlGateway struct {
	*gateway
	idp      *samltest.IDP
	samlReg  *prometheus.Registry
	tenants  *samlsp.Tenants
	provider *samlsp.Provider
	// options are the tenants' settings, for a test that reloads them.
	options []samlsp.TenantOptions
}

func newSAMLGateway(t *testing.T) *samlGateway {
	t.Helper()
	idp := samltest.NewIDP(t)
	now := time.Now()
	spKey, spCert := samltest.NewKeyPair(t, "sp", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	samlReg := prometheus.NewRegistry()
	p, err := samlsp.New(samlsp.Options{
		Secure:          true,
		SessionKeys:     []samlsp.SessionKey{{Hash: randomKey(t), Block: randomKey(t)}},
		SessionLifetime: time.Hour,
		Metrics:         samlsp.NewMetrics(samlReg),
	})
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Parse(idp.MetadataXML(), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	public := &url.URL{Scheme: "https", Host: "docs.example.com"}
	base := func(id string) samlsp.TenantOptions {
		return samlsp.TenantOptions{
			ID: id, URLs: samlsp.TenantURLs(public, id), IDP: md,
			SPKey: spKey, SPCert: spCert, AllowIDPInitiated: true,
		}
	}
	dept, policy, minimal, bare := base(tenantDept), base(tenantPolicy), base(tenantMinimal), base(tenantBare)
	dept.Headers = map[string]string{"X-Remote-Department": claimDepartment}
	policy.AllowedGroups = []string{allowedGroup}
	minimal.SessionAttributes = []string{samlsp.AttributeEmail}
	minimal.AllowedGroups = []string{allowedGroup}
	bare.SessionAttributes = []string{}
	ts, err := p.NewTenants([]samlsp.TenantOptions{dept, policy, minimal, bare})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTenants(ts)

	up := newEcho(t)
	upstream, err := url.Parse(up.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	px, err := proxy.New(proxy.Options{
		Upstream: upstream, PublicScheme: "https", Auth: p, Metrics: proxy.NewMetrics(reg),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(reqinfo.Correlate(withOwnPaths(p, px)))
	t.Cleanup(srv.Close)
	return &samlGateway{gateway: &gateway{srv: srv, reg: reg}, idp: idp, samlReg: samlReg, tenants: ts,
		provider: p, options: []samlsp.TenantOptions{dept, policy, minimal, bare}}
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// login posts the IdP's response for user, with these claims after the
// default ones, to tenant's ACS through the gateway.
func (g *samlGateway) login(t *testing.T, tenant string, groups []string, extra ...samltest.Attribute) (*http.Response, []byte) {
	t.Helper()
	tn, ok := g.tenants.Get(tenant)
	if !ok {
		t.Fatalf("no tenant %q", tenant)
	}
	const user = "b.simon@contoso.example"
	r := samltest.Response{
		Destination: tn.ACSURL.String(),
		Audience:    tn.EntityID,
		NameID:      user,
		Attributes:  append(samltest.DefaultAttributes(g.idp.TenantID, user, "B Simon", groups...), extra...),
	}
	form := g.idp.PostForm(t, r, "")
	return g.do(t, http.MethodPost, samlsp.LoginPath+tenant,
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}},
		strings.NewReader(form.Encode()))
}

// signIn logs in and returns the Cookie header a browser would send: every
// cookie set for path "/", and an upstream cookie of the application's own.
func (g *samlGateway) signIn(t *testing.T, tenant string, groups []string, extra ...samltest.Attribute) string {
	t.Helper()
	resp, body := g.login(t, tenant, groups, extra...)
	wantStatus(t, resp, body, http.StatusSeeOther)
	var parts []string
	for _, c := range resp.Cookies() {
		if c.Path == "/" && c.MaxAge >= 0 && c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if !slices.ContainsFunc(parts, func(p string) bool { return strings.HasPrefix(p, "__Host-ssogw_session=") }) {
		t.Fatalf("login at %s set no session cookie: %q", tenant, resp.Header.Values("Set-Cookie"))
	}
	return strings.Join(append(parts, "app=1"), "; ")
}

// upstreamSees sends one request with cookie and the extra header lines,
// byte for byte, and returns the headers the upstream received.
func (g *samlGateway) upstreamSees(t *testing.T, cookie string, headers ...string) http.Header {
	t.Helper()
	lines := append([]string{
		"GET /whoami HTTP/1.1",
		"Host: docs.example.com",
		"Cookie: " + cookie,
		"Connection: close",
	}, headers...)
	resp, body := g.raw(t, lines...)
	wantStatus(t, resp, body, http.StatusOK)
	return http.Header(decodeJSON[echoed](t, body).Header)
}

// only returns the values of every header that a backend would read as
// name (any case, '_' for '-').
func only(h http.Header, name string) []string {
	var out []string
	for k, v := range h {
		if normalize(k) == normalize(name) {
			out = append(out, v...)
		}
	}
	return out
}

var department = samltest.Attribute{Name: claimDepartment, Values: []string{"Legal", "Litigation Support"}}

// spoofDepartment are a client's attempts to set the tenant's own header.
var spoofDepartment = []string{
	"X-Remote-Department: Sales",
	"x-remote-department: Sales",
	"X-REMOTE-DEPARTMENT: Sales",
	"x_remote_department: Sales",
	"X_Remote_Department: Sales",
}

// TestCustomHeaderUpstream: a tenant's own header carries the claim's values
// from the session; what the client sent in any spelling never arrives.
func TestCustomHeaderUpstream(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	tests := []struct {
		name   string
		cookie string
		want   []string
	}{
		{"claim sent", g.signIn(t, tenantDept, nil, department), []string{"Legal,Litigation Support"}},
		{"claim not sent", g.signIn(t, tenantDept, nil), nil},
		{"tenant without the mapping", g.signIn(t, tenantPolicy, []string{allowedGroup}, department), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, spoof := range [][]string{nil, spoofDepartment} {
				h := g.upstreamSees(t, tt.cookie, spoof...)
				if got := only(h, "X-Remote-Department"); !slices.Equal(got, tt.want) {
					t.Errorf("with %d spoofed headers: upstream X-Remote-Department (any spelling): got %q, want %q", len(spoof), got, tt.want)
				}
				if got := h.Values("X-Remote-User"); !slices.Equal(got, []string{"b.simon@contoso.example"}) {
					t.Errorf("upstream X-Remote-User: got %q, want the user", got)
				}
				if got := h.Get("Cookie"); got != "app=1" {
					t.Errorf("upstream Cookie: got %q, want %q", got, "app=1")
				}
			}
		})
	}
}

// TestGroupsOverageUpstream: a session without groups because of Entra's
// overage says so to the upstream; other sessions never do, whatever the
// client sends.
func TestGroupsOverageUpstream(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	link := samltest.Attribute{Name: groupsLinkClaim, Values: []string{"https://graph.windows.net/x/users/y/getMemberObjects"}}
	spoof := []string{"X-Remote-Groups-Overage: false", "x_remote_groups_overage: true", "X-Remote-Groups: admins"}

	over := g.signIn(t, tenantDept, nil, link)
	for _, headers := range [][]string{nil, spoof} {
		h := g.upstreamSees(t, over, headers...)
		if got := only(h, "X-Remote-Groups-Overage"); !slices.Equal(got, []string{"true"}) {
			t.Errorf("overage session: upstream X-Remote-Groups-Overage: got %q, want [true]", got)
		}
		if got := only(h, "X-Remote-Groups"); !slices.Equal(got, []string{""}) {
			t.Errorf("overage session: upstream X-Remote-Groups: got %q, want one empty value", got)
		}
	}

	normal := g.signIn(t, tenantDept, []string{"g1", "g2"})
	for _, headers := range [][]string{nil, spoof} {
		h := g.upstreamSees(t, normal, headers...)
		if got := only(h, "X-Remote-Groups-Overage"); got != nil {
			t.Errorf("session with groups: upstream X-Remote-Groups-Overage: got %q, want it absent", got)
		}
		if got := only(h, "X-Remote-Groups"); !slices.Equal(got, []string{"g1,g2"}) {
			t.Errorf("session with groups: upstream X-Remote-Groups: got %q, want [g1,g2]", got)
		}
	}

	// A tenant that restricts groups cannot check an overage user: the
	// login is refused with a page that says why.
	resp, body := g.login(t, tenantPolicy, nil, link)
	wantStatus(t, resp, body, http.StatusForbidden)
	if !strings.Contains(string(body), "too many groups") {
		t.Errorf("overage at a tenant with allowed_groups: page %q does not explain the refusal", body)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "ssogw_session") && c.MaxAge >= 0 {
			t.Errorf("overage at a tenant with allowed_groups: got Set-Cookie %s", c.Name)
		}
	}
	if got := loginsCounted(t, g.samlReg, tenantPolicy, "failure", samlsp.ReasonGroupOverage); got != 1 {
		t.Errorf("logins of %s with reason %s: got %v, want 1", tenantPolicy, samlsp.ReasonGroupOverage, got)
	}
}

// loginsCounted is sso_gateway_logins_total for an IdP-initiated login.
func loginsCounted(t *testing.T, reg *prometheus.Registry, tenant, result, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant": tenant, "flow": "idp", "result": result, "reason": reason}
	for _, mf := range families {
		if mf.GetName() != "sso_gateway_logins_total" {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestSessionAttributesUpstream: what a tenant's sessions do not keep is
// empty upstream, while the group policy still applied at login.
func TestSessionAttributesUpstream(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	tests := []struct {
		name   string
		cookie string
		want   map[string]string
	}{
		{"email only", g.signIn(t, tenantMinimal, []string{"g1", allowedGroup}), map[string]string{
			"X-Remote-User": "b.simon@contoso.example", "X-Remote-Email": "b.simon@contoso.example",
			"X-Remote-Name": "", "X-Remote-Groups": "", "X-Remote-Tenant": tenantMinimal,
		}},
		{"none", g.signIn(t, tenantBare, []string{"g1"}), map[string]string{
			"X-Remote-User": "b.simon@contoso.example", "X-Remote-Email": "",
			"X-Remote-Name": "", "X-Remote-Groups": "", "X-Remote-Tenant": tenantBare,
		}},
		{"all by default", g.signIn(t, tenantPolicy, []string{"g1", allowedGroup}), map[string]string{
			"X-Remote-User": "b.simon@contoso.example", "X-Remote-Email": "b.simon@contoso.example",
			"X-Remote-Name": "B Simon", "X-Remote-Groups": "g1," + allowedGroup, "X-Remote-Tenant": tenantPolicy,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := g.upstreamSees(t, tt.cookie, "X-Remote-Name: Mallory", "x_remote_groups: admins", "X-Remote-Email: m@evil.example")
			for name, want := range tt.want {
				if got := only(h, name); !slices.Equal(got, []string{want}) {
					t.Errorf("upstream %s: got %q, want [%q]", name, got, want)
				}
			}
		})
	}

	resp, body := g.login(t, tenantMinimal, []string{"g1"})
	wantStatus(t, resp, body, http.StatusForbidden)
	if got := loginsCounted(t, g.samlReg, tenantMinimal, "failure", samlsp.ReasonGroupDenied); got != 1 {
		t.Errorf("refused logins of %s: got %v, want 1 (allowed_groups applies though groups are not kept)", tenantMinimal, got)
	}
}

// TestBigSessionUpstream: 150 groups travel from the IdP, through the
// split session cookie, to one X-Remote-Groups header; the upstream sees
// none of the gateway's cookies.
func TestBigSessionUpstream(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	var groups []string
	for range 150 {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		h := hex.EncodeToString(b)
		groups = append(groups, h[0:8]+"-"+h[8:12]+"-"+h[12:16]+"-"+h[16:20]+"-"+h[20:32])
	}
	cookie := g.signIn(t, tenantDept, groups)
	h := g.upstreamSees(t, cookie)
	if got := only(h, "X-Remote-Groups"); len(got) != 1 || got[0] != strings.Join(groups, ",") {
		t.Errorf("upstream X-Remote-Groups: got %q, want the 150 groups in order", got)
	}
	if got := h.Get("Cookie"); got != "app=1" {
		t.Errorf("upstream Cookie: got %q, want %q", got, "app=1")
	}
}

// TestUnauthenticatedLoginURL: the 401 of a script's request names the URL
// that signs the user in, chosen as for a navigation (the remembered
// organisation, else the organisation page), coming back to the page the
// script runs on: its same-origin Referer, else the request itself.
func TestUnauthenticatedLoginURL(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	var tenantCookie string
	resp, body := g.login(t, tenantDept, nil)
	wantStatus(t, resp, body, http.StatusSeeOther)
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-ssogw_tenant" {
			tenantCookie = c.Name + "=" + c.Value
		}
	}
	if tenantCookie == "" {
		t.Fatal("the login did not remember the organisation")
	}
	const page = "/documents/list?sort=name&q=a%20b"
	selectFor := func(returnTo string) string {
		return samlsp.SelectPath + "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	loginFor := func(returnTo string) string {
		return samlsp.LoginPath + tenantDept + "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	tests := []struct {
		name    string
		headers []string
		want    string
	}{
		{"no referer", nil, selectFor("/api/items?x=1")},
		{"same-origin referer", []string{"Referer: https://docs.example.com" + page}, selectFor(page)},
		{"same-origin referer, other case", []string{"Referer: https://DOCS.example.com" + page}, selectFor(page)},
		{"remembered organisation", []string{"Referer: https://docs.example.com" + page, "Cookie: " + tenantCookie}, loginFor(page)},
		{"cross-origin referer", []string{"Referer: https://evil.example" + page}, selectFor("/api/items?x=1")},
		{"referer over http", []string{"Referer: http://docs.example.com" + page}, selectFor("/api/items?x=1")},
		{"referer leaving the site", []string{"Referer: https://docs.example.com//evil.example/x"}, selectFor("/api/items?x=1")},
		{"relative referer", []string{"Referer: " + page}, selectFor("/api/items?x=1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := g.raw(t, append([]string{
				"GET /api/items?x=1 HTTP/1.1",
				"Host: docs.example.com",
				"Accept: application/json",
				"Connection: close",
			}, tt.headers...)...)
			wantStatus(t, resp, body, http.StatusUnauthorized)
			if got := decodeJSON[map[string]string](t, body)["login_url"]; got != tt.want {
				t.Errorf("login_url: got %q, want %q", got, tt.want)
			}
			challenge := `Cookie realm="sso-gateway", form-action="` + tt.want + `", cookie-name="__Host-ssogw_session"`
			if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", got, challenge)
			}
		})
	}
}
