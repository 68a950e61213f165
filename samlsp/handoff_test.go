package samlsp

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/testsaml"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// jar is a browser's cookies across hosts: host-only cookies stay with
// their host, path-scoped ones go only to their path, expired ones go.
type jar struct {
	f *fixture
	j *cookiejar.Jar
}

func (f *fixture) newJar() *jar {
	j, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &jar{f: f, j: j}
}

// do sends a request to rawURL (absolute) with the jar's cookies for it,
// and keeps the cookies the answer sets. form, if not nil, is POSTed.
func (b *jar) do(method, rawURL string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, rawURL, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	for _, c := range b.j.Cookies(req.URL) {
		req.AddCookie(c)
	}
	rec := b.f.serve(req)
	b.j.SetCookies(req.URL, rec.Result().Cookies())
	return rec
}

func (b *jar) get(rawURL string) *httptest.ResponseRecorder {
	return b.do(http.MethodGet, rawURL, nil)
}

// names returns the names of the cookies the jar sends to rawURL.
func (b *jar) names(rawURL string) []string {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.f.t.Fatal(err)
	}
	var out []string
	for _, c := range b.j.Cookies(u) {
		out = append(out, c.Name)
	}
	return out
}

// authenticate presents the jar's cookies for a page on host.
func (b *jar) authenticate(host string) (*Session, bool) {
	req := httptest.NewRequest(http.MethodGet, "https://"+host+"/docs", nil)
	for _, c := range b.j.Cookies(req.URL) {
		req.AddCookie(c)
	}
	return b.f.p.Authenticate(req)
}

// getWith sends GET rawURL with exactly these cookies.
func (f *fixture) getWith(rawURL string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return f.serve(req)
}

// hostLogin is an SP-initiated login in a browser, from its start to the
// ACS's answer to the IdP's response.
type hostLogin struct {
	start *httptest.ResponseRecorder // the answer to the first request
	hops  []*url.URL                 // the gateway URLs redirected to before the IdP
	authn *crewsaml.AuthnRequest
	acs   *httptest.ResponseRecorder
}

// handoff returns the URL the ACS sent the browser to.
func (l *hostLogin) handoff() string { return l.acs.Header().Get("Location") }

// loginFrom starts a login at start (an absolute gateway URL) in b,
// follows the gateway's redirects to the IdP, and posts tenant's IdP's
// answer, changed by change, to the tenant's ACS.
func (f *fixture) loginFrom(b *jar, tenant, start string, change func(*samltest.Response)) *hostLogin {
	f.t.Helper()
	l := &hostLogin{}
	target, err := url.Parse(start)
	if err != nil {
		f.t.Fatal(err)
	}
	var relayState string
	for i := 0; ; i++ {
		if i > 4 {
			f.t.Fatalf("login from %s: more than 4 redirects on the gateway: %v", start, l.hops)
		}
		rec := b.get(target.String())
		if i == 0 {
			l.start = rec
		}
		if rec.Code != http.StatusFound {
			f.t.Fatalf("login from %s, at %s: got status %d, want 302: %s", start, target, rec.Code, rec.Body)
		}
		loc, err := target.Parse(rec.Header().Get("Location"))
		if err != nil {
			f.t.Fatal(err)
		}
		if loc.Query().Has("SAMLRequest") {
			raw, err := testsaml.ParseRedirectRequest(loc)
			if err != nil {
				f.t.Fatalf("AuthnRequest: %v", err)
			}
			l.authn = &crewsaml.AuthnRequest{}
			if err := xml.Unmarshal(raw, l.authn); err != nil {
				f.t.Fatalf("AuthnRequest: %v", err)
			}
			relayState = loc.Query().Get("RelayState")
			break
		}
		l.hops = append(l.hops, loc)
		target = loc
	}
	form := f.idps[tenant].PostForm(f.t, f.response(tenant, func(r *samltest.Response) {
		r.InResponseTo = l.authn.ID
		if change != nil {
			change(r)
		}
	}), relayState)
	l.acs = b.do(http.MethodPost, f.tenant(tenant).ACSURL.String(), form)
	return l
}

// idpLoginAt posts an IdP-initiated response for tenant, with relayState,
// to its ACS in b and returns the answer.
func (f *fixture) idpLoginAt(b *jar, tenant, relayState string) *httptest.ResponseRecorder {
	f.t.Helper()
	return b.do(http.MethodPost, f.tenant(tenant).ACSURL.String(), f.idps[tenant].PostForm(f.t, f.response(tenant, nil), relayState))
}

func (f *fixture) handoffs(result string) float64 {
	return testutil.ToFloat64(f.p.metrics.handoffs.WithLabelValues(result))
}

// cookieIn returns the cookie named name that rec sets, or nil; prefix
// matches the start of the name instead.
func cookieIn(rec *httptest.ResponseRecorder, name string, prefix bool) *http.Cookie {
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == name || prefix && strings.HasPrefix(ck.Name, name) {
			return ck
		}
	}
	return nil
}

const bindPrefix = "__Host-" + handoffBindCookie

// TestSAMLURLsStayOnPublicURL: hosts do not move a tenant's SAML URLs;
// its SP metadata still names public_url.
func TestSAMLURLsStayOnPublicURL(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	for _, c := range []struct{ what, got, want string }{
		{"entity ID", f.tenant(acme).EntityID, "https://" + publicHost + LoginPath + acme},
		{"ACS", f.tenant(acme).ACSURL.String(), "https://" + publicHost + LoginPath + acme},
		{"SLO", f.tenant(acme).SLOURL.String(), "https://" + publicHost + SLOPath + acme},
		{"metadata ACS", f.tenant(acme).Metadata().SPSSODescriptors[0].AssertionConsumerServices[0].Location, "https://" + publicHost + LoginPath + acme},
	} {
		if c.got != c.want {
			t.Errorf("acme %s: got %q, want %q", c.what, c.got, c.want)
		}
	}
}

