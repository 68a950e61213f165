package proxy_test

import (
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/proxy"
)

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://127.0.0.1:1")
	full := func() proxy.Options {
		return proxy.Options{
			Upstream: u,
			Auth:     &fakeAuth{},
			Metrics:  proxy.NewMetrics(prometheus.NewRegistry()),
		}
	}
	tests := []struct {
		name  string
		unset func(*proxy.Options)
	}{
		{"no upstream", func(o *proxy.Options) { o.Upstream = nil }},
		{"no authenticator", func(o *proxy.Options) { o.Auth = nil }},
		{"no metrics", func(o *proxy.Options) { o.Metrics = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := full()
			tt.unset(&o)
			p, err := proxy.New(o)
			if err == nil || p != nil {
				t.Fatalf("New: got (%v, %v), want (nil, error)", p, err)
			}
			if !strings.HasPrefix(err.Error(), "proxy: ") {
				t.Errorf("got error %q, want prefix %q", err, "proxy: ")
			}
		})
	}
	if _, err := proxy.New(full()); err != nil {
		t.Errorf("New with every dependency: got error %q, want nil", err)
	}
}

// TestIdentityHeaders checks that the upstream receives the session's
// identity, and the correlation ID the client was given.
func TestIdentityHeaders(t *testing.T) {
	t.Parallel()
	up := newDocs(t)
	g := newGateway(t, up.URL)
	tests := []struct {
		name   string
		cookie string
		want   map[string]string
	}{
		{
			name:   "full session",
			cookie: sessionCookie,
			want: map[string]string{
				"X-Remote-User":   "alice@acme.example",
				"X-Remote-Email":  "alice@acme.example",
				"X-Remote-Name":   "Alice Example",
				"X-Remote-Groups": "0b6e2b7c-staff,5f1d9a20-legal",
				"X-Remote-Tenant": "acme",
			},
		},
		{
			name:   "sparse session, non-ASCII name",
			cookie: "ssogw_session=bob",
			want: map[string]string{
				"X-Remote-User":   "bob",
				"X-Remote-Email":  "",
				"X-Remote-Name":   "Bøb Ünïcode",
				"X-Remote-Groups": "",
				"X-Remote-Tenant": "globex",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := g.do(t, http.MethodGet, "/api/whoami", http.Header{"Cookie": {tt.cookie}}, nil)
			wantStatus(t, resp, body, http.StatusOK)
			got := decodeJSON[map[string]string](t, body)
			id := resp.Header.Get("X-Correlation-Id")
			if id == "" {
				t.Fatalf("response X-Correlation-Id: got %q, want an ID", id)
			}
			want := maps.Clone(tt.want)
			want["X-Correlation-Id"] = id
			want["X-Forwarded-For"] = "127.0.0.1"
			want["X-Forwarded-Host"] = g.addr()
			want["X-Forwarded-Proto"] = "https"
			// The client's Host is kept, so the upstream builds URLs
			// (redirects, WebDAV Destination) that work for the client.
			want["host"] = g.addr()
			want["cookie"] = ""
			for k, w := range want {
				if v, ok := got[k]; !ok || v != w {
					t.Errorf("upstream %s: got %q (present %v), want %q", k, v, ok, w)
				}
			}
			for k, v := range got {
				if _, ok := want[k]; !ok && strings.HasPrefix(k, "X") {
					t.Errorf("upstream %s: got %q, want it absent", k, v)
				}
			}
		})
	}
}

func TestUpstreamHostOverride(t *testing.T) {
	t.Parallel()
	up := newDocs(t)
	g := newGateway(t, up.URL, func(o *proxy.Options) { o.UpstreamHost = "backend.internal" })
	resp, body := g.do(t, http.MethodGet, "/api/whoami", http.Header{"Cookie": {sessionCookie}}, nil)
	wantStatus(t, resp, body, http.StatusOK)
	got := decodeJSON[map[string]string](t, body)
	if got["host"] != "backend.internal" || got["X-Forwarded-Host"] != g.addr() {
		t.Errorf("got Host %q and X-Forwarded-Host %q, want backend.internal and %q", got["host"], got["X-Forwarded-Host"], g.addr())
	}
}

