package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sso-gateway/sso-gateway/internal/demo"
)

// TestBrowserThroughNginx: real nginx, with the shipped
// deploy/nginx/sso-gateway.conf, in front of the gateway, using its
// forward-auth endpoint. An SP-initiated login from a deep link (nginx's
// error_page 401 sends the browser to sign in, and it comes back there),
// then an IdP-initiated login from the My Apps tile, then sign-out.
func TestBrowserThroughNginx(t *testing.T) {
	s := startStackWith(t, stackOptions{nginx: true})
	tb := startBrowser(t, s)
	defer tb.dumpOnFailure(t)

	deepLink := s.gatewayURL + "/?x=1"
	tb.do(t, "open "+deepLink+" through nginx", chromedp.Navigate(deepLink), chromedp.WaitVisible(chromedp.ID("q")))
	if got := tb.location(t); !strings.HasPrefix(got, s.gatewayURL+selectPath+"?") {
		t.Fatalf("without a session, landed on %q, want the organisation page %s", got, s.gatewayURL+selectPath)
	}
	tb.do(t, "choose the organisation, sign in at the IdP and come back through nginx",
		chromedp.SendKeys(chromedp.ID("q"), demo.UserEmail),
		chromedp.Click(chromedp.ID("continue")),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SetValue(chromedp.ID("user"), demo.UserEmail),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("remote-user")),
	)
	if got := tb.location(t); got != deepLink {
		t.Errorf("after the SP-initiated login, landed on %q, want the deep link %q", got, deepLink)
	}
	checkIdentity(t, tb, "contoso")

	tb.do(t, "open My Apps and click the Fabrikam tile",
		chromedp.Navigate(s.idpURL+"/"),
		chromedp.WaitVisible(chromedp.ID("app-fabrikam")),
		chromedp.Click(chromedp.ID("app-fabrikam")),
		chromedp.WaitVisible(chromedp.ID("remote-tenant")),
	)
	if got, want := tb.location(t), s.gatewayURL+"/"; got != want {
		t.Errorf("after the IdP-initiated login, landed on %q, want %q", got, want)
	}
	checkIdentity(t, tb, "fabrikam")

	tb.do(t, "sign out through nginx", chromedp.Navigate(s.gatewayURL+logoutPath), chromedp.WaitReady(chromedp.CSS("body")))
	if _, ok := tb.cookies(t, s.gatewayHost)[plainSessionCookie]; ok {
		t.Errorf("the session cookie %s is still set after signing out", plainSessionCookie)
	}
	if got := loginCount(t, s.registry, "contoso", "sp", "success", "none") + loginCount(t, s.registry, "fabrikam", "idp", "success", "none"); got != 2 {
		t.Errorf("successful logins counted: got %g, want 2", got)
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}
}