// TestHandoffSPInitiated: with the SAML URLs on public_url, a login that
// starts on a tenant host (or anywhere else) ends with a session on a
// tenant host and none on the public host; the IdP posts to the public
// host, which hands the login over.
func TestHandoffSPInitiated(t *testing.T) {
	t.Parallel()
	const returnTo = "/docs/a?b=c"
	tests := []struct {
		name, startHost, wantHost string
	}{
		{"first host", acmeHost, acmeHost},
		{"second host", acmeHost2, acmeHost2},
		{"public host", publicHost, acmeHost},
		{"another tenant's host", initechHost, acmeHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := hostsFixture(t)
			b := f.newJar()
			start := "https://" + tt.startHost + LoginPath + acme + "?return_to=%2Fdocs%2Fa%3Fb%3Dc&login_hint=b.simon%40acme.example"
			l := f.loginFrom(b, acme, start, nil)

			// The hops: to the tenant host, which binds the login to the
			// browser, then to the ACS host with host and ho.
			ho := l.hops[len(l.hops)-1]
			query := url.Values{"return_to": {returnTo}, "login_hint": {"b.simon@acme.example"}}.Encode()
			if len(l.hops) > 1 {
				if got, want := l.hops[0].String(), "https://"+acmeHost+LoginPath+acme+"?"+query; got != want {
					t.Errorf("first hop: got %q, want %q", got, want)
				}
			}
			q := ho.Query()
			if ho.Host != publicHost || ho.Path != LoginPath+acme || q.Get(paramHost) != tt.wantHost || !validTrackerKey(q.Get(paramHandoffKey)) ||
				q.Get("return_to") != returnTo || q.Get("login_hint") != "b.simon@acme.example" {
				t.Fatalf("hop to the ACS host: got %q, want %s with host=%s, a key, return_to and login_hint", ho, publicHost+LoginPath+acme, tt.wantHost)
			}
			key := q.Get(paramHandoffKey)
			if got := b.names("https://" + tt.wantHost + "/"); len(got) != 1 || got[0] != bindPrefix+key {
				t.Errorf("cookies on %s while at the IdP: got %q, want only %s", tt.wantHost, got, bindPrefix+key)
			}

			// The ACS: a handoff, not a session.
			if l.acs.Code != http.StatusSeeOther || !strings.HasPrefix(l.handoff(), "https://"+tt.wantHost+HandoffPath+"?t=") {
				t.Fatalf("ACS: got %d to %q, want 303 to the handoff on %s: %s", l.acs.Code, l.handoff(), tt.wantHost, l.acs.Body)
			}
			if ck := sessionCookieOf(l.acs); ck != nil {
				t.Errorf("the ACS set a session cookie on the public host: %s", ck.Name)
			}
			if ck := cookieIn(l.acs, "__Host-"+tenantCookie, false); ck != nil {
				t.Errorf("the ACS set the remembered tenant on the public host")
			}
			if ck := cookieIn(l.acs, "__Secure-"+trackerCookie, true); ck == nil || ck.MaxAge >= 0 {
				t.Errorf("tracking cookie not expired: %q", l.acs.Header().Values("Set-Cookie"))
			}
			if got := l.acs.Header().Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("ACS Referrer-Policy: got %q, want no-referrer", got)
			}
			if got := f.logins(acme, flowSP, "success", "none"); got != 1 {
				t.Errorf("logins counted: got %v, want 1", got)
			}

			// The tenant host completes it.
			rec := b.get(l.handoff())
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != returnTo {
				t.Fatalf("handoff: got %d to %q, want 303 to %q: %s", rec.Code, rec.Header().Get("Location"), returnTo, rec.Body)
			}
			if got := rec.Header().Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("handoff Referrer-Policy: got %q, want no-referrer", got)
			}
			if ck := cookieIn(rec, bindPrefix+key, false); ck == nil || ck.MaxAge >= 0 {
				t.Errorf("binding cookie not expired: %q", rec.Header().Values("Set-Cookie"))
			}
			if ck := cookieIn(rec, "__Host-"+tenantCookie, false); ck == nil || ck.MaxAge <= 0 {
				t.Errorf("tenant not remembered on %s", tt.wantHost)
			}
			s, ok := b.authenticate(tt.wantHost)
			if !ok || s.Tenant != acme || s.NameID != "b.simon@acme.example" {
				t.Fatalf("on %s: got session %+v (%v), want acme's b.simon", tt.wantHost, s, ok)
			}
			for _, h := range []string{publicHost, initechHost, acmeHost, acmeHost2} {
				if h == tt.wantHost {
					continue
				}
				if got := b.names("https://" + h + "/"); len(got) != 0 {
					t.Errorf("cookies for / on %s: got %q, want none", h, got)
				}
			}
			if got := f.handoffs(handoffSuccess); got != 1 {
				t.Errorf("handoffs counted: got %v, want 1", got)
			}
		})
	}
}

// TestHandoffIDPInitiated: an unsolicited response at the public host's ACS
// lands on the tenant's first host, at the IdP's Relay State.
func TestHandoffIDPInitiated(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		tenant, host, relayState, want string
	}{
		{acme, acmeHost, "/workspaces/1", "/workspaces/1"},
		{acme, acmeHost, "", "/"},
		{acme, acmeHost, "https://evil.example/", "/"},
		{initech, initechHost, "/x", "/x"},
	} {
		t.Run(c.tenant+" "+strings.ReplaceAll(c.relayState, "/", "_"), func(t *testing.T) {
			t.Parallel()
			f := hostsFixture(t)
			b := f.newJar()
			acs := f.idpLoginAt(b, c.tenant, c.relayState)
			if acs.Code != http.StatusSeeOther || !strings.HasPrefix(acs.Header().Get("Location"), "https://"+c.host+HandoffPath+"?t=") {
				t.Fatalf("ACS: got %d to %q, want 303 to the handoff on %s: %s", acs.Code, acs.Header().Get("Location"), c.host, acs.Body)
			}
			if ck := sessionCookieOf(acs); ck != nil {
				t.Errorf("the ACS set a session cookie on the public host")
			}
			rec := b.get(acs.Header().Get("Location"))
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != c.want {
				t.Fatalf("handoff: got %d to %q, want 303 to %q: %s", rec.Code, rec.Header().Get("Location"), c.want, rec.Body)
			}
			if s, ok := b.authenticate(c.host); !ok || s.Tenant != c.tenant {
				t.Errorf("on %s: got %+v (%v), want a session of %s", c.host, s, ok, c.tenant)
			}
			if _, ok := b.authenticate(publicHost); ok {
				t.Error("a session on the public host")
			}
			if got := f.logins(c.tenant, flowIDP, "success", "none"); got != 1 {
				t.Errorf("logins counted: got %v, want 1", got)
			}
		})
	}
}