// TestSpoofedHeaders sends identity and forwarding headers in every spelling
// a backend might read, byte for byte on a socket so that no client
// canonicalises them, and checks the upstream sees only the gateway's.
func TestSpoofedHeaders(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := newGateway(t, up.srv.URL)
	const host = "docs.acme.example"
	tests := []struct {
		name    string
		headers []string
	}{
		{"canonical", []string{"X-Remote-User: mallory"}},
		{"lower case", []string{"x-remote-user: mallory"}},
		{"upper case", []string{"X-REMOTE-USER: mallory"}},
		{"underscores", []string{"X_Remote_User: mallory"}},
		{"lower case underscores", []string{"x_remote_user: mallory"}},
		{"mixed separators and case", []string{"x-rEmOtE_uSeR: mallory", "X_REMOTE-groups: admins"}},
		{"every identity header", []string{
			"X-Remote-User: mallory", "X-Remote-Email: mallory@evil.example", "X-Remote-Name: Mallory",
			"X-Remote-Groups: admins", "X-Remote-Tenant: other",
		}},
		{"unknown X-Remote- headers", []string{"X-Remote-Anything: x", "X-Remote-Admin: true", "x_remote_role: root", "X-Remote-: bare"}},
		{"repeated", []string{"X-Remote-User: mallory", "X-Remote-User: eve", "x-remote-user: trudy"}},
		{"comma lists", []string{"X-Remote-User: mallory, alice@acme.example", "X-Remote-Groups: admins,0b6e2b7c-staff"}},
		{"empty value", []string{"X-Remote-User:", "X-Remote-Groups: "}},
		{"hop-by-hop removal of the gateway's header", []string{
			"Connection: X-Remote-User", "X-Remote-User: mallory",
		}},
		{"hop-by-hop list of identity headers", []string{
			"Connection: keep-alive, X-Remote-User, x-remote-groups, X-Remote-Tenant, X-Forwarded-For, X-Correlation-Id",
			"X-Remote-Groups: admins",
		}},
		{"X-Real-IP", []string{"X-Real-IP: 203.0.113.66", "x-real-ip: 203.0.113.67"}},
		{"Forwarded", []string{"Forwarded: for=203.0.113.66;host=evil.example;proto=http", "forwarded: for=203.0.113.67"}},
		{"X-Forwarded-*", []string{
			"X-Forwarded-For: 203.0.113.66", "X-Forwarded-Host: evil.example", "X-Forwarded-Proto: http",
		}},
		{"X-Forwarded-* lower case and repeated", []string{
			"x-forwarded-for: 203.0.113.66", "X-FORWARDED-FOR: 203.0.113.67, 10.0.0.1",
			"x-forwarded-host: evil.example", "x-forwarded-proto: http",
		}},
		{"correlation ID", []string{"X-Correlation-Id: forged-id", "x-correlation-id: forged-2"}},
		{"forwarding headers with underscores", []string{
			"X_Forwarded_For: 203.0.113.66", "x_forwarded_host: evil.example", "X_Forwarded_Proto: http",
			"X_Real_IP: 203.0.113.66", "X_Correlation_Id: forged",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines := append([]string{
				"GET /spoof HTTP/1.1",
				"Host: " + host,
				"Cookie: " + sessionCookie,
				"Connection: close",
			}, tt.headers...)
			resp, body := g.raw(t, lines...)
			wantStatus(t, resp, body, http.StatusOK)
			got := decodeJSON[echoed](t, body)
			want := map[string][]string{
				"X-Remote-User":     {"alice@acme.example"},
				"X-Remote-Email":    {"alice@acme.example"},
				"X-Remote-Name":     {"Alice Example"},
				"X-Remote-Groups":   {"0b6e2b7c-staff,5f1d9a20-legal"},
				"X-Remote-Tenant":   {"acme"},
				"X-Forwarded-For":   {"127.0.0.1"},
				"X-Forwarded-Host":  {host},
				"X-Forwarded-Proto": {"https"},
				"X-Correlation-Id":  {resp.Header.Get("X-Correlation-Id")},
			}
			for name, w := range want {
				if v := got.Header[name]; !slices.Equal(v, w) {
					t.Errorf("upstream %s: got %q, want %q", name, v, w)
				}
			}
			for name, v := range got.Header {
				if _, ok := want[name]; ok {
					continue
				}
				n := normalize(name)
				if strings.HasPrefix(n, "x-remote-") || strings.HasPrefix(n, "x-forwarded-") ||
					n == "x-real-ip" || n == "forwarded" || n == "x-correlation-id" {
					t.Errorf("upstream header %s: got %q, want it absent", name, v)
				}
			}
		})
	}
}

