package samlsp

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/testsaml"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// sloSignIn completes an SP-initiated login at tenant (every tenant accepts
// those) with the response changed by change, and returns the session
// cookie.
func (f *fixture) sloSignIn(tenant string, change func(*samltest.Response)) *http.Cookie {
	f.t.Helper()
	l := f.startLogin(tenant, "")
	r := f.response(tenant, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		if change != nil {
			change(r)
		}
	})
	rec := f.postACS(tenant, f.idps[tenant].PostForm(f.t, r, l.relayState), l.tracker)
	ck := sessionCookieOf(rec)
	if ck == nil {
		f.t.Fatalf("sign in at %s: got %d: %s", tenant, rec.Code, rec.Body)
	}
	return ck
}

// sloGet serves a GET of target (a path with its query, or an absolute URL of
// which only the path and query count) with cookies.
func (f *fixture) sloGet(target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	if u, err := url.Parse(target); err == nil && u.IsAbs() {
		target = u.RequestURI()
	}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "text/html")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return f.serve(req)
}

// logoutCount is the sso_gateway_logouts_total series of tenant, flow and
// result.
func (f *fixture) logoutCount(tenant, flow, result string) float64 {
	return testutil.ToFloat64(f.p.metrics.logouts.WithLabelValues(tenant, flow, result))
}

// startedLogout is an SP-initiated logout the browser has started: the
// gateway's answer to GET LogoutPath.
type startedLogout struct {
	rec        *httptest.ResponseRecorder
	redirect   *url.URL
	request    *crewsaml.LogoutRequest
	relayState string
	tracker    *http.Cookie // nil if none was set
}

// startSPLogout signs out with session at LogoutPath, which must redirect to
// the IdP with a LogoutRequest.
func (f *fixture) startSPLogout(session *http.Cookie) *startedLogout {
	f.t.Helper()
	rec := f.sloGet(LogoutPath, session)
	if rec.Code != http.StatusFound {
		f.t.Fatalf("logout: got status %d, want 302: %s", rec.Code, rec.Body)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		f.t.Fatal(err)
	}
	lo := &startedLogout{rec: rec, redirect: loc, relayState: loc.Query().Get("RelayState")}
	raw, err := testsaml.ParseRedirectRequest(loc)
	if err != nil {
		f.t.Fatalf("LogoutRequest: %v", err)
	}
	lo.request = &crewsaml.LogoutRequest{}
	if err := xml.Unmarshal(raw, lo.request); err != nil {
		f.t.Fatalf("LogoutRequest: %v\n%s", err, raw)
	}
	for _, ck := range rec.Result().Cookies() {
		if strings.Contains(ck.Name, logoutTrackerCookie) && ck.MaxAge > 0 {
			lo.tracker = ck
		}
	}
	return lo
}

// checkSignedOutAtIDP checks what the signed-out page rec says about the
// IdP: that the user is signed out there too (atIDP), or how to finish
// signing out.
func checkSignedOutAtIDP(t *testing.T, rec *httptest.ResponseRecorder, atIDP bool) {
	t.Helper()
	body := rec.Body.String()
	if got := strings.Contains(body, `id="signed-out-at-idp"`); got != atIDP {
		t.Errorf("signed-out page says signed out at the IdP: got %t, want %t\n%s", got, atIDP, body)
	}
	if got := strings.Contains(body, `id="finish-sign-out"`); got == atIDP {
		t.Errorf("signed-out page asks to sign out of Microsoft: got %t, want %t\n%s", got, !atIDP, body)
	}
}

