package gateway

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// serving is a Gateway serving on plain-HTTP loopback listeners (TLS
// only when its config says so) until cancel; wait returns what
// ServeListeners returned. A test that does not stop it is stopped at
// cleanup, and an error then fails the test.
type serving struct {
	public, admin string
	cancel        context.CancelFunc
	wait          func() error
}

func startServing(t *testing.T, gw *Gateway) *serving {
	t.Helper()
	public, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		public.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.ServeListeners(ctx, public, admin) }()
	s := &serving{public: public.Addr().String(), admin: admin.Addr().String(), cancel: cancel,
		wait: sync.OnceValue(func() error { return <-done })}
	t.Cleanup(func() {
		cancel()
		if err := s.wait(); err != nil {
			t.Errorf("ServeListeners: %v", err)
		}
	})
	return s
}

// serveGateway serves tg and returns the public address.
func serveGateway(t *testing.T, tg *testGateway) string {
	t.Helper()
	return startServing(t, tg.gw).public
}

// A signed-in client cannot smuggle a second request past the gateway's
// checks in a body that the gateway and a front end would frame
// differently: the connection gets 400 and the upstream sees nothing.
func TestSmugglingRefusedOnPublicListener(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream")
	}), "")
	session := tg.signIn(t)
	addr := serveGateway(t, tg)
	cookie := "Cookie: " + session.Name + "=" + session.Value + "\r\n"

	for _, tc := range []struct{ name, raw, reason string }{
		{"CL.TE", "POST /docs HTTP/1.1\r\nHost: docs.example.com\r\n" + cookie + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", "framing"},
		{"obs-fold TE", "POST /docs HTTP/1.1\r\nHost: docs.example.com\r\n" + cookie + "Content-Length: 0\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n", "syntax"},
		{"h2c", "GET /docs HTTP/1.1\r\nHost: docs.example.com\r\n" + cookie + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", "h2c"},
	} {
		before := tg.hits.Load()
		resp, _ := rawExchange(t, addr, tc.raw)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", tc.name, resp.StatusCode)
		}
		if n := tg.hits.Load() - before; n != 0 {
			t.Errorf("%s: %d requests reached the upstream", tc.name, n)
		}
		if got := testutil.ToFloat64(tg.gw.metrics.rejected.WithLabelValues(tc.reason)); got < 1 {
			t.Errorf("%s: sso_gateway_rejected_requests_total{reason=%q} = %v", tc.name, tc.reason, got)
		}
	}

	// The same connection handling still serves ordinary traffic.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/docs", strings.NewReader("body"))
	req.Host = "docs.example.com"
	req.AddCookie(session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "upstream" {
		t.Errorf("ordinary request: %d %q", resp.StatusCode, b)
	}
}

// Websockets pass through the guarded listener: after the 101 the frames
// are the websocket's, not HTTP.
func TestWebsocketThroughGuardedListener(t *testing.T) {
	t.Parallel()
	upgrader := websocket.Upgrader{}
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte(r.Header.Get("X-Remote-User")+": "), msg...))
		}
	}), "")
	session := tg.signIn(t)
	addr := serveGateway(t, tg)
	header := http.Header{"Cookie": {session.Name + "=" + session.Value}, "Host": {"docs.example.com"}}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+addr+"/ws", header)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	// Binary frames full of CR, LF and request-like text.
	msg := []byte("GET /admin HTTP/1.1\nHost: x\r\n\r\n" + strings.Repeat("\r\x00\n", 40000))
	for range 3 {
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(string(got), string(msg)) || strings.HasPrefix(string(got), ": ") {
			t.Fatalf("echo: %q...", got[:min(len(got), 60)])
		}
	}
}
