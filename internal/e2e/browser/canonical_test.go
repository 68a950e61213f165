package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sso-gateway/sso-gateway/internal/demo"
)

// aliasHost is another name of the gateway's host that its configuration
// does not name, as "localhost" is for a gateway configured on 127.0.0.1.
const aliasHost = "www.cloudimanage.test"

// TestBrowserCanonicalHost: B.Simon opens a deep link on an alias of the
// gateway's host. Before the gateway redirected such visits, the login
// started there set its tracking cookie on the alias, where the IdP never
// posts, and failed as "started in another browser or window". Now the
// browser is sent to the same path on public_url's host first, signs in
// there and lands on the deep link; nothing is set on the alias.
func TestBrowserCanonicalHost(t *testing.T) {
	s := startStackWith(t, stackOptions{aliasHosts: []string{aliasHost}})
	tb := startBrowser(t, s)
	defer tb.dumpOnFailure(t)

	alias := strings.Replace(s.gatewayURL, gatewayHost, aliasHost, 1)
	tb.do(t, "open a deep link on the alias",
		chromedp.Navigate(alias+"/library/Q3%20report?view=1"),
		chromedp.WaitVisible(chromedp.ID("q")))
	if got, want := tb.location(t), s.gatewayURL+selectPath+"?return_to=%2Flibrary%2FQ3%2520report%3Fview%3D1"; got != want {
		t.Fatalf("landed on %q, want the organisation page on the public host, %q", got, want)
	}
	tb.do(t, "choose the organisation, sign in at the IdP, come back",
		chromedp.SendKeys(chromedp.ID("q"), demo.UserEmail),
		chromedp.Click(chromedp.ID("continue")),
		chromedp.WaitVisible(chromedp.ID("user")),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		waitLocation(s.gatewayURL+"/library/Q3%20report?view=1"),
	)
	checkSessionCookie(t, tb.cookies(t, gatewayHost)[sessionCookie])
	if got := tb.cookies(t, aliasHost); len(got) != 0 {
		t.Errorf("cookies on the alias %s: %v, want none", aliasHost, got)
	}
	if got := loginCount(t, s.registry, "contoso", "sp", "success", "none"); got != 1 {
		t.Errorf(`sso_gateway_logins_total{tenant="contoso",flow="sp",result="success"} = %g, want 1`, got)
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}
	if got := counter(t, s.registry, "sso_gateway_rejected_requests_total", map[string]string{"reason": "misdirected"}); got < 1 {
		t.Errorf(`sso_gateway_rejected_requests_total{reason="misdirected"} = %g, want at least 1`, got)
	}
}