// TestCookies checks that the gateway's cookies never reach the upstream,
// in either direction, while the upstream's own cookies pass unchanged.
func TestCookies(t *testing.T) {
	t.Parallel()
	t.Run("request", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, newDocs(t).URL)
		tests := []struct {
			name    string
			cookies []string // Cookie header lines, in order
			want    string   // whoami "cookie"
		}{
			{"session first", []string{"ssogw_session=valid; a=1; b=2"}, "a=1; b=2"},
			{"session in the middle", []string{"a=1; ssogw_session=valid; b=2"}, "a=1; b=2"},
			{"session last", []string{"a=1; b=2; ssogw_session=valid"}, "a=1; b=2"},
			{
				"every gateway cookie",
				[]string{"theme=dark; __Host-ssogw_session=x; ssogw_session=valid; __Secure-ssogw_req_abc=y; lang=en-GB; ssogw_tenant=acme; ssogw_req_def=z"},
				"theme=dark; lang=en-GB",
			},
			{
				"values byte for byte",
				[]string{`ssogw_session=valid; q="quoted value"; b64=YWJj+/==; eq=x=y; empty=; utf8=caf%C3%A9`},
				`q="quoted value"; b64=YWJj+/==; eq=x=y; empty=; utf8=caf%C3%A9`,
			},
			{
				"look-alike names kept",
				[]string{"xssogw_session=1; ssogw_session=valid; SSOGW_SESSION=2; ssogw=3; __Host-other=4; my_ssogw_tenant=5"},
				"xssogw_session=1; SSOGW_SESSION=2; ssogw=3; __Host-other=4; my_ssogw_tenant=5",
			},
			{"separators without spaces", []string{"a=1;ssogw_session=valid;b=2"}, "a=1; b=2"},
			{"several Cookie lines", []string{"a=1", "ssogw_session=valid; b=2", "c=3; ssogw_tenant=acme"}, "a=1; b=2; c=3"},
			{"only gateway cookies", []string{"ssogw_session=valid; ssogw_tenant=acme; __Secure-ssogw_req_x=1"}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp, body := g.do(t, http.MethodGet, "/api/whoami", http.Header{"Cookie": tt.cookies}, nil)
				wantStatus(t, resp, body, http.StatusOK)
				if got := decodeJSON[map[string]string](t, body)["cookie"]; got != tt.want {
					t.Errorf("upstream cookie: got %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("only gateway cookies: no Cookie header upstream", func(t *testing.T) {
		t.Parallel()
		up := newEcho(t)
		g := newGateway(t, up.srv.URL)
		resp, body := g.do(t, http.MethodGet, "/", http.Header{"Cookie": {"ssogw_session=valid; __Host-ssogw_tenant=acme"}}, nil)
		wantStatus(t, resp, body, http.StatusOK)
		if v, ok := decodeJSON[echoed](t, body).Header["Cookie"]; ok {
			t.Errorf("upstream Cookie: got %q, want no header", v)
		}
	})

	t.Run("response", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name string
			set  []string
			want []string // nil: no Set-Cookie header at all
		}{
			{
				name: "own cookies kept, gateway's dropped",
				set: []string{
					"app=1; Path=/; HttpOnly",
					"ssogw_session=evil; Path=/",
					"__Host-ssogw_session=evil; Path=/; Secure",
					"__Secure-ssogw_req_x=evil; Path=/auth",
					"ssogw_tenant=other; Max-Age=0",
					" ssogw_session=padded",
					"theme=dark",
				},
				want: []string{"app=1; Path=/; HttpOnly", "theme=dark"},
			},
			{
				name: "only gateway cookies",
				set:  []string{"ssogw_session=; Max-Age=0", "__Host-ssogw_session=x"},
			},
			{
				name: "look-alikes kept",
				set:  []string{"SSOGW_SESSION=1", "xssogw_session=2"},
				want: []string{"SSOGW_SESSION=1", "xssogw_session=2"},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.Header()["Set-Cookie"] = tt.set
					_, _ = io.WriteString(w, "ok")
				}))
				t.Cleanup(up.Close)
				g := newGateway(t, up.URL)
				resp, body := g.do(t, http.MethodGet, "/", http.Header{"Cookie": {sessionCookie}}, nil)
				wantStatus(t, resp, body, http.StatusOK)
				if got := resp.Header["Set-Cookie"]; !slices.Equal(got, tt.want) {
					t.Errorf("Set-Cookie: got %q, want %q", got, tt.want)
				}
				if tt.want == nil {
					if _, ok := resp.Header["Set-Cookie"]; ok {
						t.Errorf("Set-Cookie: got a header, want none")
					}
				}
			})
		}
	})
}

// TestPathAndQuery checks that the request target reaches the upstream as
// the client sent it: not cleaned, not re-escaped. Requests go out raw
// because Go's client would tidy some of them.
func TestPathAndQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		upstream string // path of the Upstream URL
		target   string
		want     string // upstream RequestURI; "" means target
	}{
		{name: "double slash", target: "/a//b"},
		{name: "leading double slash", target: "//a/b"},
		{name: "dot segment", target: "/a/./b"},
		{name: "dot-dot segment", target: "/a/../b"},
		{name: "encoded dot-dot", target: "/%2e%2e/x"},
		{name: "encoded dot-dot upper case", target: "/a/%2E%2E/%2E%2E/etc/passwd"},
		{name: "encoded slash", target: "/a%2Fb?x=%2F&y"},
		{name: "encoded slash lower-case hex", target: "/a%2fb"},
		{name: "encoded space and query", target: "/docs/Q3%20Minutes.md?download=1"},
		{name: "needlessly encoded tilde", target: "/%7Euser/file"},
		{name: "plus signs", target: "/a+b?c=d+e&f=%2B"},
		{name: "UTF-8", target: "/caf%C3%A9/%E2%9C%93?q=%E2%9C%93"},
		{name: "semicolon in path", target: "/a;jsessionid=1/b"},
		{name: "repeated and bare keys", target: "/x?a=1&a=2&b&=c&d="},
		{name: "empty query", target: "/x?"},
		{name: "semicolon in query", target: "/x?a=1;b=2"},
		{name: "bare percent in query", target: "/x?q=100%"},
		{name: "bad escape in query", target: "/x?a=1&b=%zz&c=3"},
		{name: "unsorted query", target: "/x?z=1&a=2&m=3"},
		{name: "trailing slash", target: "/x/"},
		{name: "root", target: "/"},
		{name: "upstream prefix", upstream: "/app", target: "/a//b?x=%2F", want: "/app/a//b?x=%2F"},
		{name: "upstream prefix, encoded slash", upstream: "/app", target: "/a%2Fb", want: "/app/a%2Fb"},
		{name: "upstream prefix with slash", upstream: "/app/", target: "/x/./y", want: "/app/x/./y"},
	}
	echo := newEcho(t)
	gateways := map[string]*gateway{}
	for _, tt := range tests {
		if gateways[tt.upstream] == nil {
			gateways[tt.upstream] = newGateway(t, echo.srv.URL+tt.upstream)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := gateways[tt.upstream]
			resp, body := g.raw(t, "GET "+tt.target+" HTTP/1.1", "Host: gw.example", "Cookie: "+sessionCookie, "Connection: close")
			wantStatus(t, resp, body, http.StatusOK)
			want := tt.want
			if want == "" {
				want = tt.target
			}
			if got := decodeJSON[echoed](t, body).RequestURI; got != want {
				t.Errorf("upstream request URI: got %q, want %q", got, want)
			}
		})
	}

	// The same through the demo service's whoami, which reports the
	// request URI it received.
	g := newGateway(t, newDocs(t).URL)
	for _, target := range []string{
		"/api/whoami?x=%2F&y",
		"/api/whoami?q=%E2%9C%93&flag",
		"/api/whoami?a=%2F%2F&b=..%2F&c=%25&d=+",
		"/api/whoami?",
	} {
		t.Run("whoami "+target, func(t *testing.T) {
			t.Parallel()
			resp, body := g.raw(t, "GET "+target+" HTTP/1.1", "Host: gw.example", "Cookie: "+sessionCookie, "Connection: close")
			wantStatus(t, resp, body, http.StatusOK)
			if got := decodeJSON[map[string]string](t, body)["request_uri"]; got != target {
				t.Errorf("whoami request_uri: got %q, want %q", got, target)
			}
		})
	}
}

