package e2e

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

// deepPage is a page of the upstream below two levels of path: a JSON
// document, which Chromium shows in a <pre>.
const deepPage = "/documents/Engagement%20Letter.txt/sha256"

// The gateway's session cookie on plain http, where it has no prefix.
const plainSessionCookie = "ssogw_session"

// TestBrowserDuplicateSessionCookie: a second session cookie planted in the
// browser beside the gateway's makes the next request have no session, and
// the browser signs in again and reaches the page it asked for, once,
// without looping.
//
// What can be planted depends on the scheme. On https the session cookie
// is __Host-ssogw_session, HttpOnly, and Chromium refuses a script's copy
// for a deeper path (__Host- means Path=/), for a parent domain (__Host-
// means no Domain), or in its place (HttpOnly); a copy without the prefix
// is another cookie, which the gateway ignores. One copy gets through: a
// script of the gateway's own origin (an upstream page) may set it with
// the Partitioned attribute, in another storage partition, and Chromium
// then sends both. On plain http a sibling host (here the IdP's) can set
// the name for the parent domain, and a page of the gateway's origin for a
// deeper path.
func TestBrowserDuplicateSessionCookie(t *testing.T) {
	t.Run("https", func(t *testing.T) {
		s := startStack(t)
		tb := startBrowser(t, s)
		defer tb.dumpOnFailure(t)
		signInAt(t, s, tb, deepPage)

		tb.do(t, "open "+whoamiPath, chromedp.Navigate(s.gatewayURL+whoamiPath), chromedp.WaitVisible(chromedp.CSS("pre")))
		for _, js := range []string{
			sessionCookie + "=deeper; Secure; Path=/documents",
			sessionCookie + "=in-place; Secure; Path=/",
			sessionCookie + "=partitioned; Secure; Path=/; Partitioned",
			"ssogw_session=unprefixed; Secure; Path=/documents",
		} {
			tb.setCookieByScript(t, js)
		}
		// What a script of the origin could not set, CDP could not either
		// for a parent domain.
		secure := true
		_, err := chromedp.Call(tb.flow, network.SetCookie, network.SetCookieParams{
			Name: sessionCookie, Value: "parent-domain", Domain: "." + gatewayHost, Path: "/", Secure: &secure,
		})
		if err == nil {
			t.Errorf("Chromium stored %s for a parent domain", sessionCookie)
		}

		copies := tb.cookieCopies(t, sessionCookie)
		if got, want := len(copies), 2; got != want {
			t.Fatalf("the browser holds %d %s cookies (%s), want the gateway's and the partitioned one", got, sessionCookie, describe(copies))
		}
		for _, c := range copies {
			if c.Value != "partitioned" && !c.HTTPOnly {
				t.Errorf("a script replaced the gateway's cookie: %s", describe(copies))
			}
		}
		checkSignsInAgain(t, s, tb, sessionCookie)
	})

	t.Run("plain http", func(t *testing.T) {
		s := startStackWith(t, stackOptions{plainHTTP: true})
		tb := startBrowser(t, s)
		defer tb.dumpOnFailure(t)
		signInAt(t, s, tb, deepPage)

		// A page of the gateway's origin sets the name for a deeper path
		// (the session cookie is HttpOnly: not in its place)...
		tb.do(t, "open "+whoamiPath, chromedp.Navigate(s.gatewayURL+whoamiPath), chromedp.WaitVisible(chromedp.CSS("pre")))
		tb.setCookieByScript(t, plainSessionCookie+"=in-place; Path=/")
		tb.setCookieByScript(t, plainSessionCookie+"=from-a-page; Path=/documents")
		// ...and a sibling host for the parent domain.
		tb.do(t, "open the IdP, a sibling host", chromedp.Navigate(s.idpURL+"/"), chromedp.WaitReady(chromedp.CSS("body")))
		tb.setCookieByScript(t, plainSessionCookie+"=from-a-sibling; Domain=cloudimanage.test; Path=/")

		if copies := tb.cookieCopies(t, plainSessionCookie); len(copies) != 3 {
			t.Fatalf("the browser holds %d %s cookies (%s), want the gateway's and the two planted", len(copies), plainSessionCookie, describe(copies))
		}
		checkSignsInAgain(t, s, tb, plainSessionCookie)
	})
}

