package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sso-gateway/sso-gateway/internal/demo"
)

// Gateway paths and cookie names, as a browser sees them on https.
const (
	selectPath    = "/auth/api/v1/saml/select"
	logoutPath    = "/auth/api/v1/saml/logout"
	acsPath       = "/auth/api/v1/saml/login/" // + tenant ID
	sessionCookie = "__Host-ssogw_session"
	tenantCookie  = "__Host-ssogw_tenant"
	trackerPrefix = "__Secure-ssogw_req_"
	// whoamiPath is an upstream API answering JSON with the identity
	// headers and the Cookie header it received.
	whoamiPath = "/api/whoami"
)

// session is the product and the browser the flows share.
type session struct {
	*stack
	// tab is where B.Simon signs in and out.
	tab *tab
	// appTab keeps a page of the application open, from which scripts make
	// requests. Pages the gateway renders, and the upstream's HTML pages,
	// forbid scripts to connect anywhere (CSP default-src 'none'), so
	// fetch() must run in a document without a policy: a JSON response.
	appTab *tab
}

// TestBrowserSSO signs B.Simon in and out in one Chromium session: an
// SP-initiated login from a deep link, an IdP-initiated login from the My
// Apps page, and a logout. Each flow starts where the one before it ended, so
// a flow that stops half-way (t.Fatal) stops the test.
func TestBrowserSSO(t *testing.T) {
	s := &session{stack: startStack(t)}
	s.tab = startBrowser(t, s.stack)
	s.appTab = s.tab.newTab(t, "tab 2")

	flows := []struct {
		name string
		run  func(*testing.T, *session)
	}{
		{"sp_initiated", spInitiated},
		{"idp_initiated", idpInitiated},
		{"logout", logout},
	}
	for _, f := range flows {
		finished := false
		t.Run(f.name, func(t *testing.T) {
			defer s.appTab.dumpOnFailure(t)
			defer s.tab.dumpOnFailure(t)
			f.run(t, s)
			finished = true
		})
		if !finished {
			return // stopped half-way: the next flow would start from a wrong state
		}
	}

	// The gateway counted what the browser did, and nothing else.
	for _, c := range []struct {
		tenant, flow string
		want         float64
	}{
		{"contoso", "sp", 1},
		{"contoso", "idp", 0},
		{"fabrikam", "sp", 0},
		{"fabrikam", "idp", 1},
	} {
		if got := loginCount(t, s.registry, c.tenant, c.flow, "success", "none"); got != c.want {
			t.Errorf(`sso_gateway_logins_total{tenant=%q,flow=%q,result="success"} = %g, want %g`, c.tenant, c.flow, got, c.want)
		}
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}
}

// spInitiated: a deep link without a session goes to the organisation page,
// then to the IdP, and back through the ACS (a cross-site POST) to the page
// first asked for.
func spInitiated(t *testing.T, s *session) {
	deepLink := s.gatewayURL + "/?x=1"
	s.tab.do(t, "open "+deepLink, chromedp.Navigate(deepLink), chromedp.WaitVisible(chromedp.ID("q")))
	if got := s.tab.location(t); !strings.HasPrefix(got, s.gatewayURL+selectPath+"?") {
		t.Fatalf("without a session, landed on %q, want the organisation page %s", got, s.gatewayURL+selectPath)
	}

	s.tab.do(t, "choose the organisation by email and reach the IdP",
		chromedp.SendKeys(chromedp.ID("q"), demo.UserEmail),
		chromedp.Click(chromedp.ID("continue")),
		chromedp.WaitVisible(chromedp.ID("user")),
	)
	if got := s.tab.location(t); !strings.HasPrefix(got, s.idpURL+"/") {
		t.Fatalf("after the organisation page, landed on %q, want the IdP at %s", got, s.idpURL)
	}
	// The login in progress is tracked by a cookie that must survive the
	// IdP's cross-site POST: SameSite=None, and sent only to the ACS.
	var trackers []*network.Cookie
	for name, c := range s.tab.cookies(t, gatewayHost) {
		if strings.HasPrefix(name, trackerPrefix) {
			trackers = append(trackers, c)
		}
	}
	if len(trackers) != 1 {
		t.Fatalf("%d tracking cookies while at the IdP, want 1", len(trackers))
	}
	if c := trackers[0]; !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteNone || c.Path != acsPath+"contoso" {
		t.Errorf("%s: HttpOnly=%t Secure=%t SameSite=%q Path=%q, want HttpOnly, Secure, SameSite=None, Path=%s",
			c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path, acsPath+"contoso")
	}

	// The gateway passed the email typed on the organisation page as
	// login_hint, and the IdP offers it, as Entra does: B.Simon signs in
	// with the email, typing only the password.
	user, err := chromedp.Run(s.tab.flow, chromedp.Value(chromedp.ID("user")))
	if err != nil {
		t.Fatalf("read the IdP's user field: %v", err)
	}
	if user != demo.UserEmail {
		t.Errorf("the IdP's user field holds %q, want %q from login_hint", user, demo.UserEmail)
	}
	s.tab.do(t, "sign in at the IdP with the email and come back through the ACS",
		chromedp.SetValue(chromedp.ID("user"), demo.UserEmail),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("remote-user")),
	)
	if got := s.tab.location(t); got != deepLink {
		t.Errorf("after login, landed on %q, want the deep link %q", got, deepLink)
	}
	checkIdentity(t, s.tab, "contoso")

	cookies := s.tab.cookies(t, gatewayHost)
	checkSessionCookie(t, cookies[sessionCookie])
	if _, ok := cookies[tenantCookie]; !ok {
		t.Errorf("no %s cookie: the organisation is not remembered", tenantCookie)
	}
	for name, c := range cookies {
		if strings.HasPrefix(name, trackerPrefix) {
			t.Errorf("tracking cookie %s (path %s) remains after the login it tracked", name, c.Path)
		}
	}
}