// TestUnauthenticated checks that requests without a session never reach
// the upstream: navigations are sent to sign in, everything else gets 401.
func TestUnauthenticated(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := newGateway(t, up.srv.URL)
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []struct {
		name     string
		method   string
		header   http.Header
		redirect bool // else 401
	}{
		{name: "navigation", method: "GET", header: http.Header{"Accept": {html}}, redirect: true},
		{name: "navigation with Sec-Fetch-Mode", method: "GET", header: http.Header{"Accept": {html}, "Sec-Fetch-Mode": {"navigate"}, "Sec-Fetch-Dest": {"document"}}, redirect: true},
		{name: "HEAD navigation", method: "HEAD", header: http.Header{"Accept": {html}}, redirect: true},
		{name: "forged session cookie", method: "GET", header: http.Header{"Accept": {html}, "Cookie": {"ssogw_session=forged"}}, redirect: true},
		{name: "fetch accepting HTML", method: "GET", header: http.Header{"Accept": {html}, "Sec-Fetch-Mode": {"cors"}}},
		{name: "no-cors fetch", method: "GET", header: http.Header{"Accept": {html}, "Sec-Fetch-Mode": {"no-cors"}}},
		{name: "XHR JSON", method: "GET", header: http.Header{"Accept": {"application/json"}, "X-Requested-With": {"XMLHttpRequest"}}},
		{name: "no Accept", method: "GET"},
		{name: "POST form", method: "POST", header: http.Header{"Accept": {html}, "Content-Type": {"application/x-www-form-urlencoded"}}},
		{name: "PUT", method: "PUT", header: http.Header{"Accept": {html}}},
		{name: "DELETE", method: "DELETE", header: http.Header{"Accept": {html}}},
		{name: "PROPFIND", method: "PROPFIND", header: http.Header{"Depth": {"1"}}},
		{name: "websocket upgrade", method: "GET", header: http.Header{
			"Accept": {html}, "Connection": {"Upgrade"}, "Upgrade": {"websocket"},
			"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
		}},
		{name: "gateway cookies without a session", method: "POST", header: http.Header{"Cookie": {"ssogw_tenant=acme; a=1"}}},
	}
	t.Run("table", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var body io.Reader
				if tt.method == "POST" || tt.method == "PUT" {
					body = strings.NewReader("a=1")
				}
				resp, b := g.do(t, tt.method, "/documents/x?y=1", tt.header, body)
				id := resp.Header.Get("X-Correlation-Id")
				if tt.redirect {
					wantStatus(t, resp, b, http.StatusFound)
					want := loginURL + "?return_to=" + url.QueryEscape("/documents/x?y=1")
					if got := resp.Header.Get("Location"); got != want {
						t.Errorf("Location: got %q, want %q", got, want)
					}
					return
				}
				wantStatus(t, resp, b, http.StatusUnauthorized)
				if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
					t.Errorf("Content-Type: got %q, want %q", got, want)
				}
				if v, ok := resp.Header["Set-Cookie"]; ok {
					t.Errorf("Set-Cookie: got %q, want none", v)
				}
				if got := resp.Header.Get("Location"); got != "" {
					t.Errorf("Location: got %q, want none", got)
				}
				got := decodeJSON[map[string]string](t, b)
				if got["error"] == "" {
					t.Errorf("JSON error: got %q, want a message", got["error"])
				}
				login := loginURL + "?return_to=" + url.QueryEscape("/documents/x?y=1")
				if got["login_url"] != login {
					t.Errorf("JSON login_url: got %q, want %q", got["login_url"], login)
				}
				challenge := `Cookie realm="sso-gateway", form-action="` + login + `", cookie-name="ssogw_session"`
				if got := resp.Header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != challenge {
					t.Errorf("WWW-Authenticate: got %q, want %q", got, challenge)
				}
				if got["correlation_id"] != id || id == "" {
					t.Errorf("JSON correlation_id: got %q, want %q (the X-Correlation-Id header)", got["correlation_id"], id)
				}
			})
		}
	})
	if n := up.hits.Load(); n != 0 {
		t.Errorf("upstream requests: got %d, want 0", n)
	}
	redirects := 0
	for _, tt := range tests {
		if tt.redirect {
			redirects++
		}
	}
	if got := g.auth.redirects.Load(); got != int64(redirects) {
		t.Errorf("LoginRedirect calls: got %d, want %d", got, redirects)
	}
	g.srv.Close()
	wantMetrics(t, g.reg, map[string]int{
		"login_redirect":  redirects,
		"unauthenticated": len(tests) - redirects,
	}, nil)
}

