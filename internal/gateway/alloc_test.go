package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/logging"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/race"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// instantUpstream answers every request at once with a 1 KiB body,
// without a network: what a request costs besides the upstream's own work
// and the sockets.
type instantUpstream struct{}

const instantBody = 1 << 10

func (instantUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"text/plain"}},
		Body:          io.NopCloser(io.LimitReader(zeros{}, instantBody)),
		ContentLength: instantBody,
		Request:       r,
	}, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// discardWriter is a ResponseWriter that keeps nothing but the status,
// and reuses its header map.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// instantGateway is the test gateway in front of instantUpstream, logging
// JSON lines to io.Discard (the access log on, as by default), and a
// signed-in GET for it, with groups groups.
func instantGateway(tb testing.TB, groups int) (http.Handler, *http.Request) {
	tb.Helper()
	return instantGatewayWith(tb, groups, "")
}

// instantGatewayWith is instantGateway with extra configuration (see
// newTestGateway).
func instantGatewayWith(tb testing.TB, groups int, extra string) (http.Handler, *http.Request) {
	tb.Helper()
	base := newTestGateway(tb, okUpstream, extra)
	gw, err := Build(context.Background(), base.cfg, Deps{
		Registry:          prometheus.NewRegistry(),
		Logger:            logging.New(io.Discard, slog.LevelInfo, "json"),
		UpstreamTransport: instantUpstream{},
		Version:           "test",
	})
	if err != nil {
		tb.Fatal(err)
	}
	tg := &testGateway{gw: gw, cfg: base.cfg, idp: base.idp}
	session := tg.signInWith(tb, groups)
	req := publicRequest(http.MethodGet, "/documents/Q3%20Minutes.md?view=1", nil)
	for _, c := range session {
		req.AddCookie(c)
	}
	req.Header.Add("Cookie", "app_session=0123456789abcdef")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0")
	return gw.PublicHandler(), req
}

// bareProxy is a plain httputil.ReverseProxy in front of instantUpstream:
// the floor the gateway's allocations are measured against.
func bareProxy() http.Handler {
	up, _ := url.Parse("http://upstream.test")
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(up); pr.SetXForwarded() },
		Transport: instantUpstream{},
	}
}

// serveAllocs returns the allocations of one request through h.
func serveAllocs(t *testing.T, h http.Handler, req *http.Request) float64 {
	t.Helper()
	w := &discardWriter{h: http.Header{}}
	serve := func() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			t.Fatalf("got status %d, want 200", w.status)
		}
	}
	serve()
	return testing.AllocsPerRun(200, serve)
}

// proxiedAllocBudget is what one authenticated, proxied GET may allocate
// beyond a bare httputil.ReverseProxy in the same place. Each layer that
// puts a value in the request's context costs the value, the context and
// a copy of the request:
//   - the exchange (gateway/exchange.go): 3;
//   - the correlation ID: its string, and the value, context and request: 4;
//   - the client address: the chain, its string, and the value, context and
//     request: 5;
//   - the proxy's request state (with the recorder), context and request: 3;
//   - Rewrite: one array for every header value it sets: 1;
//   - the access log: the escaped path, when the path has bytes to escape: 1.
//
// The session costs nothing: its cookie is decoded once, its identity
// headers rendered once, whatever its number of groups.
const proxiedAllocBudget = 17

// TestProxiedRequestAllocations: the whole public handler, a signed-in
// GET with a cached session to an upstream that answers at once, stays
// within its allocation budget over a bare ReverseProxy, with 20 groups
// and with 150. Not parallel: AllocsPerRun counts the whole process.
func TestProxiedRequestAllocations(t *testing.T) {
	bare := serveAllocs(t, bareProxy(), publicRequest(http.MethodGet, "/documents/Q3%20Minutes.md?view=1", nil))
	// With identity_jwt, the session's token is signed once and cached
	// with its identity headers: no more allocations per request.
	jwt := identityJWTConfig(filepath.Join(jwtKeyFiles(t), "ec.pem"), "", jwtAudience)
	for _, tc := range []struct {
		groups int
		extra  string
	}{{20, ""}, {150, ""}, {20, jwt}, {150, jwt}} {
		groups := tc.groups
		h, req := instantGatewayWith(t, groups, tc.extra)
		got := serveAllocs(t, h, req)
		budget := bare + proxiedAllocBudget
		if race.Enabled {
			// sync.Pool drops some of what it is given on purpose.
			budget += 5
		}
		name := fmt.Sprintf("%d groups", groups)
		if tc.extra != "" {
			name += ", identity JWT"
		}
		t.Logf("%s: %v allocations per request; a bare ReverseProxy makes %v", name, got, bare)
		if got > budget {
			t.Errorf("%s: got %v allocations per request, want at most %v (%v of a bare ReverseProxy + %d)", name, got, budget, bare, proxiedAllocBudget)
		}
	}
}

// BenchmarkPublicHandler is one signed-in GET through the whole public
// handler to an upstream that answers at once, without sockets: the
// gateway's own CPU and allocations per request. bare is a plain
// ReverseProxy doing the same.
func BenchmarkPublicHandler(b *testing.B) {
	jwt := identityJWTConfig(filepath.Join(jwtKeyFiles(b), "ec.pem"), "", jwtAudience)
	for _, bc := range []struct {
		name   string
		groups int
		extra  string
	}{{"20 groups", 20, ""}, {"150 groups", 150, ""}, {"20 groups, identity JWT", 20, jwt}, {"bare ReverseProxy", 0, ""}} {
		b.Run(bc.name, func(b *testing.B) {
			var h http.Handler
			var req *http.Request
			if bc.groups == 0 {
				h, req = bareProxy(), publicRequest(http.MethodGet, "/documents/Q3%20Minutes.md?view=1", nil)
			} else {
				h, req = instantGatewayWith(b, bc.groups, bc.extra)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			if w.status != http.StatusOK {
				b.Fatalf("got status %d, want 200", w.status)
			}
		})
	}
}

// signInWith signs in at acme as a user in groups groups (object IDs),
// and returns the session cookies.
func (tg *testGateway) signInWith(tb testing.TB, groups int) []*http.Cookie {
	tb.Helper()
	tenant, _ := tg.gw.Provider().CurrentTenants().Get("acme")
	resp := samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID, NameID: "alice@acme.example"}
	ids := make([]string, groups)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-5e1f-4a2b-9c3d-%012x", i, i*7919)
	}
	resp.Attributes = samltest.DefaultAttributes(tg.idp.TenantID, resp.NameID, "Alice Example", ids...)
	form := tg.idp.PostForm(tb, resp, "")
	req := publicRequest(http.MethodPost, "/auth/api/v1/saml/login/acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	tg.gw.PublicHandler().ServeHTTP(rec, req)
	var out []*http.Cookie
	for _, c := range rec.Result().Cookies() {
		if strings.HasPrefix(c.Name, "__Host-ssogw_session") && c.MaxAge >= 0 && c.Value != "" {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("sign in: got %d: %s", rec.Code, rec.Body)
	}
	return out
}