// failingReplay is a replay store that cannot be reached.
type failingReplay struct{}

func (failingReplay) Consume(string, time.Time) error { return errors.New("connection refused") }

// TestHandoffRefusals: a handoff is refused, with the login error page and
// no session, unless its token is intact, fresh, for this host and a host
// the tenant has now, used once, and (SP-initiated) in the browser whose
// binding cookie started the login.
func TestHandoffRefusals(t *testing.T) {
	t.Parallel()
	type setup struct {
		f      *fixture
		b      *jar         // the browser that started the login
		l      *hostLogin   // its login, up to the ACS
		key    string       // its binding key
		bind   *http.Cookie // its binding cookie
		target string       // the handoff URL
	}
	withToken := func(s *setup, token string) string {
		u, _ := url.Parse(s.target)
		u.RawQuery = url.Values{paramToken: {token}}.Encode()
		return u.String()
	}
	onHost := func(s *setup, host string) string {
		u, _ := url.Parse(s.target)
		u.Host = host
		return u.String()
	}
	bindingFor := func(s *setup, b handoffBinding) *http.Cookie {
		name := bindPrefix + s.key
		v, err := s.f.p.currentSettings().codec.encode(name, b)
		if err != nil {
			s.f.t.Fatal(err)
		}
		return &http.Cookie{Name: name, Value: v}
	}
	tests := []struct {
		name string
		// run presents the handoff, changed, and returns the answer.
		run  func(t *testing.T, s *setup) *httptest.ResponseRecorder
		want string
		code int
	}{
		{"expired", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			s.f.clock.Advance(handoffTTL)
			return s.b.get(s.target)
		}, handoffExpired, http.StatusForbidden},
		{"for another host of the tenant", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.getWith(onHost(s, acmeHost2), s.bind)
		}, handoffWrongHost, http.StatusForbidden},
		{"for another tenant's host", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.getWith(onHost(s, initechHost), s.bind)
		}, handoffWrongHost, http.StatusForbidden},
		{"at the public host", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.getWith(onHost(s, publicHost), s.bind)
		}, handoffWrongHost, http.StatusForbidden},
		{"at the host with a port and in upper case", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			// Not a refusal: the same host, spelled otherwise.
			return s.f.getWith(onHost(s, "DOCS.ACME.EXAMPLE:443"), s.bind)
		}, handoffSuccess, http.StatusSeeOther},
		{"replayed", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			if rec := s.b.get(s.target); rec.Code != http.StatusSeeOther {
				t.Fatalf("first use: got %d, want 303", rec.Code)
			}
			// A copy of the URL and of the browser's cookies as they were.
			return s.f.getWith(s.target, s.bind)
		}, handoffReplayed, http.StatusForbidden},
		{"no binding cookie (login CSRF: an attacker's token in another browser)", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.newJar().get(s.target)
		}, handoffUnbound, http.StatusForbidden},
		{"the victim's own login's binding cookie", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			victim := s.f.newJar()
			victim.get("https://" + acmeHost + LoginPath + acme)
			if len(victim.names("https://"+acmeHost+"/")) != 1 {
				t.Fatal("the victim's login set no binding cookie")
			}
			return victim.get(s.target)
		}, handoffUnbound, http.StatusForbidden},
		{"binding cookie naming another host", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.getWith(s.target, bindingFor(s, handoffBinding{Tenant: acme, Host: acmeHost2, Issued: s.f.clock.Now().Unix()}))
		}, handoffUnbound, http.StatusForbidden},
		{"binding cookie naming another tenant", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.f.getWith(s.target, bindingFor(s, handoffBinding{Tenant: initech, Host: acmeHost, Issued: s.f.clock.Now().Unix()}))
		}, handoffUnbound, http.StatusForbidden},
		{"binding cookie past its lifetime", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			old := s.f.clock.Now().Add(-bindingLifetime(s.f.p.currentSettings())).Unix()
			return s.f.getWith(s.target, bindingFor(s, handoffBinding{Tenant: acme, Host: acmeHost, Issued: old}))
		}, handoffUnbound, http.StatusForbidden},
		{"another login's binding value under this key's name", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			other := s.f.newJar().get("https://" + acmeHost + LoginPath + acme)
			ck := cookieIn(other, bindPrefix, true)
			return s.f.getWith(s.target, &http.Cookie{Name: s.bind.Name, Value: ck.Value})
		}, handoffUnbound, http.StatusForbidden},
		{"tampered token", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			tok := []byte(mustQuery(t, s.target).Get(paramToken))
			tok[len(tok)/2] ^= 0x01
			return s.b.get(withToken(s, string(tok)))
		}, handoffInvalid, http.StatusBadRequest},
		{"truncated token", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			tok := mustQuery(t, s.target).Get(paramToken)
			return s.b.get(withToken(s, tok[:len(tok)-8]))
		}, handoffInvalid, http.StatusBadRequest},
		{"no token", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.b.get("https://" + acmeHost + HandoffPath)
		}, handoffInvalid, http.StatusBadRequest},
		{"the binding cookie's value as the token", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			return s.b.get(withToken(s, s.bind.Value))
		}, handoffInvalid, http.StatusBadRequest},
		{"a session cookie as the token", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			v, err := s.f.p.currentSettings().codec.encode("__Host-"+sessionCookie, &Session{Tenant: acme, NameID: "x", Expires: s.f.clock.Now().Add(time.Hour).Unix()})
			if err != nil {
				t.Fatal(err)
			}
			return s.b.get(withToken(s, v))
		}, handoffInvalid, http.StatusBadRequest},
		{"the host removed by a reload", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			s.f.withTenants(func(o *TenantOptions) {
				if o.ID == acme {
					o.Hosts = []string{acmeHost2}
				}
			})
			return s.b.get(s.target)
		}, handoffWrongHost, http.StatusForbidden},
		{"every host removed by a reload", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			s.f.withTenants(func(o *TenantOptions) {})
			return s.b.get(s.target)
		}, handoffWrongHost, http.StatusForbidden},
		{"the tenant removed by a reload", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			ts, err := s.f.p.NewTenants([]TenantOptions{tenantOptions(s.f, globex)})
			if err != nil {
				t.Fatal(err)
			}
			s.f.p.SetTenants(ts)
			return s.b.get(s.target)
		}, handoffWrongHost, http.StatusForbidden},
		{"replay store down", func(t *testing.T, s *setup) *httptest.ResponseRecorder {
			s.f.p.replay = failingReplay{}
			return s.b.get(s.target)
		}, handoffStore, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := hostsFixture(t)
			s := &setup{f: f, b: f.newJar()}
			s.l = f.loginFrom(s.b, acme, "https://"+acmeHost+LoginPath+acme+"?return_to=%2Fdocs", nil)
			s.bind = cookieIn(s.l.start, bindPrefix, true)
			s.key = strings.TrimPrefix(s.bind.Name, bindPrefix)
			s.target = s.l.handoff()

			rec := tt.run(t, s)
			if rec.Code != tt.code {
				t.Fatalf("got status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if got := f.handoffs(tt.want); got != 1 {
				t.Errorf("handoffs{result=%q}: got %v, want 1", tt.want, got)
			}
			if tt.want == handoffSuccess {
				return
			}
			if ck := sessionCookieOf(rec); ck != nil {
				t.Errorf("a refused handoff set the session cookie %s", ck.Name)
			}
			if got := f.handoffs(handoffSuccess); tt.name != "replayed" && got != 0 {
				t.Errorf("handoffs{result=success}: got %v, want 0", got)
			}
			// The retry link starts acme's login again, here; with acme
			// gone, this host's start page.
			retry := `id="retry" href="/auth/api/v1/saml/login/acme`
			if tt.name == "the tenant removed by a reload" {
				retry = `id="retry" href="/"`
			}
			if body := rec.Body.String(); !strings.Contains(body, retry) {
				t.Errorf("no %s on the error page: %s", retry, body)
			}
		})
	}
}