// TestSignedOutAtIDPCannotBeForged: only a fresh mark sealed by the gateway
// tells the user that the IdP signed them out.
func TestSignedOutAtIDPCannotBeForged(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seal := func(name string, v sloDone) string {
		s, err := f.p.currentSettings().codec.encode(name, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	fresh := sloDone{Tenant: acme, Issued: f.clock.Now().Unix()}
	stale := sloDone{Tenant: acme, Issued: f.clock.Now().Add(-logoutTimeout - time.Second).Unix()}
	tests := []struct {
		name  string
		value string
		atIDP bool
	}{
		{"sealed and fresh", seal(sloDoneName, fresh), true},
		{"none", "", false},
		{"made up", "1", false},
		{"sealed for another purpose", seal(sessionCookie, fresh), false},
		{"too old", seal(sloDoneName, stale), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.sloGet(LogoutPath + "?" + url.Values{sloDoneParam: {tt.value}}.Encode())
			if rec.Code != http.StatusOK {
				t.Fatalf("got %d, want the signed-out page", rec.Code)
			}
			checkSignedOutAtIDP(t, rec, tt.atIDP)
		})
	}
}

// setCookieNamed returns the cookie named name that rec sets, or nil.
func setCookieNamed(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// clearsSession reports whether rec expires the session cookie.
func clearsSession(rec *httptest.ResponseRecorder) bool {
	ck := setCookieNamed(rec, "__Host-ssogw_session")
	return ck != nil && ck.MaxAge < 0 && ck.Value == ""
}

// checkRedirectSignature checks that u carries an RSA-SHA256 HTTP-Redirect
// signature by cert over the query as sent, up to the Signature parameter
// (saml-bindings-2.0-os §3.4.4.1).
func checkRedirectSignature(t *testing.T, u *url.URL, cert *x509.Certificate) {
	t.Helper()
	if got := u.Query().Get("SigAlg"); got != dsig.RSASHA256SignatureMethod {
		t.Errorf("got SigAlg %q, want %q", got, dsig.RSASHA256SignatureMethod)
	}
	signed, rawSig, ok := strings.Cut(u.RawQuery, "&Signature=")
	if !ok {
		t.Fatalf("no Signature in %q", u.RawQuery)
	}
	sigText, err := url.QueryUnescape(rawSig)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigText)
	if err != nil {
		t.Fatalf("Signature is not base64: %v", err)
	}
	if err := cert.CheckSignature(x509.SHA256WithRSA, []byte(signed), sig); err != nil {
		t.Errorf("the query signature does not verify with the SP certificate: %v", err)
	}
}

// sloOtherTenant is a tenant other than tenant: initech for acme, so that the
// two share an IdP, and acme for the others.
func sloOtherTenant(tenant string) string {
	if tenant == acme {
		return initech
	}
	return acme
}

// TestSPInitiatedLogout: signing out at the gateway ends the session at
// once and sends the browser to the IdP with a signed LogoutRequest for the
// session's user and IdP session; the IdP's signed answer, under its
// entity ID or Entra's login issuer, lands on the signed-out page and is
// counted as a success.
func TestSPInitiatedLogout(t *testing.T) {
	t.Parallel()
	for _, entraIssuer := range []bool{false, true} {
		for _, tenant := range allTenants {
			name := tenant
			if entraIssuer {
				name += "/Entra login issuer"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				tn := f.tenant(tenant)
				idp := f.idps[tenant]
				session := f.sloSignIn(tenant, func(r *samltest.Response) {
					r.NameID = "B.Simon@" + tenant + ".example"
					r.NameIDFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
					r.SessionIndex = "_idp-session-" + tenant
				})
				lo := f.startSPLogout(session)

				// The LogoutRequest.
				req := lo.request
				var sessionIndex string
				if req.SessionIndex != nil {
					sessionIndex = req.SessionIndex.Value
				}
				var issuer string
				if req.Issuer != nil {
					issuer = req.Issuer.Value
				}
				if req.NameID == nil {
					t.Fatal("LogoutRequest has no NameID")
				}
				for _, c := range []struct{ what, got, want string }{
					{"target", lo.redirect.Scheme + "://" + lo.redirect.Host + lo.redirect.Path, tn.IDP().SLOURL},
					{"Destination", req.Destination, tn.IDP().SLOURL},
					{"Issuer", issuer, tn.EntityID},
					{"NameID", req.NameID.Value, "B.Simon@" + tenant + ".example"},
					{"NameID Format", req.NameID.Format, "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"},
					{"SessionIndex", sessionIndex, "_idp-session-" + tenant},
				} {
					if c.got != c.want {
						t.Errorf("got %s %q, want %q", c.what, c.got, c.want)
					}
				}
				if req.Signature != nil {
					t.Error("the HTTP-Redirect LogoutRequest carries an enveloped signature; the binding signs the query")
				}
				checkRedirectSignature(t, lo.redirect, testKeys()[3].Cert)

				// The session ends now, whatever the IdP does.
				if !clearsSession(lo.rec) {
					t.Errorf("session cookie not cleared: %q", lo.rec.Header().Values("Set-Cookie"))
				}
				if !validTrackerKey(lo.relayState) {
					t.Errorf("got RelayState %q, want a tracker key", lo.relayState)
				}
				ck := lo.tracker
				if ck == nil {
					t.Fatalf("no logout tracking cookie: %q", lo.rec.Header().Values("Set-Cookie"))
				}
				if ck.Name != "__Secure-ssogw_logout_"+lo.relayState || ck.Path != SLOPath+tenant || !ck.HttpOnly || !ck.Secure ||
					ck.SameSite != http.SameSiteNoneMode || ck.MaxAge != int(logoutTimeout/time.Second) {
					t.Errorf("tracking cookie: got %+v, want __Secure-, path %s, HttpOnly, Secure, SameSite=None, Max-Age %d",
						ck, SLOPath+tenant, int(logoutTimeout/time.Second))
				}

				// The IdP answers.
				f.clock.Advance(3 * time.Second)
				resp := samltest.LogoutResponse{Destination: tn.SLOURL.String(), InResponseTo: req.ID, RelayState: lo.relayState}
				if entraIssuer {
					resp.Issuer = idp.LoginIssuer()
				}
				rec := f.sloGet(idp.LogoutResponseURL(t, resp).String(), lo.tracker)
				loc, _ := url.Parse(rec.Header().Get("Location"))
				if rec.Code != http.StatusSeeOther || loc == nil || loc.Path != LogoutPath || loc.Query().Get(sloDoneParam) == "" {
					t.Fatalf("LogoutResponse: got %d to %q, want 303 to %s?%s=...: %s", rec.Code, rec.Header().Get("Location"), LogoutPath, sloDoneParam, rec.Body)
				}
				if got := f.logoutCount(tenant, flowSP, "success"); got != 1 {
					t.Errorf("got %v sp logout successes, want 1", got)
				}
				if got := f.logoutCount(tenant, flowSP, "failure"); got != 0 {
					t.Errorf("got %v sp logout failures, want 0", got)
				}
				if cleared := setCookieNamed(rec, lo.tracker.Name); cleared == nil || cleared.MaxAge >= 0 || cleared.Path != SLOPath+tenant {
					t.Errorf("tracking cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
				}
				if ck := sessionCookieOf(rec); ck != nil {
					t.Errorf("got a session cookie %q, want none", ck.Name)
				}

				// The signed-out page, at a URL without the IdP's message,
				// says the user is signed out at the IdP too.
				page := f.sloGet(loc.String())
				if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), "You have been signed out") {
					t.Errorf("signed-out page: got %d: %s", page.Code, page.Body)
				}
				checkSignedOutAtIDP(t, page, true)
			})
		}
	}
}

