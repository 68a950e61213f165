package cluster

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// Paths and names the documents (README.md, deploy/) name.
const (
	loginPath     = "/auth/api/v1/saml/login/" // + Customer_ID: the ACS for POST
	sessionCookie = "__Host-ssogw_session"     // and _1, _2, ... when split
	gatewayCookie = "ssogw_"                   // in every cookie name of the gateway
)

// client is a browser without a cookie jar: the gateway's cookies are
// Secure and __Host- prefixed (public_url is https), which a jar would
// never send over the plain HTTP that these tests speak behind the
// imagined TLS terminator, so the tests carry the Cookie header
// themselves. It does not follow redirects.
var client = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{MaxIdleConnsPerHost: 32},
	Timeout:       30 * time.Second,
}

// reply is a response read in full.
type reply struct {
	code   int
	header http.Header
	body   string
}

func (r reply) String() string {
	body := r.body
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("%d %q", r.code, body)
}

// upstream decodes the upstream's JSON answer; ok is false when the reply
// did not come from the upstream.
func (r reply) upstream() (upstreamReply, bool) {
	var u upstreamReply
	if r.code != http.StatusOK || r.header.Get("X-Upstream") != "docs" {
		return u, false
	}
	return u, json.Unmarshal([]byte(r.body), &u) == nil
}