func mustQuery(t testing.TB, rawURL string) url.Values {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestHandoffIDPInitiatedRefusals: a token of an IdP-initiated login, which
// no binding cookie protects, is refused once used, and once the tenant no
// longer accepts IdP-initiated logins; an SP-initiated token without a
// binding key is refused.
func TestHandoffIDPInitiatedRefusals(t *testing.T) {
	t.Parallel()
	t.Run("replayed", func(t *testing.T) {
		t.Parallel()
		f := hostsFixture(t)
		target := f.idpLoginAt(f.newJar(), acme, "").Header().Get("Location")
		if rec := f.newJar().get(target); rec.Code != http.StatusSeeOther {
			t.Fatalf("first use: got %d, want 303", rec.Code)
		}
		rec := f.newJar().get(target)
		if rec.Code != http.StatusForbidden || f.handoffs(handoffReplayed) != 1 || sessionCookieOf(rec) != nil {
			t.Errorf("second use: got %d, %v replays counted, want 403 and 1", rec.Code, f.handoffs(handoffReplayed))
		}
	})
	t.Run("IdP-initiated disabled by a reload", func(t *testing.T) {
		t.Parallel()
		f := hostsFixture(t)
		target := f.idpLoginAt(f.newJar(), acme, "").Header().Get("Location")
		f.withTenants(func(o *TenantOptions) {
			if o.ID == acme {
				o.Hosts = []string{acmeHost, acmeHost2}
				o.AllowIDPInitiated = false
			}
		})
		rec := f.newJar().get(target)
		if rec.Code != http.StatusForbidden || f.handoffs(handoffUnbound) != 1 || sessionCookieOf(rec) != nil {
			t.Errorf("got %d, %v unbound counted, want 403 and 1", rec.Code, f.handoffs(handoffUnbound))
		}
	})
	t.Run("SP-initiated token without a key", func(t *testing.T) {
		// A login tracked before the tenant had hosts carries no
		// binding key; only IdP-initiated tokens may lack one.
		t.Parallel()
		f := hostsFixture(t)
		target, err := f.p.handoffURL(f.tenant(acme), &Session{Tenant: acme, NameID: "x", Expires: f.clock.Now().Add(time.Hour).Unix()},
			acmeHost, &trackedRequest{Tenant: acme}, "/")
		if err != nil {
			t.Fatal(err)
		}
		rec := f.newJar().get(target)
		if rec.Code != http.StatusForbidden || f.handoffs(handoffUnbound) != 1 || sessionCookieOf(rec) != nil {
			t.Errorf("got %d, %v unbound counted, want 403 and 1", rec.Code, f.handoffs(handoffUnbound))
		}
	})
}

// TestHandoffSessionEnded: a session the IdP ended (SessionNotOnOrAfter)
// between the ACS and the handoff is not set.
func TestHandoffSessionEnded(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	b := f.newJar()
	l := f.loginFrom(b, acme, "https://"+acmeHost+LoginPath+acme, func(r *samltest.Response) {
		r.SessionNotOnOrAfter = f.clock.Now().Add(30 * time.Second)
	})
	f.clock.Advance(30 * time.Second)
	rec := b.get(l.handoff())
	if rec.Code != http.StatusForbidden || f.handoffs(handoffExpired) != 1 || sessionCookieOf(rec) != nil {
		t.Errorf("got %d, %v expired counted, want 403 and 1", rec.Code, f.handoffs(handoffExpired))
	}
}

// TestHandoffLoginParameters: on the ACS host, the host and key a tenant
// host sends are attacker-controlled: only the tenant's own hosts and keys
// of the right shape are tracked; anything else is refused before the
// IdP is asked.
func TestHandoffLoginParameters(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	goodKey := newTrackerKey()
	for _, c := range []struct {
		name string
		q    url.Values
	}{
		{"foreign host", url.Values{paramHost: {"evil.example"}, paramHandoffKey: {goodKey}}},
		{"another tenant's host", url.Values{paramHost: {initechHost}, paramHandoffKey: {goodKey}}},
		{"the public host", url.Values{paramHost: {publicHost}, paramHandoffKey: {goodKey}}},
		{"host with a port", url.Values{paramHost: {acmeHost + ":443"}, paramHandoffKey: {goodKey}}},
		{"host in upper case", url.Values{paramHost: {strings.ToUpper(acmeHost)}, paramHandoffKey: {goodKey}}},
		{"host twice", url.Values{paramHost: {"evil.example", acmeHost}, paramHandoffKey: {goodKey}}},
		{"no key", url.Values{paramHost: {acmeHost}}},
		{"short key", url.Values{paramHost: {acmeHost}, paramHandoffKey: {"abc"}}},
		{"key with a dot", url.Values{paramHost: {acmeHost}, paramHandoffKey: {goodKey[:21] + "."}}},
		{"key with a semicolon", url.Values{paramHost: {acmeHost}, paramHandoffKey: {goodKey[:21] + ";"}}},
		{"key without host", url.Values{paramHandoffKey: {goodKey}}},
		{"empty host", url.Values{paramHost: {""}, paramHandoffKey: {goodKey}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rec := f.getWith("https://" + publicHost + LoginPath + acme + "?" + c.q.Encode())
			if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
				t.Fatalf("got %d to %q, want 400: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			if ck := cookieIn(rec, "__Secure-"+trackerCookie, true); ck != nil {
				t.Errorf("a tracking cookie was set: %s", ck.Name)
			}
			if !strings.Contains(rec.Body.String(), `id="retry" href="/auth/api/v1/saml/login/acme"`) {
				t.Errorf("no retry link: %s", rec.Body)
			}
		})
	}
	t.Run("the tenant's host and a key", func(t *testing.T) {
		t.Parallel()
		rec := f.getWith("https://" + publicHost + LoginPath + acme + "?" + url.Values{paramHost: {acmeHost2}, paramHandoffKey: {goodKey}}.Encode())
		if rec.Code != http.StatusFound {
			t.Fatalf("got %d, want 302 to the IdP: %s", rec.Code, rec.Body)
		}
		ck := cookieIn(rec, "__Secure-"+trackerCookie, true)
		if ck == nil {
			t.Fatal("no tracking cookie")
		}
		var tr trackedRequest
		if err := f.p.currentSettings().codec.decode(ck.Name, ck.Value, &tr); err != nil {
			t.Fatal(err)
		}
		if tr.Host != acmeHost2 || tr.Handoff != goodKey {
			t.Errorf("tracked host %q key %q, want %q %q", tr.Host, tr.Handoff, acmeHost2, goodKey)
		}
	})
}

// TestHandoffBindingCookies: the binding cookie is host-only, HttpOnly,
// Secure, Lax and lasts the login; abandoned ones do not pile up.
func TestHandoffBindingCookies(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	b := f.newJar()
	rec := b.get("https://" + acmeHost + LoginPath + acme)
	ck := cookieIn(rec, bindPrefix, true)
	if ck == nil {
		t.Fatalf("no binding cookie: %q", rec.Header().Values("Set-Cookie"))
	}
	want := int((DefaultLoginTimeout + handoffTTL) / time.Second)
	if ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.MaxAge != want {
		t.Errorf("got %+v, want Path=/, no Domain, HttpOnly, Secure, SameSite=Lax, Max-Age %d", ck, want)
	}
	for range 2 * maxTrackers {
		f.clock.Advance(time.Second)
		b.get("https://" + acmeHost + LoginPath + acme)
	}
	if got := len(b.names("https://" + acmeHost + "/")); got != maxTrackers {
		t.Errorf("binding cookies after %d logins: got %d, want %d", 2*maxTrackers+1, got, maxTrackers)
	}

	plain := newHostsFixtureHTTP(t)
	rec = plain.getWith("http://" + acmeHost + ":8080" + LoginPath + acme)
	ck = cookieIn(rec, CookiePrefix+"ho_", true)
	if ck == nil || ck.Secure || ck.SameSite != http.SameSiteLaxMode {
		t.Errorf("on http: got %+v, want ssogw_ho_ without Secure, SameSite=Lax", ck)
	}
	if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:8080"+LoginPath+acme+"?") {
		t.Errorf("on http: got Location %q, want the ACS host with its port", loc)
	}
}