// TestSPInitiatedLogoutOnPlainHTTP: SameSite=None needs Secure; on http the
// tracking cookie is Lax, which a top-level redirect from the IdP still
// carries.
func TestSPInitiatedLogoutOnPlainHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withPublicURL("http://127.0.0.1:8080"))
	lo := f.startSPLogout(f.sloSignIn(acme, nil))
	ck := lo.tracker
	if ck == nil || ck.Name != "ssogw_logout_"+lo.relayState || ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != SLOPath+acme {
		t.Fatalf("got %+v, want ssogw_logout_ cookie, not Secure, SameSite=Lax, path %s", ck, SLOPath+acme)
	}
	u := f.idps[acme].LogoutResponseURL(t, samltest.LogoutResponse{
		Destination: f.tenant(acme).SLOURL.String(), InResponseTo: lo.request.ID, RelayState: lo.relayState,
	})
	if rec := f.sloGet(u.String(), ck); rec.Code != http.StatusSeeOther || f.logoutCount(acme, flowSP, "success") != 1 {
		t.Fatalf("got %d and %v successes, want 303 and 1", rec.Code, f.logoutCount(acme, flowSP, "success"))
	}
}

// TestSPInitiatedLogoutFailures: a LogoutResponse that does not validate, or
// does not answer the request this browser sent for this tenant, still ends
// on the signed-out page with no session; it is counted as a failure.
func TestSPInitiatedLogoutFailures(t *testing.T) {
	t.Parallel()
	// answer makes the IdP's answer to lo at tenant, changed by change,
	// and returns it with the cookies the browser sends.
	type answer func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie)
	respond := func(change func(*samltest.LogoutResponse)) answer {
		return func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie) {
			r := samltest.LogoutResponse{Destination: f.tenant(tenant).SLOURL.String(), InResponseTo: lo.request.ID, RelayState: lo.relayState}
			if change != nil {
				change(&r)
			}
			return f.idps[tenant].LogoutResponseURL(t, r), []*http.Cookie{lo.tracker}
		}
	}
	tests := []struct {
		name   string
		answer answer
		only   []string
	}{
		{"unsigned", respond(func(r *samltest.LogoutResponse) { r.Unsigned = true }), nil},
		{"signed by a key the tenant does not trust", respond(func(r *samltest.LogoutResponse) { r.SigningKey = testKeys()[4].Key }), nil},
		{"Entra login issuer, signed by a key the tenant does not trust", func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie) {
			return respond(func(r *samltest.LogoutResponse) {
				r.Issuer = f.idps[tenant].LoginIssuer()
				r.SigningKey = testKeys()[4].Key
			})(t, f, tenant, lo)
		}, nil},
		{"another issuer", respond(func(r *samltest.LogoutResponse) {
			r.Issuer = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/"
		}), nil},
		{"RSA-SHA1 signature", respond(func(r *samltest.LogoutResponse) { r.SignatureMethod = dsig.RSASHA1SignatureMethod }), []string{acme, initech, globex}},
		{"wrong InResponseTo", respond(func(r *samltest.LogoutResponse) { r.InResponseTo = "id-not-ours" }), nil},
		{"no InResponseTo", respond(func(r *samltest.LogoutResponse) { r.InResponseTo = "" }), nil},
		{"status Requester", respond(func(r *samltest.LogoutResponse) {
			r.StatusCode = crewsaml.StatusRequester
			r.StatusMessage = "AADSTS"
		}), nil},
		{"addressed to another tenant's SLO URL", func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie) {
			u, cookies := respond(func(r *samltest.LogoutResponse) { r.Destination = f.tenant(sloOtherTenant(tenant)).SLOURL.String() })(t, f, tenant, lo)
			u.Path = SLOPath + tenant // but delivered here
			return u, cookies
		}, nil},
		{"missing tracking cookie", func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie) {
			u, _ := respond(nil)(t, f, tenant, lo)
			return u, nil
		}, nil},
		{"missing RelayState", respond(func(r *samltest.LogoutResponse) { r.RelayState = "" }), nil},
		{"tracking cookie expired", func(t *testing.T, f *fixture, tenant string, lo *startedLogout) (*url.URL, []*http.Cookie) {
			f.clock.Advance(logoutTimeout + time.Second)
			return respond(nil)(t, f, tenant, lo)
		}, nil},
		{"another tenant's tracking cookie", func(t *testing.T, f *fixture, tenant string, _ *startedLogout) (*url.URL, []*http.Cookie) {
			// The browser also signed in and out at another tenant;
			// this tenant's IdP answers that tenant's request, here.
			other := f.startSPLogout(f.sloSignIn(sloOtherTenant(tenant), nil))
			u := f.idps[tenant].LogoutResponseURL(t, samltest.LogoutResponse{
				Destination: f.tenant(tenant).SLOURL.String(), InResponseTo: other.request.ID, RelayState: other.relayState,
			})
			return u, []*http.Cookie{other.tracker}
		}, nil},
	}
	for _, tt := range tests {
		tenants := tt.only
		if tenants == nil {
			tenants = allTenants
		}
		for _, tenant := range tenants {
			t.Run(tt.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				lo := f.startSPLogout(f.sloSignIn(tenant, nil))
				u, cookies := tt.answer(t, f, tenant, lo)
				// A session the browser got in the meantime ends too.
				cookies = append(cookies, f.sloSignIn(tenant, nil))
				rec := f.sloGet(u.String(), cookies...)
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != LogoutPath {
					t.Fatalf("got %d to %q, want 303 to %s: %s", rec.Code, rec.Header().Get("Location"), LogoutPath, rec.Body)
				}
				// Signed out here only: the page says how to finish.
				checkSignedOutAtIDP(t, f.sloGet(LogoutPath), false)
				if ck := sessionCookieOf(rec); ck != nil {
					t.Errorf("got a session cookie %q, want none", ck.Name)
				}
				if !clearsSession(rec) {
					t.Errorf("session cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
				}
				if got := f.logoutCount(tenant, flowSP, "failure"); got != 1 {
					t.Errorf("got %v sp logout failures, want 1", got)
				}
				if got := f.logoutCount(tenant, flowSP, "success"); got != 0 {
					t.Errorf("got %v sp logout successes, want 0", got)
				}
			})
		}
	}
}