// TestMethods checks that every method, WebDAV's included, is forwarded
// with a session.
func TestMethods(t *testing.T) {
	t.Parallel()
	t.Run("echo", func(t *testing.T) {
		t.Parallel()
		up := newEcho(t)
		g := newGateway(t, up.srv.URL)
		methods := []string{
			"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
			"PROPFIND", "PROPPATCH", "MKCOL", "MOVE", "COPY", "LOCK", "UNLOCK", "REPORT",
		}
		for _, m := range methods {
			t.Run(m, func(t *testing.T) {
				t.Parallel()
				const payload = "<?xml version=\"1.0\"?><propfind xmlns=\"DAV:\"><allprop/></propfind>"
				var body io.Reader
				if m != "GET" && m != "HEAD" {
					body = strings.NewReader(payload)
				}
				resp, b := g.do(t, m, "/dav/file.txt", http.Header{"Cookie": {sessionCookie}}, body)
				wantStatus(t, resp, b, http.StatusOK)
				if got := resp.Header.Get("X-Echo-Method"); got != m {
					t.Errorf("upstream method: got %q, want %q", got, m)
				}
				if m == "HEAD" {
					if len(b) != 0 {
						t.Errorf("HEAD body: got %q, want none", b)
					}
					return
				}
				want := int64(0)
				if body != nil {
					want = int64(len(payload))
				}
				if got := decodeJSON[echoed](t, b).BodyBytes; got != want {
					t.Errorf("upstream body bytes: got %d, want %d", got, want)
				}
			})
		}
	})

	t.Run("webdav", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, newDocs(t).URL)
		cookie := http.Header{"Cookie": {sessionCookie}}
		with := func(kv ...string) http.Header {
			h := cookie.Clone()
			for i := 0; i < len(kv); i += 2 {
				h.Set(kv[i], kv[i+1])
			}
			return h
		}
		const lockBody = `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>alice</D:owner></D:lockinfo>`
		var lockToken string
		// Steps run in order: each depends on the last.
		steps := []struct {
			method, target string
			header         http.Header
			body           string
			want           int
			check          func(t *testing.T, resp *http.Response, body []byte)
		}{
			{method: "OPTIONS", target: "/dav/", header: cookie, want: http.StatusOK, check: func(t *testing.T, resp *http.Response, _ []byte) {
				if got := resp.Header.Get("Dav"); !strings.Contains(got, "2") {
					t.Errorf("DAV header: got %q, want class 2", got)
				}
			}},
			{method: "PROPFIND", target: "/dav/", header: with("Depth", "1"), want: http.StatusMultiStatus, check: func(t *testing.T, _ *http.Response, body []byte) {
				if want := "/dav/Q3%20Board%20Minutes.md"; !strings.Contains(string(body), want) {
					t.Errorf("PROPFIND body: got %q, want it to contain %q", body, want)
				}
			}},
			{method: "MKCOL", target: "/dav/Matters", header: cookie, want: http.StatusCreated},
			{method: "PUT", target: "/dav/Matters/brief.txt", header: cookie, body: "privileged", want: http.StatusCreated},
			{method: "COPY", target: "/dav/Matters/brief.txt", header: with("Destination", "/dav/Matters/copy.txt"), want: http.StatusCreated},
			{method: "MOVE", target: "/dav/Matters/copy.txt", header: with("Destination", "/dav/Matters/moved%20copy.txt"), want: http.StatusCreated},
			// Windows Explorer and Finder send absolute Destination URLs,
			// which the backend checks against the Host it received.
			{method: "COPY", target: "/dav/Matters/brief.txt", header: with("Destination", "http://"+g.addr()+"/dav/Matters/absolute.txt"), want: http.StatusCreated},
			{method: "LOCK", target: "/dav/Matters/brief.txt", header: with("Timeout", "Second-60"), body: lockBody, want: http.StatusOK, check: func(t *testing.T, resp *http.Response, _ []byte) {
				lockToken = resp.Header.Get("Lock-Token")
				if lockToken == "" {
					t.Errorf("Lock-Token: got %q, want a token", lockToken)
				}
			}},
			{method: "PUT", target: "/dav/Matters/brief.txt", header: cookie, body: "overwrite while locked", want: http.StatusLocked},
			{method: "UNLOCK", target: "/dav/Matters/brief.txt", want: http.StatusNoContent},
			{method: "GET", target: "/dav/Matters/moved%20copy.txt", header: cookie, want: http.StatusOK, check: func(t *testing.T, _ *http.Response, body []byte) {
				if string(body) != "privileged" {
					t.Errorf("GET body: got %q, want %q", body, "privileged")
				}
			}},
			{method: "HEAD", target: "/documents/Q3%20Board%20Minutes.md", header: cookie, want: http.StatusOK, check: func(t *testing.T, resp *http.Response, _ []byte) {
				if resp.ContentLength <= 0 {
					t.Errorf("HEAD Content-Length: got %d, want the document size", resp.ContentLength)
				}
			}},
			{method: "DELETE", target: "/dav/Matters", header: cookie, want: http.StatusNoContent},
			{method: "PROPFIND", target: "/dav/Matters", header: with("Depth", "0"), want: http.StatusNotFound},
		}
		for _, s := range steps {
			h := s.header
			if s.method == "UNLOCK" {
				h = with("Lock-Token", lockToken)
			}
			var body io.Reader
			if s.body != "" {
				body = strings.NewReader(s.body)
			}
			resp, b := g.do(t, s.method, s.target, h, body)
			if resp.StatusCode != s.want {
				t.Fatalf("%s %s: got status %q, want %d (body %q)", s.method, s.target, resp.Status, s.want, b)
			}
			if s.check != nil {
				s.check(t, resp, b)
			}
		}
	})
}