// newHostsFixtureHTTP is hostsFixture on http://127.0.0.1:8080.
func newHostsFixtureHTTP(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, withPublicURL("http://127.0.0.1:8080"))
	f.withTenants(func(o *TenantOptions) {
		if o.ID == acme {
			o.Hosts = []string{acmeHost}
		}
	})
	return f
}

// TestHandoffOnHTTPKeepsThePort: the handoff URL keeps the port of the
// SAML URLs, since one listener serves every host.
func TestHandoffOnHTTPKeepsThePort(t *testing.T) {
	t.Parallel()
	f := newHostsFixtureHTTP(t)
	acs := f.idpLoginAt(f.newJar(), acme, "")
	if loc := acs.Header().Get("Location"); !strings.HasPrefix(loc, "http://"+acmeHost+":8080"+HandoffPath+"?t=") {
		t.Errorf("got Location %q, want the handoff on %s:8080", loc, acmeHost)
	}
}

// TestSAMLURLsOnHost: with saml_urls_on_host, a login on the first host
// starts and ends there, with no handoff, as before; one on another host
// of the tenant is handed to it from the first.
func TestSAMLURLsOnHost(t *testing.T) {
	t.Parallel()
	t.Run("first host", func(t *testing.T) {
		t.Parallel()
		f := hostsFixtureOnHost(t)
		b := f.newJar()
		l := f.loginFrom(b, acme, "https://"+acmeHost+LoginPath+acme+"?return_to=%2Fdocs", nil)
		if len(l.hops) != 0 || cookieIn(l.start, bindPrefix, true) != nil {
			t.Errorf("got hops %v and a binding cookie, want straight to the IdP", l.hops)
		}
		if l.acs.Code != http.StatusSeeOther || l.handoff() != "/docs" || sessionCookieOf(l.acs) == nil {
			t.Fatalf("ACS: got %d to %q, want 303 to /docs with a session", l.acs.Code, l.handoff())
		}
		if s, ok := b.authenticate(acmeHost); !ok || s.Tenant != acme {
			t.Errorf("got %+v (%v), want acme's session on %s", s, ok, acmeHost)
		}
		for _, r := range HandoffResults() {
			if got := f.handoffs(r); got != 0 {
				t.Errorf("handoffs{result=%q}: got %v, want 0", r, got)
			}
		}
	})
	t.Run("second host", func(t *testing.T) {
		t.Parallel()
		f := hostsFixtureOnHost(t)
		b := f.newJar()
		l := f.loginFrom(b, acme, "https://"+acmeHost2+LoginPath+acme+"?return_to=%2Fdocs", nil)
		if len(l.hops) != 1 || l.hops[0].Host != acmeHost || l.hops[0].Query().Get(paramHost) != acmeHost2 {
			t.Fatalf("got hops %v, want one to %s with host=%s", l.hops, acmeHost, acmeHost2)
		}
		if !strings.HasPrefix(l.handoff(), "https://"+acmeHost2+HandoffPath+"?t=") {
			t.Fatalf("ACS: got %d to %q, want the handoff on %s", l.acs.Code, l.handoff(), acmeHost2)
		}
		if rec := b.get(l.handoff()); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/docs" {
			t.Fatalf("handoff: got %d to %q, want 303 to /docs: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
		}
		if s, ok := b.authenticate(acmeHost2); !ok || s.Tenant != acme {
			t.Errorf("got %+v (%v), want acme's session on %s", s, ok, acmeHost2)
		}
	})
	t.Run("IdP-initiated", func(t *testing.T) {
		t.Parallel()
		f := hostsFixtureOnHost(t)
		acs := f.idpLoginAt(f.newJar(), acme, "/x")
		if acs.Code != http.StatusSeeOther || acs.Header().Get("Location") != "/x" || sessionCookieOf(acs) == nil {
			t.Errorf("got %d to %q, want 303 to /x with a session", acs.Code, acs.Header().Get("Location"))
		}
	})
}