// withoutIDPSLO replaces tenant's IdP by one whose metadata has no
// SingleLogoutService.
func (f *fixture) withoutIDPSLO(tenant string) {
	f.t.Helper()
	idp := *f.idps[tenant]
	idp.NoSingleLogout = true
	f.idps[tenant] = &idp
	var tos []TenantOptions
	for _, id := range allTenants {
		tos = append(tos, tenantOptions(f, id))
	}
	ts, err := f.p.NewTenants(tos)
	if err != nil {
		f.t.Fatal(err)
	}
	f.p.SetTenants(ts)
	if got := f.tenant(tenant).IDP().SLOURL; got != "" {
		f.t.Fatalf("IdP metadata still has a SingleLogoutService at %q", got)
	}
}

// TestLogoutWithoutIDPSLO: an IdP without a SingleLogoutService is not
// asked; the session ends and the signed-out page shows at once.
func TestLogoutWithoutIDPSLO(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.withoutIDPSLO(tenant)
			rec := f.sloGet(LogoutPath, f.sloSignIn(tenant, nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You have been signed out") {
				t.Fatalf("got %d, want the signed-out page: %s", rec.Code, rec.Body)
			}
			if !clearsSession(rec) {
				t.Errorf("session cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
			}
			checkSignedOutAtIDP(t, rec, false)
			if strings.Contains(strings.Join(rec.Header().Values("Set-Cookie"), "\n"), logoutTrackerCookie) {
				t.Error("a logout tracking cookie is set, but no LogoutRequest was sent")
			}
			if got := f.logoutCount(tenant, flowSP, "local"); got != 1 {
				t.Errorf("got %v local sp logouts, want 1", got)
			}
		})
	}
}