// TestWebsocket checks that a websocket is relayed with the identity set on
// the handshake, and refused without a session.
func TestWebsocket(t *testing.T) {
	t.Parallel()
	up := newDocs(t)
	g := newGateway(t, up.URL)
	wsURL := "ws://" + g.addr() + "/ws"
	tests := []struct {
		name       string
		header     http.Header
		wantStatus int // of the handshake; 101 means connected
		wantHello  string
	}{
		{name: "session", header: http.Header{"Cookie": {sessionCookie}}, wantStatus: http.StatusSwitchingProtocols, wantHello: "alice@acme.example"},
		{
			name:       "session, spoofed user",
			header:     http.Header{"Cookie": {sessionCookie}, "X-Remote-User": {"mallory"}},
			wantStatus: http.StatusSwitchingProtocols,
			wantHello:  "alice@acme.example",
		},
		{
			// The upstream checks Origin against X-Forwarded-Host.
			name:       "session, gateway's own origin",
			header:     http.Header{"Cookie": {sessionCookie}, "Origin": {"http://" + g.addr()}},
			wantStatus: http.StatusSwitchingProtocols,
			wantHello:  "alice@acme.example",
		},
		{
			name:       "session, foreign origin refused by the upstream",
			header:     http.Header{"Cookie": {sessionCookie}, "Origin": {"https://evil.example"}},
			wantStatus: http.StatusForbidden,
		},
		{name: "no session", wantStatus: http.StatusUnauthorized},
		{name: "no session, browser-like", header: http.Header{"Accept": {"text/html"}, "Origin": {"http://" + g.addr()}}, wantStatus: http.StatusUnauthorized},
		{name: "forged session", header: http.Header{"Cookie": {"ssogw_session=forged"}}, wantStatus: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
			conn, resp, err := d.Dial(wsURL, tt.header)
			if tt.wantStatus != http.StatusSwitchingProtocols {
				if err == nil {
					conn.Close()
					t.Fatalf("Dial: got a connection, want status %d", tt.wantStatus)
				}
				if resp == nil {
					t.Fatalf("Dial: got error %q and no response, want status %d", err, tt.wantStatus)
				}
				defer resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("handshake status: got %q, want %d", resp.Status, tt.wantStatus)
				}
				if tt.wantStatus == http.StatusUnauthorized {
					var got map[string]string
					if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got["error"] == "" || got["correlation_id"] == "" {
						t.Errorf("401 body: got %q (%v), want error and correlation_id", got, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v (response %v)", err, resp)
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			var hello map[string]string
			if err := conn.ReadJSON(&hello); err != nil {
				t.Fatalf("read hello: %v", err)
			}
			if got := hello["hello"]; got != tt.wantHello {
				t.Errorf("hello: got %q, want %q", got, tt.wantHello)
			}
			for _, msg := range []struct {
				typ  int
				data string
			}{
				{websocket.TextMessage, "ping ✓"},
				{websocket.BinaryMessage, "\x00\x01\xff"},
				{websocket.TextMessage, strings.Repeat("x", 200<<10)},
			} {
				if err := conn.WriteMessage(msg.typ, []byte(msg.data)); err != nil {
					t.Fatalf("write: %v", err)
				}
				typ, data, err := conn.ReadMessage()
				if err != nil {
					t.Fatalf("read echo: %v", err)
				}
				if typ != msg.typ || string(data) != msg.data {
					t.Errorf("echo: got type %d, %d bytes, want type %d, %d bytes", typ, len(data), msg.typ, len(msg.data))
				}
			}
			if err := conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")); err != nil {
				t.Errorf("write close: %v", err)
			}
		})
	}
}

// TestUpstreamFailures checks the pages and outcomes when the upstream is
// down or slow.
func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	browser := http.Header{"Cookie": {sessionCookie}, "Accept": {"text/html,*/*;q=0.8"}}
	xhr := http.Header{"Cookie": {sessionCookie}, "Accept": {"application/json"}}
	slow := newDocs(t)
	tests := []struct {
		name         string
		upstream     string
		timeout      time.Duration
		target       string
		header       http.Header
		wantStatus   int
		wantHTML     bool
		wantOutcome  string
		wantUpstream string // upstream_responses_total code, or ""
	}{
		{name: "down, browser", upstream: closedURL(t), target: "/", header: browser, wantStatus: http.StatusBadGateway, wantHTML: true, wantOutcome: "upstream_error"},
		{name: "down, XHR", upstream: closedURL(t), target: "/api/whoami", header: xhr, wantStatus: http.StatusBadGateway, wantOutcome: "upstream_error"},
		{name: "down, PUT", upstream: closedURL(t), target: "/documents/a.txt", header: xhr, wantStatus: http.StatusBadGateway, wantOutcome: "upstream_error"},
		{name: "slow, browser", upstream: slow.URL, timeout: 200 * time.Millisecond, target: "/slow?delay=2s", header: browser, wantStatus: http.StatusGatewayTimeout, wantHTML: true, wantOutcome: "upstream_timeout"},
		{name: "slow, XHR", upstream: slow.URL, timeout: 200 * time.Millisecond, target: "/slow?delay=2s", header: xhr, wantStatus: http.StatusGatewayTimeout, wantOutcome: "upstream_timeout"},
		{name: "fast enough", upstream: slow.URL, timeout: 2 * time.Second, target: "/slow?delay=10ms", header: xhr, wantStatus: http.StatusOK, wantOutcome: "proxied", wantUpstream: "2xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGateway(t, tt.upstream, func(o *proxy.Options) { o.UpstreamTimeout = tt.timeout })
			start := time.Now()
			resp, body := g.do(t, http.MethodGet, tt.target, tt.header, nil)
			elapsed := time.Since(start)
			wantStatus(t, resp, body, tt.wantStatus)
			if tt.wantStatus == http.StatusGatewayTimeout && elapsed > 1500*time.Millisecond {
				t.Errorf("504 after %s, want it soon after the %s timeout", elapsed, tt.timeout)
			}
			id := resp.Header.Get("X-Correlation-Id")
			if id == "" {
				t.Errorf("X-Correlation-Id: got %q, want an ID", id)
			}
			ct := resp.Header.Get("Content-Type")
			switch {
			case tt.wantStatus == http.StatusOK:
			case tt.wantHTML:
				if ct != "text/html; charset=utf-8" {
					t.Errorf("Content-Type: got %q, want %q", ct, "text/html; charset=utf-8")
				}
				if !strings.Contains(string(body), id) {
					t.Errorf("page: got %q, want it to contain the correlation ID %q", body, id)
				}
			default:
				if ct != "application/json" {
					t.Errorf("Content-Type: got %q, want %q", ct, "application/json")
				}
				got := decodeJSON[map[string]string](t, body)
				if got["error"] == "" || got["correlation_id"] != id {
					t.Errorf("JSON: got %q, want an error and correlation_id %q", got, id)
				}
			}
			if tt.wantStatus != http.StatusOK {
				for _, leak := range []string{"127.0.0.1", "dial", "refused", "timeout awaiting"} {
					if strings.Contains(string(body), leak) {
						t.Errorf("body: got %q, want no internals such as %q", body, leak)
					}
				}
			}
			g.srv.Close()
			codes := map[string]int{}
			if tt.wantUpstream != "" {
				codes[tt.wantUpstream] = 1
			}
			wantMetrics(t, g.reg, map[string]int{tt.wantOutcome: 1}, codes)
		})
	}
}