// do sends one request with the public Host, the cookie header and the
// Accept header given, and reads the whole answer.
func do(method, rawURL, cookie, accept string, form url.Values) (reply, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		return reply{}, err
	}
	req.Host = publicHost
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("read body: %w", err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// session is a signed-in user as a browser holds it: the Cookie header.
type session struct {
	user   string
	tenant string
	cookie string
	// issuer and key say which replica made it and with which session
	// key configured first there, for messages.
	issuer string
	key    string
}

func (s *session) String() string {
	return fmt.Sprintf("%s's session from %s (%s)", s.user, s.issuer, s.key)
}

// loginForm is what the IdP's auto-submitting page posts to the tenant's
// ACS: an IdP-initiated response for user, signed by idp.
func loginForm(t testing.TB, idp *samltest.IDP, tenant, user string) url.Values {
	t.Helper()
	acs := publicURL + loginPath + tenant
	return idp.PostForm(t, samltest.Response{Destination: acs, Audience: acs, NameID: user}, "")
}

// postACS posts form to the tenant's ACS at base (a replica or the load
// balancer), as the browser does.
func postACS(base, tenant string, form url.Values) (reply, error) {
	return do(http.MethodPost, base+loginPath+tenant, "", "text/html", form)
}

// sessionCookieHeader returns the Cookie header a browser would send back
// for the session cookies r sets, or "" if it sets none.
func sessionCookieHeader(r reply) string {
	return cookieHeader(r, sessionCookie)
}

// login signs user in at g through tenant's ACS and returns the session.
func login(t testing.TB, g *gateway, idp *samltest.IDP, tenant, user string) *session {
	t.Helper()
	r, err := postACS(g.url(), tenant, loginForm(t, idp, tenant, user))
	if err != nil {
		t.Fatalf("login of %s at %s: %v\n%s", user, g.name, err, g.tail(15))
	}
	cookie := sessionCookieHeader(r)
	if r.code != http.StatusSeeOther || cookie == "" {
		t.Fatalf("login of %s at %s: got %v with cookies %q, want 303 with a session cookie\n%s",
			user, g.name, r, r.header.Values("Set-Cookie"), g.tail(15))
	}
	return &session{user: user, tenant: tenant, cookie: cookie, issuer: g.name, key: g.currentSpec().keys[0].name}
}

// whoami sends s (nil: no cookie) to base as an XHR would: with
// Accept: application/json, so that a missing session is a 401 rather
// than a redirect to sign in.
func whoami(base string, s *session) (reply, error) {
	cookie := ""
	if s != nil {
		cookie = s.cookie
	}
	return do(http.MethodGet, base+"/whoami", cookie, "application/json", nil)
}

// checkValid fails t unless s reaches the upstream through base as its
// user, without the gateway's cookies.
func checkValid(t testing.TB, where, base string, s *session) {
	t.Helper()
	if err := validAt(base, s); err != nil {
		t.Errorf("%s at %s: %v", s, where, err)
	}
}

// validAt returns why s is not a valid session at base, or nil.
func validAt(base string, s *session) error {
	r, err := whoami(base, s)
	if err != nil {
		return err
	}
	u, ok := r.upstream()
	switch {
	case !ok:
		return fmt.Errorf("got %v, want 200 from the upstream", r)
	case u.User != s.user || u.Tenant != s.tenant:
		return fmt.Errorf("upstream got X-Remote-User %q, X-Remote-Tenant %q, want %q, %q", u.User, u.Tenant, s.user, s.tenant)
	case strings.Contains(u.Cookie, gatewayCookie):
		return fmt.Errorf("upstream got the gateway's cookies: %q", u.Cookie)
	}
	return nil
}

// tenantCookie is the cookie that remembers a browser's organisation for a
// year.
const tenantCookie = "__Host-ssogw_tenant"

// cookieHeader returns the Cookie header a browser would send back for the
// cookies r sets whose names contain part.
func cookieHeader(r reply, part string) string {
	resp := http.Response{Header: r.header}
	var pairs []string
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, part) && c.Value != "" {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	return strings.Join(pairs, "; ")
}

// authnRequestID matches the ID of the AuthnRequest.
var authnRequestID = regexp.MustCompile(`<(?:samlp:)?AuthnRequest[^>]* ID="([^"]+)"`)

// spLogin signs user in the way a browser does when it starts at the
// gateway: GET the tenant's login URL at start (which seals the request in
// a tracking cookie and redirects to the IdP), then the IdP's answer to
// that request, with the RelayState and the tracking cookie, posted to the
// ACS at finish. It returns the ACS's reply.
func spLogin(t testing.TB, start, finish *gateway, idp *samltest.IDP, tenant, user string) reply {
	t.Helper()
	r, err := do(http.MethodGet, start.url()+loginPath+tenant, "", "text/html", nil)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if r.code != http.StatusFound || err != nil {
		t.Fatalf("login start at %s: got %v, Location %q; want 302 to the IdP\n%s", start.name, r, r.header.Get("Location"), start.tail(10))
	}
	tracker := cookieHeader(r, "ssogw_req_")
	deflated, err := base64.StdEncoding.DecodeString(loc.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatalf("SAMLRequest: %v", err)
	}
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatalf("SAMLRequest: inflate: %v", err)
	}
	m := authnRequestID.FindSubmatch(xml)
	if m == nil || tracker == "" {
		t.Fatalf("login start at %s: no AuthnRequest ID in %q or no tracking cookie in %q", start.name, xml, r.header.Values("Set-Cookie"))
	}
	acs := publicURL + loginPath + tenant
	form := idp.PostForm(t, samltest.Response{Destination: acs, Audience: acs, InResponseTo: string(m[1]), NameID: user}, loc.Query().Get("RelayState"))
	r, err = do(http.MethodPost, finish.url()+loginPath+tenant, tracker, "text/html", form)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// spSession is spLogin that must succeed.
func spSession(t testing.TB, start, finish *gateway, idp *samltest.IDP, tenant, user string) *session {
	t.Helper()
	r := spLogin(t, start, finish, idp, tenant, user)
	cookie := sessionCookieHeader(r)
	if r.code != http.StatusSeeOther || cookie == "" {
		t.Fatalf("login of %s started at %s (keys %s), finished at %s (keys %s): got %v; want 303 with a session cookie\n%s",
			user, start.name, keyNames(start.currentSpec().keys), finish.name, keyNames(finish.currentSpec().keys), r, finish.tail(10))
	}
	return &session{user: user, tenant: tenant, cookie: cookie, issuer: finish.name, key: finish.currentSpec().keys[0].name}
}