// idpLogoutRequest returns the URL of a signed LogoutRequest from tenant's
// IdP for the user of the fixture's responses, changed by change, and its
// description.
func (f *fixture) idpLogoutRequest(tenant string, change func(*samltest.LogoutRequest)) (*url.URL, samltest.LogoutRequest) {
	f.t.Helper()
	r := samltest.LogoutRequest{
		Destination:  f.tenant(tenant).SLOURL.String(),
		NameID:       "b.simon@" + tenant + ".example",
		SessionIndex: "_idp-session",
		RelayState:   "idp-relay-state",
		ID:           fmt.Sprintf("_%x", randomBytes(f.t, 16)),
	}
	if change != nil {
		change(&r)
	}
	return f.idps[tenant].LogoutRequestURL(f.t, r), r
}

// TestIDPInitiatedLogout: a valid LogoutRequest from the tenant's IdP ends
// the browser's session at that tenant, if it has one, and is answered with
// a signed LogoutResponse to the IdP's SingleLogoutService.
func TestIDPInitiatedLogout(t *testing.T) {
	t.Parallel()
	for _, withSession := range []bool{true, false} {
		for _, tenant := range allTenants {
			name := tenant
			if !withSession {
				name += "/no session in this browser"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				tn := f.tenant(tenant)
				var cookies []*http.Cookie
				if withSession {
					cookies = append(cookies, f.sloSignIn(tenant, func(r *samltest.Response) { r.SessionIndex = "_idp-session" }))
				}
				u, lr := f.idpLogoutRequest(tenant, nil)
				rec := f.sloGet(u.String(), cookies...)
				if rec.Code != http.StatusFound {
					t.Fatalf("got status %d, want 302 to the IdP: %s", rec.Code, rec.Body)
				}
				if got := clearsSession(rec); got != withSession {
					t.Errorf("session cookie cleared: got %t, want %t (%q)", got, withSession, rec.Header().Values("Set-Cookie"))
				}
				loc, err := url.Parse(rec.Header().Get("Location"))
				if err != nil {
					t.Fatal(err)
				}
				raw, err := testsaml.ParseRedirectResponse(loc)
				if err != nil {
					t.Fatalf("LogoutResponse: %v", err)
				}
				var resp crewsaml.LogoutResponse
				if err := xml.Unmarshal(raw, &resp); err != nil {
					t.Fatalf("LogoutResponse: %v\n%s", err, raw)
				}
				var issuer string
				if resp.Issuer != nil {
					issuer = resp.Issuer.Value
				}
				for _, c := range []struct{ what, got, want string }{
					{"target", loc.Scheme + "://" + loc.Host + loc.Path, tn.IDP().SLOURL},
					{"Destination", resp.Destination, tn.IDP().SLOURL},
					{"InResponseTo", resp.InResponseTo, lr.ID},
					{"Status", resp.Status.StatusCode.Value, crewsaml.StatusSuccess},
					{"Issuer", issuer, tn.EntityID},
					{"RelayState", loc.Query().Get("RelayState"), lr.RelayState},
				} {
					if c.got != c.want {
						t.Errorf("got %s %q, want %q", c.what, c.got, c.want)
					}
				}
				checkRedirectSignature(t, loc, testKeys()[3].Cert)
				if got := f.logoutCount(tenant, flowIDP, "success"); got != 1 {
					t.Errorf("got %v idp logout successes, want 1", got)
				}
			})
		}
	}
}