// TestHandoffPathIsOwn: the handoff is one of the gateway's own paths
// (never proxied, and under the login limits), answering GET only.
func TestHandoffPathIsOwn(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	for _, target := range []string{HandoffPath, HandoffPath + "?t=x", "/auth/api/v1/%73aml/handoff"} {
		if !OwnPath(httptest.NewRequest(http.MethodGet, target, nil)) {
			t.Errorf("OwnPath(%q) = false", target)
		}
	}
	for _, m := range []string{http.MethodHead, http.MethodPost} {
		req := httptest.NewRequest(m, "https://"+acmeHost+HandoffPath+"?t=x", nil)
		if rec := f.serve(req); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
			t.Errorf("%s: got %d Allow %q, want 405 Allow GET", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

// TestHandoffLogout: signing out on a tenant host whose SLO URL is on
// public_url ends the session there, hands the logout to the public host
// (where the LogoutRequest is tracked and its answer arrives) and ends on
// the signed-out page of the tenant host. A session of another tenant on
// the public host is left alone.
func TestHandoffLogout(t *testing.T) {
	t.Parallel()
	f := hostsFixture(t)
	b := f.newJar()
	l := f.loginFrom(b, acme, "https://"+acmeHost2+LoginPath+acme, func(r *samltest.Response) {
		r.NameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
		r.SessionIndex = "_idp-session-acme"
	})
	b.get(l.handoff())
	// Another tenant's session on the public host, in the same browser.
	g := f.loginFrom(b, globex, "https://"+publicHost+LoginPath+globex, nil)
	if sessionCookieOf(g.acs) == nil {
		t.Fatalf("globex login on the public host: %d %s", g.acs.Code, g.acs.Body)
	}

	rec := b.get("https://" + acmeHost2 + LogoutPath)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || rec.Code != http.StatusFound || loc.Host != publicHost || loc.Path != LogoutPath || !loc.Query().Has(paramToken) {
		t.Fatalf("logout on %s: got %d to %q, want 302 to %s on %s with a token", acmeHost2, rec.Code, loc, LogoutPath, publicHost)
	}
	if !clearsSession(rec) {
		t.Errorf("session not cleared on %s: %q", acmeHost2, rec.Header().Values("Set-Cookie"))
	}
	if _, ok := b.authenticate(acmeHost2); ok {
		t.Error("still signed in on the tenant host")
	}

	rec = b.get(loc.String())
	if rec.Code != http.StatusFound {
		t.Fatalf("handed-over logout: got %d, want 302 to the IdP: %s", rec.Code, rec.Body)
	}
	idpURL, _ := url.Parse(rec.Header().Get("Location"))
	raw, err := testsaml.ParseRedirectRequest(idpURL)
	if err != nil {
		t.Fatal(err)
	}
	var req crewsaml.LogoutRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	if req.NameID == nil || req.NameID.Value != "b.simon@acme.example" || req.NameID.Format != "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" ||
		req.SessionIndex == nil || req.SessionIndex.Value != "_idp-session-acme" {
		t.Errorf("LogoutRequest: got NameID %+v SessionIndex %+v, want acme's b.simon, persistent, _idp-session-acme", req.NameID, req.SessionIndex)
	}
	if clearsSession(rec) {
		t.Error("the handed-over logout cleared the public host's session")
	}

	answer := f.idps[acme].LogoutResponseURL(t, samltest.LogoutResponse{
		Destination: f.tenant(acme).SLOURL.String(), InResponseTo: req.ID, RelayState: idpURL.Query().Get("RelayState"),
	})
	rec = b.get(answer.String())
	if want := "https://" + acmeHost2 + LogoutPath + "?" + sloDoneParam + "="; rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), want) {
		t.Fatalf("LogoutResponse: got %d to %q, want 303 to %q...: %s", rec.Code, rec.Header().Get("Location"), want, rec.Body)
	}
	if got := f.logoutCount(acme, flowSP, "success"); got != 1 {
		t.Errorf("sp logout successes: got %v, want 1", got)
	}
	page := b.get(rec.Header().Get("Location"))
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "You have been signed out") {
		t.Errorf("signed-out page on %s: got %d: %s", acmeHost2, page.Code, page.Body)
	}
	// The IdP said it signed the user out: the page on the tenant host
	// does not ask them to sign out of Microsoft.
	checkSignedOutAtIDP(t, page, true)
	if s, ok := b.authenticate(publicHost); !ok || s.Tenant != globex {
		t.Errorf("the public host's globex session: got %+v (%v), want it kept", s, ok)
	}
}