// signInAt signs B.Simon in at contoso from the gateway's login URL, with
// page as the return_to, and checks that the browser lands there.
func signInAt(t *testing.T, s *stack, tb *tab, page string) {
	t.Helper()
	tb.do(t, "start the login at contoso",
		chromedp.Navigate(s.gatewayURL+acsPath+"contoso?"+url.Values{"return_to": {page}}.Encode()),
		chromedp.WaitVisible(chromedp.ID("user")))
	tb.do(t, "sign in at the IdP and come back through the ACS",
		chromedp.SendKeys(chromedp.ID("user"), "B.Simon"),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS("pre")),
	)
	if got, want := tb.location(t), s.gatewayURL+page; got != want {
		t.Fatalf("after login, landed on %q, want %q", got, want)
	}
}

// checkSignsInAgain opens deepPage with the planted copies of name in the
// browser, and checks that the gateway refused the duplicate once, sent the
// browser to sign in once, and that it came back (the IdP still knows
// B.Simon) to the page with one session cookie; and that the next visit
// needs no login.
func checkSignsInAgain(t *testing.T, s *stack, tb *tab, name string) {
	t.Helper()
	before := loginCount(t, s.registry, "contoso", "sp", "success", "none")
	tb.do(t, "open "+deepPage+" with the planted copies",
		chromedp.Navigate(s.gatewayURL+deepPage), chromedp.WaitVisible(chromedp.CSS("pre")))
	if got, want := tb.location(t), s.gatewayURL+deepPage; got != want {
		t.Errorf("landed on %q, want %q", got, want)
	}
	if got := counter(t, s.registry, "sso_gateway_session_rejections_total", map[string]string{"reason": "duplicate_cookie"}); got != 1 {
		t.Errorf(`sso_gateway_session_rejections_total{reason="duplicate_cookie"}: got %v, want 1`, got)
	}
	if got := counter(t, s.registry, "sso_gateway_requests_total", map[string]string{"outcome": "login_redirect"}); got != 1 {
		t.Errorf(`sso_gateway_requests_total{outcome="login_redirect"}: got %v, want 1 (more is a loop)`, got)
	}
	if got := loginCount(t, s.registry, "contoso", "sp", "success", "none") - before; got != 1 {
		t.Errorf("logins at the ACS: got %v, want 1", got)
	}
	if copies := tb.cookieCopies(t, name); len(copies) != 1 || !copies[0].HTTPOnly || copies[0].Path != "/" {
		t.Errorf("the browser holds %s, want the gateway's new cookie alone", describe(copies))
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}

	tb.do(t, "open "+deepPage+" again", chromedp.Navigate(s.gatewayURL+deepPage), chromedp.WaitVisible(chromedp.CSS("pre")))
	if got := counter(t, s.registry, "sso_gateway_requests_total", map[string]string{"outcome": "login_redirect"}); got != 1 {
		t.Errorf("the next visit was sent to sign in: %v redirects", got)
	}
}

// setCookieByScript sets a cookie with document.cookie in the tab's page,
// as a script of that page could; the browser may refuse it silently.
func (tb *tab) setCookieByScript(t *testing.T, cookie string) {
	t.Helper()
	if _, err := chromedp.Run(tb.flow, chromedp.Evaluate[string]("document.cookie = "+jsString(cookie))); err != nil {
		t.Fatalf("document.cookie = %q: %v", cookie, err)
	}
}

// jsString quotes s for a JavaScript string literal; s holds no quotes or
// backslashes.
func jsString(s string) string { return `"` + s + `"` }

// cookieCopies returns every cookie the browser holds named name, in any
// domain, path or partition.
func (tb *tab) cookieCopies(t *testing.T, name string) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tb.flow, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	var out []*network.Cookie
	for _, c := range res.Cookies {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// describe lists cookies by value, domain, path and partition.
func describe(cookies []*network.Cookie) string {
	var parts []string
	for _, c := range cookies {
		p := c.Value
		if len(p) > 12 {
			p = p[:12] + "..."
		}
		p += " (domain " + c.Domain + ", path " + c.Path
		if c.HTTPOnly {
			p += ", HttpOnly"
		}
		if c.PartitionKey != nil {
			p += ", partitioned"
		}
		parts = append(parts, p+")")
	}
	return strings.Join(parts, "; ")
}