// TestIDPInitiatedLogoutFailures: a LogoutRequest that does not validate
// still ends the browser's session at that tenant (a genuine request the
// gateway cannot verify must not leave the user signed in), but gets no
// LogoutResponse: the browser sees the signed-out page.
func TestIDPInitiatedLogoutFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// request returns the request URL; it may use it once first.
		request func(t *testing.T, f *fixture, tenant string) *url.URL
		only    []string
	}{
		{"unsigned", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, func(r *samltest.LogoutRequest) { r.Unsigned = true })
			return u
		}, nil},
		{"signed by a key the tenant does not trust", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, func(r *samltest.LogoutRequest) { r.SigningKey = testKeys()[4].Key })
			return u
		}, nil},
		{"RSA-SHA1 signature", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, func(r *samltest.LogoutRequest) { r.SignatureMethod = dsig.RSASHA1SignatureMethod })
			return u
		}, []string{acme, initech, globex}},
		{"replayed", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, nil)
			if rec := f.sloGet(u.String()); rec.Code != http.StatusFound {
				t.Fatalf("first use: got %d, want 302", rec.Code)
			}
			return u
		}, nil},
		{"addressed to another tenant's SLO URL", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, func(r *samltest.LogoutRequest) { r.Destination = f.tenant(sloOtherTenant(tenant)).SLOURL.String() })
			u.Path = SLOPath + tenant // but delivered here
			return u
		}, nil},
		{"another issuer", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, func(r *samltest.LogoutRequest) {
				r.Issuer = "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"
			})
			return u
		}, nil},
		{"expired", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, nil)
			f.clock.Advance(10 * time.Minute)
			return u
		}, nil},
		{"tampered message", func(t *testing.T, f *fixture, tenant string) *url.URL {
			u, _ := f.idpLogoutRequest(tenant, nil)
			u.RawQuery = strings.Replace(u.RawQuery, "RelayState=idp-relay-state", "RelayState=https%3A%2F%2Fevil.example%2F", 1)
			return u
		}, nil},
	}
	for _, tt := range tests {
		tenants := tt.only
		if tenants == nil {
			tenants = allTenants
		}
		for _, tenant := range tenants {
			t.Run(tt.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				u := tt.request(t, f, tenant)
				rec := f.sloGet(u.String(), f.sloSignIn(tenant, nil))
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You have been signed out") {
					t.Fatalf("got %d (Location %q), want the signed-out page: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
				}
				checkSignedOutAtIDP(t, rec, false)
				if !clearsSession(rec) {
					t.Errorf("session cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
				}
				if ck := sessionCookieOf(rec); ck != nil {
					t.Errorf("got a session cookie %q, want none", ck.Name)
				}
				if got := f.logoutCount(tenant, flowIDP, "failure"); got != 1 {
					t.Errorf("got %v idp logout failures, want 1", got)
				}
			})
		}
	}
}

