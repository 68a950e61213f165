package samlsp

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// duplicates is sso_gateway_session_rejections_total{reason="duplicate_cookie"}.
func (f *fixture) duplicates() float64 {
	return testutil.ToFloat64(f.p.metrics.sessionRejections[rejectDuplicate])
}

// authenticateLines presents these Cookie header lines, in this order, on
// a request with a correlation ID.
func (f *fixture) authenticateLines(lines ...string) (*Session, bool) {
	req := httptest.NewRequest(http.MethodGet, "https://docs.example.com/docs/a", nil)
	for _, l := range lines {
		req.Header.Add("Cookie", l)
	}
	return f.p.Authenticate(req.WithContext(reqinfo.WithCorrelationID(req.Context(), "corr-dup-1")))
}

// TestDuplicateSessionCookie: a request that names the session cookie, or
// one of its pieces, more than once has no session, however the names are
// spread over the Cookie header lines and whatever the values; the
// rejection is counted and logged without the values. Names that only look
// alike are not duplicates.
func TestDuplicateSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// public is the fixture's public URL; https if empty.
		public string
		// split signs in with a session in two pieces.
		split bool
		// lines returns the Cookie header lines, from the pieces of a
		// fresh session.
		lines func(pieces []*http.Cookie) []string
		dup   bool
	}{
		{name: "once", lines: func(p []*http.Cookie) []string { return []string{pair(p[0])} }},
		{name: "once, among the application's cookies, over two lines", lines: func(p []*http.Cookie) []string {
			return []string{"app=1; " + pair(p[0]), "theme=dark"}
		}},
		{name: "once, beside the name without __Host-", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + sessionCookie + "=x"}
		}},
		{name: "once, beside names that only look alike", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_9=x; __Host-ssogw_sessionx=y; __Host-ssogw_session_=z; __Secure-ssogw_session=w"}
		}},
		{name: "once, beside a piece it does not use", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_3=stale"}
		}},
		{name: "split, each piece once", split: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]), pair(p[1])}
		}},
		{name: "the same cookie twice in one line", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + pair(p[0])}
		}},
		{name: "a planted copy first", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{p[0].Name + "=planted; " + pair(p[0])}
		}},
		{name: "a planted copy last", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + p[0].Name + "=planted"}
		}},
		{name: "across two Cookie lines", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{"app=1; " + pair(p[0]), "theme=dark; " + p[0].Name + "=planted"}
		}},
		{name: "a copy with spaces around its name", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + ";  " + p[0].Name + " =planted"}
		}},
		{name: "a copy whose value net/http would skip", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + p[0].Name + `=bad\value`}
		}},
		{name: "a piece of a split session twice", split: true, dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + pair(p[1]), p[1].Name + "=planted"}
		}},
		{name: "a piece the session does not use, twice", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_2=a; __Host-ssogw_session_2=b"}
		}},
		{name: "plain http, once", public: "http://docs.example.com", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-" + sessionCookie + "=x"}
		}},
		{name: "plain http, twice", public: "http://docs.example.com", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]), sessionCookie + "=planted"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			public := tt.public
			if public == "" {
				public = "https://docs.example.com"
			}
			f := newFixture(t, withPublicURL(public))
			var log syncbuf.Buffer
			f.p.log = slog.New(slog.NewTextHandler(&log, nil))
			var change func(*samltest.Response)
			if tt.split {
				change = withGroups(f, acme, groupsForChunks(t, f, 2)...)
			}
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, change), ""))
			var pieces []*http.Cookie
			for _, ck := range rec.Result().Cookies() {
				if strings.Contains(ck.Name, sessionCookie) && ck.MaxAge >= 0 && ck.Value != "" {
					pieces = append(pieces, ck)
				}
			}
			slices.SortFunc(pieces, func(a, b *http.Cookie) int { return strings.Compare(a.Name, b.Name) })
			if want := map[bool]int{false: 1, true: 2}[tt.split]; len(pieces) != want {
				t.Fatalf("signed in with %d session cookies, want %d", len(pieces), want)
			}
			lines := tt.lines(pieces)
			_, ok := f.authenticateLines(lines...)
			if ok == tt.dup {
				t.Fatalf("Cookie %q: got a session %t, want %t", lines, ok, !tt.dup)
			}
			want := map[bool]float64{false: 0, true: 1}[tt.dup]
			if got := f.duplicates(); got != want {
				t.Errorf(`sso_gateway_session_rejections_total{reason="duplicate_cookie"}: got %v, want %v`, got, want)
			}
			if !tt.dup {
				return
			}
			logged := log.String()
			if !strings.Contains(logged, "correlation_id=corr-dup-1") || !strings.Contains(logged, "more than once") {
				t.Errorf("got log %q, want a line with the correlation ID", logged)
			}
			for _, ck := range pieces {
				if strings.Contains(logged, ck.Value) {
					t.Errorf("the log shows the value of %s", ck.Name)
				}
			}
			if strings.Contains(logged, "planted") {
				t.Errorf("the log shows the planted value: %s", logged)
			}
		})
	}
}