// TestMetrics checks the outcome and upstream status counters over a mix of
// requests to one gateway.
func TestMetrics(t *testing.T) {
	t.Parallel()
	g := newGateway(t, newDocs(t).URL)
	signedIn := http.Header{"Cookie": {sessionCookie}}
	requests := []struct {
		method, target string
		header         http.Header
		want           int
	}{
		{"GET", "/api/whoami", signedIn, http.StatusOK},
		{"GET", "/healthz", signedIn, http.StatusOK},
		{"PUT", "/documents/a.txt", signedIn, http.StatusCreated},
		{"GET", "/documents/missing.txt", signedIn, http.StatusNotFound},
		{"GET", "/documents/.hidden", signedIn, http.StatusBadRequest},
		{"GET", "/slow?delay=forever", signedIn, http.StatusBadRequest},
		{"GET", "/", http.Header{"Accept": {"text/html"}}, http.StatusFound},
		{"GET", "/api/whoami", http.Header{"Accept": {"application/json"}}, http.StatusUnauthorized},
		{"POST", "/documents", nil, http.StatusUnauthorized},
		{"GET", "/auth/api/v1/saml/select", nil, http.StatusOK}, // not counted
	}
	for _, r := range requests {
		var body io.Reader
		if r.method == "PUT" {
			body = strings.NewReader("x")
		}
		resp, b := g.do(t, r.method, r.target, r.header, body)
		if resp.StatusCode != r.want {
			t.Errorf("%s %s: got status %q, want %d (body %q)", r.method, r.target, resp.Status, r.want, b)
		}
	}
	// A websocket counts as proxied, with a 1xx upstream response.
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+g.addr()+"/ws", signedIn)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	var hello map[string]string
	if err := conn.ReadJSON(&hello); err != nil {
		t.Fatalf("websocket hello: %v", err)
	}
	conn.Close()
	g.srv.Close()
	wantMetrics(t, g.reg,
		map[string]int{"proxied": 7, "login_redirect": 1, "unauthenticated": 2},
		map[string]int{"1xx": 1, "2xx": 3, "4xx": 3})
}