// TestIDPInitiatedLogoutKeepsOtherTenantsSession: the browser holds one
// session cookie; a LogoutRequest at one tenant, valid or not, leaves a
// session of another tenant alone, even one whose IdP sent the request.
func TestIDPInitiatedLogoutKeepsOtherTenantsSession(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{{acme, initech}, {initech, acme}, {acme, globex}, {globex, legacy}} {
		for _, valid := range []bool{true, false} {
			name := pair[0] + " request, " + pair[1] + " session"
			if !valid {
				name += ", unsigned"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				session := f.sloSignIn(pair[1], nil)
				u, _ := f.idpLogoutRequest(pair[0], func(r *samltest.LogoutRequest) { r.Unsigned = !valid })
				rec := f.sloGet(u.String(), session)
				wantCode := http.StatusFound
				if !valid {
					wantCode = http.StatusOK
				}
				if rec.Code != wantCode {
					t.Fatalf("got status %d, want %d: %s", rec.Code, wantCode, rec.Body)
				}
				if clearsSession(rec) {
					t.Errorf("%s's session cookie cleared by a LogoutRequest at %s", pair[1], pair[0])
				}
				if _, ok := f.authenticate(session); !ok {
					t.Error("the other tenant's session no longer authenticates")
				}
			})
		}
	}
}

// TestIDPInitiatedLogoutWithoutIDPSLO: with no SingleLogoutService to answer
// to, a valid LogoutRequest ends the session and shows the signed-out page.
func TestIDPInitiatedLogoutWithoutIDPSLO(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withoutIDPSLO(acme)
	u, _ := f.idpLogoutRequest(acme, nil)
	rec := f.sloGet(u.String(), f.sloSignIn(acme, nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "You have been signed out") {
		t.Fatalf("got %d, want the signed-out page: %s", rec.Code, rec.Body)
	}
	// The IdP started it: the user is signing out there.
	checkSignedOutAtIDP(t, rec, true)
	if !clearsSession(rec) {
		t.Errorf("session cookie not cleared: %q", rec.Header().Values("Set-Cookie"))
	}
	if got := f.logoutCount(acme, flowIDP, "local"); got != 1 {
		t.Errorf("got %v local idp logouts, want 1", got)
	}
}

// TestSLOEndpoint: what the SLO endpoint answers before it reads a message.
func TestSLOEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	valid, _ := f.idpLogoutRequest(acme, nil)
	query := "?" + valid.RawQuery
	for _, tt := range []struct {
		name, method, target string
		body                 string
		want                 int
	}{
		{"unknown tenant", http.MethodGet, SLOPath + "nobody" + query, "", http.StatusNotFound},
		{"tenant in another case", http.MethodGet, SLOPath + "ACME" + query, "", http.StatusNotFound},
		{"percent-encoded tenant", http.MethodGet, SLOPath + "%61cme" + query, "", http.StatusNotFound},
		{"trailing slash", http.MethodGet, SLOPath + acme + "/" + query, "", http.StatusNotFound},
		{"no tenant", http.MethodGet, SLOPath + query, "", http.StatusNotFound},
		{"PUT", http.MethodPut, SLOPath + acme + query, "", http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, SLOPath + acme + query, "", http.StatusMethodNotAllowed},
		{"HEAD", http.MethodHead, SLOPath + acme + query, "", http.StatusMethodNotAllowed},
		{"GET without a message", http.MethodGet, SLOPath + acme, "", http.StatusBadRequest},
		{"GET with RelayState only", http.MethodGet, SLOPath + acme + "?RelayState=x", "", http.StatusBadRequest},
		{"GET with an empty SAMLRequest", http.MethodGet, SLOPath + acme + "?SAMLRequest=", "", http.StatusBadRequest},
		{"POST without a message", http.MethodPost, SLOPath + acme, "RelayState=x", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			req.Header.Set("Accept", "text/html")
			req.AddCookie(f.sloSignIn(acme, nil))
			rec := f.serve(req)
			if rec.Code != tt.want {
				t.Fatalf("got status %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, POST" {
				t.Errorf("got Allow %q, want %q", rec.Header().Get("Allow"), "GET, POST")
			}
			if clearsSession(rec) {
				t.Error("the session ended, but no logout message was read")
			}
		})
	}
	for _, result := range []string{"success", "failure", "local"} {
		for _, flow := range []string{flowSP, flowIDP} {
			if got := f.logoutCount(acme, flow, result); got != 0 {
				t.Errorf("got %v %s %s logouts, want none", got, flow, result)
			}
		}
	}
	// The valid request was never consumed.
	if rec := f.sloGet(valid.String()); rec.Code != http.StatusFound {
		t.Errorf("got %d, want the untouched LogoutRequest accepted", rec.Code)
	}
}
