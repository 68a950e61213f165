package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// okUpstream answers every request with a tiny body, so that benchmarks
// measure the gateway, not the backend.
var okUpstream = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
})

func benchGet(b *testing.B, client *http.Client, req *http.Request) {
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("got %s, want 200", resp.Status)
		}
	}
}

// BenchmarkGatewayRequest is one authenticated GET through the whole
// public handler (correlation ID, session cookie decode, identity headers,
// reverse proxy) over loopback, client and upstream in the same process.
func BenchmarkGatewayRequest(b *testing.B) {
	tg := newTestGateway(b, okUpstream, "")
	session := tg.signIn(b)
	srv := httptest.NewServer(tg.gw.PublicHandler())
	b.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/documents/Q3%20Minutes.md?view=1", nil)
	req.Host = testPublicHost
	req.AddCookie(session)
	req.Header.Add("Cookie", "app_session=0123456789abcdef")
	req.Header.Set("Accept", "text/html")
	benchGet(b, srv.Client(), req)
}

// BenchmarkDirect is the same GET straight to the upstream: the baseline
// the gateway's cost is measured against.
func BenchmarkDirect(b *testing.B) {
	up := httptest.NewServer(okUpstream)
	b.Cleanup(up.Close)
	req, _ := http.NewRequest(http.MethodGet, up.URL+"/documents/Q3%20Minutes.md?view=1", nil)
	req.Header.Set("Accept", "text/html")
	benchGet(b, up.Client(), req)
}
