package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sso-gateway/sso-gateway/internal/demo/idp"
)

// bigUser is a user in 150 groups, the most Entra puts in a SAML token.
const (
	bigUsername = "Many.Groups"
	bigEmail    = "Many.Groups@contoso.example"
	bigGroups   = 150
)

// startBigTokenStack is startStack with one more IdP user, bigUser, whose
// groups it returns.
func startBigTokenStack(t *testing.T) (*stack, []string) {
	t.Helper()
	groups := make([]string, bigGroups)
	for i := range groups {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		h := hex.EncodeToString(b)
		groups[i] = h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	s := startStack(t, idp.User{
		Username:    bigUsername,
		Email:       bigEmail,
		DisplayName: "Many Groups",
		GivenName:   "Many",
		Surname:     "Groups",
		Groups:      groups,
	})
	return s, groups
}

// TestBrowserBigToken: Chromium stores the session of a user in 150
// groups, split over several cookies, and sends it back whole: the upstream
// page shows every group.
func TestBrowserBigToken(t *testing.T) {
	s, groups := startBigTokenStack(t)
	tb := startBrowser(t, s)
	defer tb.dumpOnFailure(t)

	// Chromium reports every Set-Cookie it refuses (too large, bad prefix).
	var mu sync.Mutex
	var refused []string
	err := chromedp.Listen(tb.ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceivedExtraInfo); ok {
			for _, c := range e.BlockedCookies {
				if strings.Contains(c.CookieLine, "ssogw_session") {
					mu.Lock()
					refused = append(refused, fmtBlocked(c))
					mu.Unlock()
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	login := s.gatewayURL + acsPath + "contoso?return_to=%2F%3Fbig%3D1"
	tb.do(t, "start the login at contoso", chromedp.Navigate(login), chromedp.WaitVisible(chromedp.ID("user")))
	tb.do(t, "sign in at the IdP and come back through the ACS",
		chromedp.SendKeys(chromedp.ID("user"), bigUsername),
		chromedp.SendKeys(chromedp.ID("password"), s.password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("remote-groups")),
	)
	if got, want := tb.location(t), s.gatewayURL+"/?big=1"; got != want {
		t.Errorf("after login, landed on %q, want %q", got, want)
	}
	if got, want := tb.text(t, "remote-groups"), strings.Join(groups, ","); got != want {
		t.Errorf("#remote-groups: got %d groups %q, want the %d sent, in order", len(strings.Split(got, ",")), got, len(groups))
	}
	if got := tb.text(t, "remote-user"); got != bigEmail {
		t.Errorf("#remote-user: got %q, want %q", got, bigEmail)
	}

	res, err := chromedp.Call(tb.flow, network.GetCookies, network.GetCookiesParams{URLs: []string{s.gatewayURL + "/"}})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	var pieces []*network.Cookie
	total := 0
	for _, c := range res.Cookies {
		total += len(c.Name) + 1 + len(c.Value) + 2 // "name=value; "
		if c.Name == sessionCookie || strings.HasPrefix(c.Name, sessionCookie+"_") {
			pieces = append(pieces, c)
		}
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].Name < pieces[j].Name })
	if len(pieces) < 2 {
		t.Fatalf("browser holds %d session cookies, want the session split in pieces (2)", len(pieces))
	}
	for i, c := range pieces {
		want := sessionCookie
		if i > 0 {
			want += "_" + string(rune('0'+i))
		}
		if c.Name != want {
			t.Errorf("session piece %d: got %s, want %s", i, c.Name, want)
		}
		if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax || c.Path != "/" || c.Size >= 4096 {
			t.Errorf("%s: HttpOnly=%t Secure=%t SameSite=%q Path=%q Size=%d, want HttpOnly, Secure, Lax, / and under 4096",
				c.Name, c.HTTPOnly, c.Secure, c.SameSite, c.Path, c.Size)
		}
	}
	if want := string(rune('0'+len(pieces))) + "~"; !strings.HasPrefix(pieces[0].Value, want) {
		t.Errorf("%s starts %.8q, want the count %q", pieces[0].Name, pieces[0].Value, want)
	}
	// With a typical cookie of the application's own, the Cookie header
	// stays under the 8 KiB line limit of common proxies.
	const upstreamCookie = 200
	if total+upstreamCookie >= 8<<10 {
		t.Errorf("the gateway's cookies and a %d-byte upstream cookie make a Cookie header of %d bytes, want under 8 KiB", upstreamCookie, total+upstreamCookie)
	}
	t.Logf("%d session pieces; every cookie for the gateway together: %d bytes", len(pieces), total)
	mu.Lock()
	if len(refused) > 0 {
		t.Errorf("Chromium refused session cookies: %q", refused)
	}
	mu.Unlock()

	// Another navigation carries every piece again.
	tb.do(t, "reload", chromedp.Navigate(s.gatewayURL+"/"), chromedp.WaitVisible(chromedp.ID("remote-groups")))
	if got := tb.text(t, "remote-groups"); got != strings.Join(groups, ",") {
		t.Errorf("#remote-groups after a reload: got %d groups, want %d", len(strings.Split(got, ",")), len(groups))
	}
	if got := loginCount(t, s.registry, "contoso", "sp", "success", "none"); got != 1 {
		t.Errorf(`sso_gateway_logins_total{tenant="contoso",flow="sp",result="success"} = %g, want 1`, got)
	}
	if failed := failedLogins(t, s.registry); len(failed) > 0 {
		t.Errorf("failed logins counted: %v, want none", failed)
	}
}

func fmtBlocked(c *network.BlockedSetCookieWithReason) string {
	line, _, _ := strings.Cut(c.CookieLine, "=")
	var reasons []string
	for _, r := range c.BlockedReasons {
		reasons = append(reasons, r.String())
	}
	return line + " " + strings.Join(reasons, ",")
}