func TestNewTransport(t *testing.T) {
	t.Parallel()
	tr := proxy.NewTransport(7 * time.Second)
	if tr.MaxIdleConnsPerHost < 64 {
		t.Errorf("MaxIdleConnsPerHost: got %d, want well above the default %d", tr.MaxIdleConnsPerHost, http.DefaultMaxIdleConnsPerHost)
	}
	if tr.MaxIdleConns != 0 && tr.MaxIdleConns < tr.MaxIdleConnsPerHost {
		t.Errorf("MaxIdleConns: got %d, want 0 (no limit) or at least MaxIdleConnsPerHost %d", tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	}
	if !tr.DisableCompression {
		t.Errorf("DisableCompression: got %v, want %v", tr.DisableCompression, true)
	}
	if tr.ResponseHeaderTimeout != 7*time.Second {
		t.Errorf("ResponseHeaderTimeout: got %q, want %q", tr.ResponseHeaderTimeout, 7*time.Second)
	}
	if tr.Proxy != nil {
		t.Errorf("Proxy: got a function, want nil (never an environment proxy)")
	}
	if tr.IdleConnTimeout <= 0 {
		t.Errorf("IdleConnTimeout: got %q, want a bound", tr.IdleConnTimeout)
	}
}

// TestUpstreamConnections checks the effect of the transport settings end
// to end: idle upstream connections are reused under concurrency, and the
// gateway asks for no compression the client did not.
func TestUpstreamConnections(t *testing.T) {
	t.Parallel()
	const n = 24
	var (
		newConns atomic.Int64
		mu       sync.Mutex
		idle     = map[string]bool{}
		arrived  = make(chan struct{}, n)
		release  = make(chan struct{})
		encoding = make(chan []string, 2*n)
		stop     = make(chan struct{}) // unblocks the upstream if the test fails early
	)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encoding <- r.Header.Values("Accept-Encoding")
		arrived <- struct{}{}
		select {
		case <-release:
		case <-stop:
		}
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		if s == http.StateNew {
			newConns.Add(1)
		}
		idle[c.RemoteAddr().String()] = s == http.StateIdle
	}
	up.Start()
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(stop) }) // runs before up.Close
	g := newGateway(t, up.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	t.Cleanup(client.CloseIdleConnections)

	burst := func() {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", g.srv.URL+"/", nil)
				req.Header.Set("Cookie", sessionCookie)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("GET: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		// Hold every request at the upstream until all n are there, so
		// that n upstream connections are in use at once.
		for range n {
			select {
			case <-arrived:
			case <-time.After(30 * time.Second):
				t.Fatal("upstream: requests did not all arrive")
			}
		}
		for range n {
			release <- struct{}{}
		}
		wg.Wait()
	}
	burst()
	// Wait until the upstream sees every connection idle again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		count := 0
		for _, isIdle := range idle {
			if isIdle {
				count++
			}
		}
		mu.Unlock()
		if count >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	burst()
	// With two idle connections per host, the second burst would open
	// n-2 more.
	if got := newConns.Load(); got > n+n/4 {
		t.Errorf("upstream connections for two bursts of %d: got %d, want about %d (reused)", n, got, n)
	}
	close(encoding)
	for v := range encoding {
		if len(v) != 0 {
			t.Errorf("upstream Accept-Encoding: got %q, want none", v)
			break
		}
	}
}

// BenchmarkProxy measures one small signed-in GET through the gateway to a
// trivial upstream, over real sockets with keep-alive.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	g := newGateway(b, up.URL)
	client := g.srv.Client()
	req, err := http.NewRequest(http.MethodGet, g.srv.URL+"/api/whoami?x=1", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Cookie", sessionCookie+"; app=1")
	req.Header.Set("Accept", "application/json")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("got status %q, want 200", resp.Status)
		}
	}
}

// TestOnlyWebsocketUpgrades checks that a signed-in client cannot switch
// the upstream connection to another protocol: after an h2c upgrade it
// would send HTTP/2 requests through the tunnel with identity headers of
// its choosing.
func TestOnlyWebsocketUpgrades(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"h2c", []string{"GET / HTTP/1.1", "Host: a", "Cookie: " + sessionCookie, "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"}},
		{"h2c first of two", []string{"GET / HTTP/1.1", "Host: a", "Cookie: " + sessionCookie, "Connection: upgrade", "Upgrade: h2c, websocket"}},
		{"websocket then h2c", []string{"GET / HTTP/1.1", "Host: a", "Cookie: " + sessionCookie, "Connection: keep-alive, Upgrade", "Upgrade: websocket", "Upgrade: h2c"}},
		{"settings without upgrade", []string{"GET / HTTP/1.1", "Host: a", "Cookie: " + sessionCookie, "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"}},
		{"custom protocol", []string{"GET / HTTP/1.1", "Host: a", "Cookie: " + sessionCookie, "Connection: Upgrade", "Upgrade: tls/1.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newEcho(t)
			g := newGateway(t, up.srv.URL)
			resp, body := g.raw(t, tc.lines...)
			wantStatus(t, resp, body, http.StatusBadRequest)
			if n := up.hits.Load(); n != 0 {
				t.Errorf("%d requests reached the upstream", n)
			}
			g.srv.Close()
			wantMetrics(t, g.reg, map[string]int{"refused": 1}, nil)
		})
	}
}