// TestHandedLogoutRefusals: a handed-over logout whose token is not valid,
// is stale, or names a host the tenant no longer has sends no
// LogoutRequest; the user still lands on a signed-out page.
func TestHandedLogoutRefusals(t *testing.T) {
	t.Parallel()
	start := func(t *testing.T) (*fixture, string) {
		f := hostsFixture(t)
		b := f.newJar()
		b.get(f.loginFrom(b, acme, "https://"+acmeHost+LoginPath+acme, nil).handoff())
		rec := b.get("https://" + acmeHost + LogoutPath)
		if rec.Code != http.StatusFound {
			t.Fatalf("logout: got %d, want 302", rec.Code)
		}
		return f, rec.Header().Get("Location")
	}
	t.Run("tampered", func(t *testing.T) {
		t.Parallel()
		f, target := start(t)
		q := mustQuery(t, target)
		tok := []byte(q.Get(paramToken))
		tok[10] ^= 1
		rec := f.getWith("https://" + publicHost + LogoutPath + "?" + url.Values{paramToken: {string(tok)}}.Encode())
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You have been signed out") {
			t.Errorf("got %d, want the signed-out page: %s", rec.Code, rec.Body)
		}
	})
	t.Run("stale", func(t *testing.T) {
		t.Parallel()
		f, target := start(t)
		f.clock.Advance(handoffTTL)
		rec := f.getWith(target)
		if want := "https://" + acmeHost + LogoutPath; rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("got %d to %q, want 303 to %q", rec.Code, rec.Header().Get("Location"), want)
		}
		if got := f.logoutCount(acme, flowSP, "local"); got != 1 {
			t.Errorf("local sp logouts: got %v, want 1", got)
		}
	})
	t.Run("host removed", func(t *testing.T) {
		t.Parallel()
		f, target := start(t)
		f.withTenants(func(o *TenantOptions) {
			if o.ID == acme {
				o.Hosts = []string{acmeHost2}
			}
		})
		rec := f.getWith(target)
		if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" {
			t.Errorf("got %d to %q, want the signed-out page here", rec.Code, rec.Header().Get("Location"))
		}
	})
	t.Run("on a tenant host", func(t *testing.T) {
		t.Parallel()
		f, target := start(t)
		u, _ := url.Parse(target)
		u.Host = acmeHost
		rec := f.getWith(u.String())
		if want := "https://" + acmeHost + LogoutPath; rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("got %d to %q, want 303 to %q, no LogoutRequest", rec.Code, rec.Header().Get("Location"), want)
		}
	})
	t.Run("IdP without single logout", func(t *testing.T) {
		t.Parallel()
		f := hostsFixture(t)
		f.withoutIDPSLO(acme)
		f.withTenants(func(o *TenantOptions) {
			if o.ID == acme {
				o.Hosts = []string{acmeHost}
			}
		})
		b := f.newJar()
		b.get(f.loginFrom(b, acme, "https://"+acmeHost+LoginPath+acme, nil).handoff())
		rec := b.get("https://" + acmeHost + LogoutPath)
		if rec.Code != http.StatusOK || !clearsSession(rec) || f.logoutCount(acme, flowSP, "local") != 1 {
			t.Errorf("got %d, want the signed-out page on the tenant host at once, counted local", rec.Code)
		}
	})
}