// idpInitiated: a My Apps tile posts an unsolicited response for the other
// tenant; the IdP still has B.Simon's session from the first flow.
func idpInitiated(t *testing.T, s *session) {
	s.tab.do(t, "open My Apps",
		chromedp.Navigate(s.idpURL+"/"),
		chromedp.WaitVisible(chromedp.ID("app-fabrikam")),
	)
	s.tab.do(t, "click the Fabrikam tile and come back through the ACS",
		chromedp.Click(chromedp.ID("app-fabrikam")),
		chromedp.WaitVisible(chromedp.ID("remote-tenant")),
	)
	if got, want := s.tab.location(t), s.gatewayURL+"/"; got != want {
		t.Errorf("after the IdP-initiated login, landed on %q, want the default relay state %q", got, want)
	}
	checkIdentity(t, s.tab, "fabrikam")
	checkSessionCookie(t, s.tab.cookies(t, gatewayHost)[sessionCookie])

	// A page of the application in another tab shares the session...
	s.appTab.do(t, "open "+whoamiPath+" in "+s.appTab.name,
		chromedp.Navigate(s.gatewayURL+whoamiPath),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	// ...and so do its scripts' requests. The upstream sees the identity
	// but none of the gateway's cookies.
	status, body := s.appTab.fetch(t, whoamiPath)
	if status != http.StatusOK {
		t.Fatalf("fetch %s while signed in: status %d, want 200; body %q", whoamiPath, status, body)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("%s body %q: %v", whoamiPath, body, err)
	}
	if got, want := seen["X-Remote-Tenant"], "fabrikam"; got != want {
		t.Errorf("upstream saw X-Remote-Tenant %q, want %q", got, want)
	}
	if got := seen["cookie"]; strings.Contains(got, "ssogw_") {
		t.Errorf("upstream saw the gateway's cookies: Cookie %q", got)
	}
}

// logout: the signed-out page, no session cookie, and the scripts of pages
// still open get 401 (not a redirect to sign in).
func logout(t *testing.T, s *session) {
	s.tab.do(t, "sign out",
		chromedp.Navigate(s.gatewayURL+logoutPath),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	if got, want := s.tab.location(t), s.gatewayURL+logoutPath; got != want && !strings.HasPrefix(got, want+"?") {
		t.Errorf("signed-out page at %q, want %q", got, want)
	}
	if msg := s.tab.text(t, "message"); !strings.Contains(strings.ToLower(msg), "signed out") {
		t.Errorf("#message = %q, want a signed-out message", msg)
	}
	// The demo IdP answered the LogoutRequest with success: the page says
	// so, and does not ask the user to sign out of Microsoft.
	if msg := s.tab.text(t, "signed-out-at-idp"); !strings.Contains(msg, "signed out") {
		t.Errorf("#signed-out-at-idp = %q, want it to say the IdP signed the user out", msg)
	}
	if c, ok := s.tab.cookies(t, gatewayHost)[sessionCookie]; ok {
		t.Errorf("session cookie still present after logout: %+v", *c)
	}
	status, body := s.appTab.fetch(t, whoamiPath)
	if status != http.StatusUnauthorized {
		t.Errorf("fetch %s after logout: status %d, want 401; body %q", whoamiPath, status, body)
	}
}

// checkIdentity checks the identity the upstream page shows.
func checkIdentity(t *testing.T, tb *tab, tenant string) {
	t.Helper()
	if got := tb.text(t, "remote-user"); got != demo.UserEmail {
		t.Errorf("#remote-user = %q, want %q", got, demo.UserEmail)
	}
	if got := tb.text(t, "remote-tenant"); got != tenant {
		t.Errorf("#remote-tenant = %q, want %q", got, tenant)
	}
	for _, id := range []string{"remote-email", "remote-name", "remote-groups"} {
		if got := tb.text(t, id); got == "" {
			t.Errorf("#%s is empty", id)
		}
	}
}

// checkSessionCookie checks the attributes that keep the session cookie
// away from scripts, plain http, other paths and hosts, and cross-site
// requests.
func checkSessionCookie(t *testing.T, c *network.Cookie) {
	t.Helper()
	if c == nil {
		t.Errorf("no %s cookie", sessionCookie)
		return
	}
	if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
		t.Errorf("%s: HttpOnly=%t Secure=%t SameSite=%q Path=%q, want HttpOnly, Secure, SameSite=Lax, Path=/",
			sessionCookie, c.HTTPOnly, c.Secure, c.SameSite, c.Path)
	}
}
