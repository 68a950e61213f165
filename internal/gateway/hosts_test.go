package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TestOtherHosts: a request for a host that is neither public_url's nor a
// tenant's is sent to public_url's host (browser navigations) or refused
// (everything else) before any login starts or anything reaches the
// upstream.
func TestOtherHosts(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("upstream"))
	}), "  - id: globex\n    idp_metadata_file: idp.xml\n    hosts: [docs.globex.example]\n")
	session := tg.signIn(t)
	html := map[string]string{"Accept": "text/html"}
	for _, c := range []struct {
		name, method, host, target string
		header                     map[string]string
		status                     int
		location                   string // for redirects
	}{
		{"navigation to an alias", "GET", "www.docs.example.com", "/library/doc%201?v=2", html, http.StatusFound,
			"https://docs.example.com/library/doc%201?v=2"},
		{"navigation to localhost", "GET", "localhost:8080", "/", html, http.StatusFound, "https://docs.example.com/"},
		{"navigation to a bare address", "HEAD", "10.1.2.3", "/x", html, http.StatusFound, "https://docs.example.com/x"},
		{"login at an alias", "GET", "alias.example", samlsp.LoginPath + "acme?return_to=%2Fx", html, http.StatusFound,
			"https://docs.example.com" + samlsp.LoginPath + "acme?return_to=%2Fx"},
		{"fetch to an alias", "GET", "alias.example", "/api", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}, http.StatusMisdirectedRequest, ""},
		{"API call to an alias", "GET", "alias.example", "/api", nil, http.StatusMisdirectedRequest, ""},
		{"ACS post at an alias", "POST", "alias.example", samlsp.LoginPath + "acme", html, http.StatusMisdirectedRequest, ""},
		{"upload to an alias", "PUT", "alias.example", "/doc", html, http.StatusMisdirectedRequest, ""},
		{"no Host", "GET", "", "/", html, http.StatusBadRequest, ""},
		{"public host", "GET", "docs.example.com", "/", nil, http.StatusOK, ""},
		{"public host, other case, port and final dot", "GET", "Docs.Example.COM.:443", "/", nil, http.StatusOK, ""},
		// Served, not misdirected: acme's session is not valid there.
		{"tenant host", "GET", "docs.globex.example", "/", nil, http.StatusUnauthorized, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := tg.hits.Load()
			req := httptest.NewRequest(c.method, c.target, nil)
			req.Host = c.host
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
			rec := httptest.NewRecorder()
			tg.gw.PublicHandler().ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("got %d %q, want %d", rec.Code, rec.Body, c.status)
			}
			if got := rec.Header().Get("Location"); got != c.location {
				t.Errorf("Location: got %q, want %q", got, c.location)
			}
			if (c.status == http.StatusOK) != (tg.hits.Load() != before) {
				t.Error("the request reached the upstream")
			}
			if c.status == http.StatusMisdirectedRequest && !strings.Contains(rec.Body.String(), "https://docs.example.com") {
				t.Errorf("the refusal does not name the right address: %s", rec.Body)
			}
			if rec.Code == http.StatusFound && len(rec.Result().Cookies()) != 0 {
				t.Errorf("a redirect to the canonical host set cookies: %v", rec.Result().Cookies())
			}
		})
	}
	if got := testutil.ToFloat64(tg.gw.metrics.rejected.WithLabelValues(reasonMisdirected)); got != 8 {
		t.Errorf("rejected_requests_total{reason=misdirected}: got %v, want 8", got)
	}
	// The tenant's own host is served: its login starts there.
	req := publicRequest(http.MethodGet, samlsp.LoginPath+"globex", nil)
	req.Host = "docs.globex.example"
	rec := httptest.NewRecorder()
	tg.gw.PublicHandler().ServeHTTP(rec, req)
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusFound || loc == "https://docs.example.com"+samlsp.LoginPath+"globex" {
		t.Errorf("a tenant host: got %d %q, want its login to start", rec.Code, loc)
	}
}

// TestHostHeaderSpellings: a Host that is not a host[:port] is refused with
// 400 before anything else, even with a valid session; one spelled
// otherwise reaches the upstream, as Host and X-Forwarded-Host, in one
// spelling, so that the upstream and any framework in it see the host the
// gateway checked.
func TestHostHeaderSpellings(t *testing.T) {
	t.Parallel()
	seen := make(chan [2]string, 1)
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- [2]string{r.Host, r.Header.Get("X-Forwarded-Host")}
	}), "")
	session := tg.signIn(t)
	for _, c := range []struct {
		host   string
		status int
		want   string // the Host upstream, for 200
	}{
		{"docs.example.com", http.StatusOK, "docs.example.com"},
		{"DOCS.Example.com.", http.StatusOK, "docs.example.com"},
		{"docs.example.com:8443", http.StatusOK, "docs.example.com:8443"},
		{"docs.example.com..", http.StatusBadRequest, ""},
		{"docs.example.com,x", http.StatusBadRequest, ""},
		{"x,docs.example.com", http.StatusBadRequest, ""},
		{"docs.example.com:1:1", http.StatusBadRequest, ""},
		{"docs%2eexample.com", http.StatusBadRequest, ""},
		{"docs.example.com:0", http.StatusBadRequest, ""},
		{"docs.example.com:65536", http.StatusBadRequest, ""},
		{"docs.example.com:", http.StatusBadRequest, ""},
		{"-docs.example.com", http.StatusBadRequest, ""},
		{"docs_example.com", http.StatusBadRequest, ""},
		{"docs.example.com/x", http.StatusBadRequest, ""},
		{"[::1", http.StatusBadRequest, ""},
		{"[fe80::1%25eth0]", http.StatusBadRequest, ""},
		{"[1.2.3.4]", http.StatusBadRequest, ""},
		{"::1", http.StatusBadRequest, ""},
		{"", http.StatusBadRequest, ""},
		// Well-formed, but not a host the gateway serves.
		{"evil.example", http.StatusMisdirectedRequest, ""},
		{"[::1]:8080", http.StatusMisdirectedRequest, ""},
		{"10.0.0.1", http.StatusMisdirectedRequest, ""},
	} {
		t.Run(c.host, func(t *testing.T) {
			req := publicRequest(http.MethodGet, "/docs", nil)
			req.Host = c.host
			req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
			rec := httptest.NewRecorder()
			tg.gw.PublicHandler().ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("got %d %q, want %d", rec.Code, rec.Body, c.status)
			}
			if c.status != http.StatusOK {
				select {
				case got := <-seen:
					t.Errorf("reached the upstream as %q", got)
				default:
				}
				return
			}
			if got := <-seen; got != [2]string{c.want, c.want} {
				t.Errorf("upstream got Host, X-Forwarded-Host %q, want %q for both", got, c.want)
			}
		})
	}
	if got := testutil.ToFloat64(tg.gw.metrics.rejected.WithLabelValues(reasonBadHost)); got != 16 {
		t.Errorf("rejected_requests_total{reason=bad_host}: got %v, want 16", got)
	}
}
