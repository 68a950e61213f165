package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/demo"
)

// tenantHost is a host of fabrikam's own, on a third registrable domain, as
// a customer's vanity host would be. fabrikam's Identifier and Reply URL
// stay on the gateway's public host.
const tenantHost = "docs.fabrikam.test"

// bindingPrefix starts the name of the cookie that binds a login started
// on a tenant host to the browser.
const bindingPrefix = "__Host-ssogw_ho_"

// TestBrowserTenantHost: B.Simon opens a deep link on fabrikam's own host
// without a session, signs in at the IdP, which posts to the Reply URL on
// the public host, and lands back on the deep link on the tenant host,
// signed in there and only there, with the identity reaching the
// upstream; then signs out there.
func TestBrowserTenantHost(t *testing.T) {
	s := startStackWith(t, stackOptions{tenantHosts: map[string][]string{"fabrikam": {tenantHost}}})
	tb := startBrowser(t, s)
	defer tb.dumpOnFailure(t)
	base := s.hostURL(t, tenantHost)

	deepLink := base + whoamiPath + "?from=deep-link"
	tb.do(t, "open "+deepLink, chromedp.Navigate(deepLink), chromedp.WaitVisible(chromedp.ID("user")))
	if got := tb.location(t); !strings.HasPrefix(got, s.idpURL+"/") {
		t.Fatalf("without a session, landed on %q, want the IdP at %s", got, s.idpURL)
	}
	// The login is bound to this browser on the tenant host, and tracked
	// on the public host, where the IdP will post.
	var bindings []*network.Cookie
	for name, c := range tb.cookies(t, tenantHost) {
		if strings.HasPrefix(name, bindingPrefix) {
			bindings = append(bindings, c)
		}
	}
	if len(bindings) != 1 {
		t.Fatalf("%d binding cookies on %s while at the IdP, want 1", len(bindings), tenantHost)
	}
	if c := bindings[0]; !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" {
		t.Errorf("%s: HttpOnly=%t Secure=%t SameSite=%q Path=%q, want HttpOnly, Secure, SameSite=Lax, Path=/",
			c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path)
	}
	trackers := 0
	for name := range tb.cookies(t, gatewayHost) {
		if strings.HasPrefix(name, trackerPrefix) {
			trackers++
		}
	}
	if trackers != 1 {
		t.Errorf("%d tracking cookies on %s while at the IdP, want 1", trackers, gatewayHost)
	}

	tb.do(t, "sign in at the IdP and come back through the ACS and the handoff",
		chromedp.SendKeys(chromedp.ID("user"), demo.Username),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		waitLocation(deepLink),
	)
	body, err := chromedp.Run(tb.flow, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("%s body %q: %v", whoamiPath, body, err)
	}
	for _, c := range []struct{ name, want string }{
		{"X-Remote-Tenant", "fabrikam"},
		{"X-Remote-User", demo.UserEmail},
		{"raw_query", "from=deep-link"},
	} {
		if got := seen[c.name]; got != c.want {
			t.Errorf("upstream saw %s %q, want %q", c.name, got, c.want)
		}
	}
	if got := seen["cookie"]; strings.Contains(got, "ssogw_") {
		t.Errorf("upstream saw the gateway's cookies: Cookie %q", got)
	}

	// Signed in on the tenant host only; nothing of the login is left.
	onHost := tb.cookies(t, tenantHost)
	checkSessionCookie(t, onHost[sessionCookie])
	if _, ok := onHost[tenantCookie]; !ok {
		t.Errorf("no %s cookie on %s", tenantCookie, tenantHost)
	}
	for name := range onHost {
		if strings.HasPrefix(name, bindingPrefix) {
			t.Errorf("binding cookie %s remains after the login", name)
		}
	}
	for name := range tb.cookies(t, gatewayHost) {
		if name == sessionCookie || strings.HasPrefix(name, trackerPrefix) {
			t.Errorf("cookie %s on the public host %s after the login", name, gatewayHost)
		}
	}
	if got := loginCount(t, s.registry, "fabrikam", "sp", "success", "none"); got != 1 {
		t.Errorf(`sso_gateway_logins_total{tenant="fabrikam",flow="sp",result="success"} = %g, want 1`, got)
	}
	if got := counter(t, s.registry, "sso_gateway_login_handoffs_total", map[string]string{"result": "success"}); got != 1 {
		t.Errorf(`sso_gateway_login_handoffs_total{result="success"} = %g, want 1`, got)
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}

	// The application's pages on the tenant host show the identity.
	tb.do(t, "open the start page on "+tenantHost, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.ID("remote-user")))
	checkIdentity(t, tb, "fabrikam")

	// Signing out there ends the session there, and signing in again
	// leads back there.
	tb.do(t, "sign out on "+tenantHost,
		chromedp.Navigate(base+logoutPath),
		chromedp.WaitVisible(chromedp.ID("message")),
	)
	if got, want := tb.location(t), base+logoutPath+"?slo_done="; !strings.HasPrefix(got, want) {
		t.Errorf("signed-out page at %q, want %q...", got, want)
	}
	// The IdP answered the LogoutRequest the public host sent for this
	// host's session: the page says the user is signed out there too.
	if msg := tb.text(t, "signed-out-at-idp"); !strings.Contains(msg, "signed out") {
		t.Errorf("#signed-out-at-idp = %q, want it to say the IdP signed the user out", msg)
	}
	if c, ok := tb.cookies(t, tenantHost)[sessionCookie]; ok {
		t.Errorf("session cookie still present on %s after logout: %+v", tenantHost, *c)
	}
	signIn, err := chromedp.Run(tb.flow, chromedp.Evaluate[string](`document.getElementById("signin").href`))
	if err != nil {
		t.Fatal(err)
	}
	if want := base + "/"; signIn != want {
		t.Errorf("Sign in again leads to %q, want %q", signIn, want)
	}
}

// waitLocation waits until the page's URL is want. It asks the browser
// again and again rather than polling inside the page, which every
// navigation of the redirect chain would interrupt.
func waitLocation(want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		for {
			if loc, err := chromedp.Location()(ctx, tgt); err == nil && loc == want {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", want, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// counter is the value of the counter name with these labels, or 0.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