// TestIDPInitiatedLogoutOnTenantHosts: an IdP-initiated logout at the SLO
// URL on public_url passes through every host of the tenant, each of which
// ends its session, before the IdP is answered; one that does not validate
// ends the sessions too, on the signed-out page. A relay token is followed
// only while it is intact, fresh and for the tenant's hosts.
func TestIDPInitiatedLogoutOnTenantHosts(t *testing.T) {
	t.Parallel()
	signedIn := func(t *testing.T) (*fixture, *jar) {
		f := hostsFixture(t)
		b := f.newJar()
		for _, h := range []string{acmeHost, acmeHost2} {
			b.get(f.loginFrom(b, acme, "https://"+h+LoginPath+acme, nil).handoff())
			if _, ok := b.authenticate(h); !ok {
				t.Fatalf("not signed in on %s", h)
			}
		}
		return f, b
	}
	// follow follows the gateway's redirects from rawURL until one leaves
	// the gateway (or a page is shown), and returns the hosts passed and
	// the last answer.
	follow := func(t *testing.T, b *jar, rawURL string) ([]string, *httptest.ResponseRecorder, *url.URL) {
		var hosts []string
		target, _ := url.Parse(rawURL)
		for range 5 {
			rec := b.get(target.String())
			if rec.Code != http.StatusFound {
				return hosts, rec, nil
			}
			loc, err := target.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if loc.Path != LogoutPath {
				return hosts, rec, loc
			}
			hosts = append(hosts, loc.Host)
			target = loc
		}
		t.Fatalf("more than 5 redirects: %v", hosts)
		return nil, nil, nil
	}

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		f, b := signedIn(t)
		u, lr := f.idpLogoutRequest(acme, nil)
		hosts, _, final := follow(t, b, u.String())
		if strings.Join(hosts, " ") != acmeHost+" "+acmeHost2 {
			t.Errorf("passed through %q, want %s then %s", hosts, acmeHost, acmeHost2)
		}
		if final == nil {
			t.Fatal("the logout did not end at the IdP")
		}
		raw, err := testsaml.ParseRedirectResponse(final)
		if err != nil {
			t.Fatalf("LogoutResponse: %v", err)
		}
		var resp crewsaml.LogoutResponse
		if err := xml.Unmarshal(raw, &resp); err != nil {
			t.Fatal(err)
		}
		if got := final.Scheme + "://" + final.Host + final.Path; got != f.tenant(acme).IDP().SLOURL || resp.InResponseTo != lr.ID {
			t.Errorf("got a LogoutResponse to %q in response to %q, want %q and %q", got, resp.InResponseTo, f.tenant(acme).IDP().SLOURL, lr.ID)
		}
		for _, h := range []string{acmeHost, acmeHost2} {
			if _, ok := b.authenticate(h); ok {
				t.Errorf("still signed in on %s", h)
			}
		}
		if got := f.logoutCount(acme, flowIDP, "success"); got != 1 {
			t.Errorf("idp logout successes: got %v, want 1", got)
		}
	})
	t.Run("not valid", func(t *testing.T) {
		t.Parallel()
		f, b := signedIn(t)
		u, _ := f.idpLogoutRequest(acme, func(r *samltest.LogoutRequest) { r.Unsigned = true })
		hosts, last, final := follow(t, b, u.String())
		if len(hosts) != 2 || final != nil || last.Code != http.StatusOK || !strings.Contains(last.Body.String(), "You have been signed out") {
			t.Errorf("got hosts %q, final %v, status %d; want both hosts, then the signed-out page", hosts, final, last.Code)
		}
		for _, h := range []string{acmeHost, acmeHost2} {
			if _, ok := b.authenticate(h); ok {
				t.Errorf("still signed in on %s", h)
			}
		}
	})
	relay := func(t *testing.T, f *fixture) string {
		u, _ := f.idpLogoutRequest(acme, nil)
		rec := f.getWith(u.String())
		loc := rec.Header().Get("Location")
		if rec.Code != http.StatusFound || !strings.HasPrefix(loc, "https://"+acmeHost+LogoutPath+"?"+paramSLORelay+"=") {
			t.Fatalf("got %d to %q, want 302 to the relay on %s", rec.Code, loc, acmeHost)
		}
		return loc
	}
	for _, c := range []struct {
		name   string
		change func(t *testing.T, f *fixture, target string) string
	}{
		{"tampered", func(t *testing.T, f *fixture, target string) string {
			q := mustQuery(t, target)
			tok := []byte(q.Get(paramSLORelay))
			tok[12] ^= 1
			return "https://" + acmeHost + LogoutPath + "?" + url.Values{paramSLORelay: {string(tok)}}.Encode()
		}},
		{"a handed-over logout token as a relay", func(t *testing.T, f *fixture, target string) string {
			v, _ := f.p.currentSettings().codec.encode(logoutHandoffName, sloRelay{Tenant: acme, Next: "https://evil.example/", Expires: f.clock.Now().Add(time.Minute).Unix()})
			return "https://" + acmeHost + LogoutPath + "?" + url.Values{paramSLORelay: {v}}.Encode()
		}},
		{"stale", func(t *testing.T, f *fixture, target string) string {
			f.clock.Advance(handoffTTL)
			return target
		}},
		{"on another tenant's host", func(t *testing.T, f *fixture, target string) string {
			u, _ := url.Parse(target)
			u.Host = initechHost
			return u.String()
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := hostsFixture(t)
			rec := f.getWith(c.change(t, f, relay(t, f)))
			if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" || !clearsSession(rec) {
				t.Errorf("got %d to %q, want the signed-out page here, the session cleared", rec.Code, rec.Header().Get("Location"))
			}
		})
	}
}

// FuzzHandoff: arbitrary tokens at the handoff never sign anyone in, never
// panic and never answer 5xx. The seeds include a real SP-initiated token,
// which without its binding cookie is no login either.
func FuzzHandoff(f *testing.F) {
	fx := newHostsFixture(f, false)
	b := fx.newJar()
	good := mustQuery(f, fx.loginFrom(b, acme, "https://"+acmeHost+LoginPath+acme, nil).handoff()).Get(paramToken)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("")
	f.Add("MTc5NTg3MjQ4NHxNa1lQ|AAAA")
	f.Fuzz(func(t *testing.T, token string) {
		rec := fx.getWith("https://" + acmeHost + HandoffPath + "?" + url.Values{paramToken: {token}}.Encode())
		if rec.Code >= 500 || rec.Code == http.StatusSeeOther {
			t.Fatalf("token %q: got status %d, want a refusal", token, rec.Code)
		}
		if ck := sessionCookieOf(rec); ck != nil {
			t.Fatalf("token %q set a session cookie", token)
		}
	})
}
