package gateway

import (
	"net/http"
	"testing"
)

// okAnswer is the trivial forward-auth answer the verify endpoint is
// compared with in the load benchmark: 200, no body.
var okAnswer = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// BenchmarkVerify measures one forward-auth answer through the whole
// public handler, as nginx's auth_request asks it (a trusted peer naming
// the original request), against a trivial handler's.
func BenchmarkVerify(b *testing.B) {
	h, page := instantGatewayWith(b, 20, "trusted_proxies: [192.0.2.0/24]\n")
	req := page.Clone(page.Context())
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = "/auth/api/v1/saml/verify", "", ""
	req.RequestURI = "/auth/api/v1/saml/verify"
	req.Header.Set("X-Original-URI", "/documents/Q3%20Minutes.md?view=1")
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Forwarded-Proto", "https")
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"trivial", okAnswer}, {"gateway", h}} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.status = 0
				bc.h.ServeHTTP(w, req)
				if w.status != http.StatusOK {
					b.Fatalf("got status %d, want 200", w.status)
				}
			}
		})
	}
}