func pair(ck *http.Cookie) string { return ck.Name + "=" + ck.Value }

// setCookies returns rec's Set-Cookie headers, as lines.
func setCookies(rec *httptest.ResponseRecorder) []string { return rec.Header().Values("Set-Cookie") }

// TestLoginRedirectExpiresDuplicates: sending a browser to sign in after a
// duplicated session cookie expires every copy the gateway can reach: on
// https the one cookie a __Host- name allows and its partitioned twin; on
// plain http, host-only and for the host's domains, at "/" and the
// shortest prefixes of the path. Without a duplicate, nothing is expired.
func TestLoginRedirectExpiresDuplicates(t *testing.T) {
	t.Parallel()
	const attrs, secure = "HttpOnly; SameSite=Lax", "HttpOnly; Secure; SameSite=Lax"
	tests := []struct {
		name, public, target string
		cookies              []string
		want                 []string
	}{
		{"https, no duplicate", "https://docs.example.com", "https://docs.example.com/docs/deep/page",
			[]string{"__Host-ssogw_session=a; app=1"}, nil},
		{"https", "https://docs.example.com", "https://docs.example.com/docs/deep/page",
			[]string{"__Host-ssogw_session=a", "__Host-ssogw_session=b"}, []string{
				"__Host-ssogw_session=; Path=/; Max-Age=0; " + secure,
				"__Host-ssogw_session=; Path=/; Max-Age=0; " + secure + "; Partitioned",
			}},
		{"https, a piece", "https://docs.example.com", "https://docs.example.com/",
			[]string{"__Host-ssogw_session=a; __Host-ssogw_session_1=b; __Host-ssogw_session_1=c"}, []string{
				"__Host-ssogw_session_1=; Path=/; Max-Age=0; " + secure,
				"__Host-ssogw_session_1=; Path=/; Max-Age=0; " + secure + "; Partitioned",
			}},
		{"http, deep path", "http://docs.example.com", "http://docs.example.com/docs/deep/page?x=1",
			[]string{"ssogw_session=a; ssogw_session=b"}, []string{
				"ssogw_session=; Path=/; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs/deep; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/; Domain=docs.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs; Domain=docs.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs/deep; Domain=docs.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/; Domain=example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs; Domain=example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/docs/deep; Domain=example.com; Max-Age=0; " + attrs,
			}},
		{"http, a file at the root of a deep host", "http://a.b.c.example.com", "http://a.b.c.example.com/page",
			[]string{"ssogw_session=a; ssogw_session=b"}, []string{
				"ssogw_session=; Path=/; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/page; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/; Domain=a.b.c.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/page; Domain=a.b.c.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/; Domain=example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/page; Domain=example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/; Domain=c.example.com; Max-Age=0; " + attrs,
				"ssogw_session=; Path=/page; Domain=c.example.com; Max-Age=0; " + attrs,
			}},
		{"http, an IP address and a path with ;", "http://127.0.0.1:8080", "http://127.0.0.1:8080/a;b/c",
			[]string{"ssogw_session=a; ssogw_session=b"}, []string{
				"ssogw_session=; Path=/; Max-Age=0; " + attrs,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, withPublicURL(tt.public))
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			for _, l := range tt.cookies {
				req.Header.Add("Cookie", l)
			}
			rec := httptest.NewRecorder()
			f.p.LoginRedirect(rec, req)
			if rec.Code != http.StatusFound {
				t.Fatalf("got status %d, want 302", rec.Code)
			}
			var got []string
			for _, line := range setCookies(rec) {
				if strings.Contains(line, sessionCookie) {
					got = append(got, line)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got Set-Cookie\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// jarBrowser is a client with a cookie jar, which keeps cookies by name,
// domain and path as browsers do and sends them longest path first, over
// the fixture's provider wired as the proxy wires it: the SAML endpoints
// served, any other page authenticated or sent to sign in.
type jarBrowser struct {
	f   *fixture
	jar *cookiejar.Jar
	// redirects and acs count the responses that sent the browser to
	// sign in, and the ACS posts.
	redirects, acs int
}

// do sends a request for target with the jar's cookies, stores the cookies
// of the response, and returns it. For a page outside the SAML endpoints,
// it also reports the session.
func (b *jarBrowser) do(t *testing.T, method, target string, form url.Values) (*httptest.ResponseRecorder, *Session) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range b.jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	var s *Session
	switch {
	case strings.HasPrefix(req.URL.Path, PathPrefix):
		if method == http.MethodPost {
			b.acs++
		}
		reqinfo.Correlate(b.f.p).ServeHTTP(rec, req)
	default:
		var ok bool
		if s, ok = b.f.p.Authenticate(req); !ok {
			b.redirects++
			b.f.p.LoginRedirect(rec, req)
		}
	}
	b.jar.SetCookies(req.URL, rec.Result().Cookies())
	return rec, s
}

// plant stores a cookie as a page at from could set it.
func (b *jarBrowser) plant(t *testing.T, from string, ck *http.Cookie) {
	t.Helper()
	u, err := url.Parse(from)
	if err != nil {
		t.Fatal(err)
	}
	b.jar.SetCookies(u, []*http.Cookie{ck})
}

// sessionCopies counts the session cookies the jar would send to target.
func (b *jarBrowser) sessionCopies(t *testing.T, target string) int {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ck := range b.jar.Cookies(u) {
		if ck.Name == sessionCookie {
			n++
		}
	}
	return n
}

// TestDuplicateSessionNoLoginLoop: on plain http, a browser holding a
// session and copies of its cookie planted by a sibling host (for the
// parent domain) and by a page (for a deeper path) is sent to sign in once,
// signs in, and reaches the page with one session cookie: no loop. A copy
// planted again while the browser is at the IdP is expired by the ACS.
func TestDuplicateSessionNoLoginLoop(t *testing.T) {
	t.Parallel()
	for _, replant := range []bool{false, true} {
		t.Run(map[bool]string{false: "planted before", true: "planted again during the login"}[replant], func(t *testing.T) {
			t.Parallel()
			const origin = "http://docs.example.com"
			page := origin + "/docs/deep/page"
			f := newFixture(t, withPublicURL(origin))
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			b := &jarBrowser{f: f, jar: jar}
			sibling := &http.Cookie{Name: sessionCookie, Value: "planted-by-a-sibling", Domain: "example.com", Path: "/"}

			// Signed in, then copies planted.
			b.do(t, http.MethodPost, origin+LoginPath+acme, f.idps[acme].PostForm(t, f.response(acme, nil), ""))
			if _, s := b.do(t, http.MethodGet, page, nil); s == nil {
				t.Fatal("no session after the first login")
			}
			b.plant(t, "http://evil.example.com/", sibling)
			b.plant(t, origin+"/docs/deep/x", &http.Cookie{Name: sessionCookie, Value: "planted-by-a-page", Path: "/docs/deep"})
			if n := b.sessionCopies(t, page); n != 3 {
				t.Fatalf("the browser sends %d session cookies, want 3", n)
			}

			// Refused, sent to sign in, the copies gone.
			rec, s := b.do(t, http.MethodGet, page, nil)
			if s != nil || rec.Code != http.StatusFound {
				t.Fatalf("with planted copies: got status %d and session %v, want 302 and none", rec.Code, s)
			}
			if n := b.sessionCopies(t, page); n != 0 {
				t.Errorf("after the redirect to sign in, the browser still sends %d session cookies", n)
			}
			login, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if replant {
				b.plant(t, "http://evil.example.com/", sibling)
			}

			// The login, as the browser does it.
			rec, _ = b.do(t, http.MethodGet, origin+login.String(), nil)
			if rec.Code != http.StatusFound {
				t.Fatalf("start login: got status %d, want 302", rec.Code)
			}
			idp, err := url.Parse(rec.Header().Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			requestID := authnRequestID(t, idp)
			form := f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.InResponseTo = requestID }), idp.Query().Get("RelayState"))
			rec, _ = b.do(t, http.MethodPost, origin+LoginPath+acme, form)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/docs/deep/page" {
				t.Fatalf("ACS: got status %d to %q, want 303 to the page", rec.Code, rec.Header().Get("Location"))
			}

			// Back at the page, signed in, once.
			if n := b.sessionCopies(t, page); n != 1 {
				t.Errorf("after the login, the browser sends %d session cookies, want 1", n)
			}
			if _, s := b.do(t, http.MethodGet, page, nil); s == nil {
				t.Fatal("no session at the page after signing in again: the browser would loop")
			}
			if b.redirects != 1 || b.acs != 2 {
				t.Errorf("got %d redirects to sign in and %d ACS posts, want 1 and 2 (the first login and the second)", b.redirects, b.acs)
			}
			if got := f.duplicates(); got != 1 {
				t.Errorf(`sso_gateway_session_rejections_total{reason="duplicate_cookie"}: got %v, want 1`, got)
			}
		})
	}
}

// authnRequestID returns the ID of the AuthnRequest in a redirect to the
// IdP.
func authnRequestID(t *testing.T, u *url.URL) string {
	t.Helper()
	doc := samltest.ParseXML(t, inflate(t, u.Query().Get("SAMLRequest")))
	return doc.Root().SelectAttrValue("ID", "")
}

// TestACSExpiresOldSessions: a login whose ACS request carries the session
// cookie expires every copy the gateway can reach before it sets the new
// session, so that the new one is the copy left standing; a login without
// one expires nothing more than before.
func TestACSExpiresOldSessions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, public, cookie string
		// want are the Set-Cookie lines naming the first piece, in order,
		// with the new session's value as "NEW".
		want []string
	}{
		{"https, no session cookie", "https://docs.example.com", "", []string{
			"__Host-ssogw_session=NEW"}},
		{"https", "https://docs.example.com", "__Host-ssogw_session=old", []string{
			"__Host-ssogw_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
			"__Host-ssogw_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax; Partitioned",
			"__Host-ssogw_session=NEW"}},
		{"http, to a deep page", "http://docs.example.com", "ssogw_session=old", []string{
			"ssogw_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs/deep; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/; Domain=docs.example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs; Domain=docs.example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs/deep; Domain=docs.example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/; Domain=example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs; Domain=example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=; Path=/docs/deep; Domain=example.com; Max-Age=0; HttpOnly; SameSite=Lax",
			"ssogw_session=NEW"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, withPublicURL(tt.public))
			l := f.startLogin(acme, "/docs/deep/page")
			form := f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState)
			req := httptest.NewRequest(http.MethodPost, tt.public+LoginPath+acme, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: l.tracker.Name, Value: l.tracker.Value})
			if tt.cookie != "" {
				req.Header.Add("Cookie", tt.cookie)
			}
			rec := f.serve(req)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
			}
			var got []string
			for _, line := range setCookies(rec) {
				name, _, _ := strings.Cut(line, "=")
				if name != f.p.currentSettings().cookies.sessionChunkName(0) {
					continue
				}
				if !strings.Contains(line, "Max-Age=0") {
					line = name + "=NEW"
				}
				got = append(got, line)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got Set-Cookie\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestScanSessionAllocatesNothing: reading a session in one piece, and
// noticing a duplicate, costs Authenticate no allocation.
func TestScanSessionAllocatesNothing(t *testing.T) {
	h := http.Header{"Cookie": {
		"app=1; __Host-ssogw_session=" + strings.Repeat("v", 200) + "; theme=dark",
		"__Host-ssogw_session_1=x; __Host-ssogw_session=planted",
	}}
	c := cookies{secure: true}
	var sc sessionCookies
	if n := testing.AllocsPerRun(100, func() { sc = c.scanSession(h) }); n != 0 {
		t.Errorf("scanSession: got %v allocations, want 0", n)
	}
	if sc.duplicated != 1 || sc.seen != 3 {
		t.Errorf("got duplicated %b seen %b, want 1 and 11", sc.duplicated, sc.seen)
	}
	h["Cookie"] = h["Cookie"][:1]
	if n := testing.AllocsPerRun(100, func() { _ = c.readSession(&http.Request{Header: h}) }); n != 0 {
		t.Errorf("readSession: got %v allocations, want 0", n)
	}
}
