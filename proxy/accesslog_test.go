package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/sso-gateway/sso-gateway/internal/logging"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
	"github.com/sso-gateway/sso-gateway/proxy"
)

// accessLines returns the access-log lines ("msg":"request") in logs.
func accessLines(t *testing.T, logs *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// TestAccessLog: one line per request outside the SAML endpoints, with
// what an operator needs and without the query or any cookie.
// It runs with slog's own JSON handler and with the gateway's logger,
// whose access lines are written by logging.Lines.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		logger func(io.Writer) *slog.Logger
	}{
		{"slog", func(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }},
		{"logging.New", func(w io.Writer) *slog.Logger { return logging.New(w, slog.LevelInfo, "json") }},
		{"logging.New, buffered", func(w io.Writer) *slog.Logger {
			out := logging.NewOutput(w, time.Millisecond)
			t.Cleanup(func() { out.Close() })
			return logging.New(out, slog.LevelInfo, "json")
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testAccessLog(t, tt.logger)
		})
	}
}

func testAccessLog(t *testing.T, logger func(io.Writer) *slog.Logger) {
	up := newDocs(t)
	var logs syncbuf.Buffer
	g := newGateway(t, up.URL, func(o *proxy.Options) {
		o.Logger = logger(&logs)
		o.AccessLog = true
	})

	resp, body := g.do(t, "GET", "/api/whoami?token=secret-query", http.Header{"Cookie": {sessionCookie + "; other=cookie-value"}}, nil)
	wantStatus(t, resp, body, http.StatusOK)
	resp401, _ := g.do(t, "GET", "/api/whoami", http.Header{"Accept": {"application/json"}}, nil)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+g.addr()+"/ws", http.Header{"Cookie": {sessionCookie}})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	g.do(t, "GET", "/auth/api/v1/saml/login/acme", nil, nil)
	g.srv.Close()
	// A hijacked connection (the websocket) outlives Close: its line
	// comes when the tunnel ends.
	lines := accessLines(t, &logs)
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		lines = accessLines(t, &logs)
	}
	if len(lines) != 3 {
		t.Fatalf("got %d access-log lines, want 3 (the SAML endpoint logs its own): %v", len(lines), lines)
	}
	ok, unauth, ws := lines[0], lines[1], lines[2]
	for k, want := range map[string]any{
		"method": "GET", "path": "/api/whoami", "status": float64(200), "bytes": float64(len(body)),
		"outcome": "proxied", "tenant": "acme", "user": "alice@acme.example",
		"correlation_id": resp.Header.Get("X-Correlation-Id"), "client_ip": "127.0.0.1",
	} {
		if ok[k] != want {
			t.Errorf("proxied line %s: got %v, want %v", k, ok[k], want)
		}
	}
	for _, k := range []string{"duration_seconds", "upstream_seconds"} {
		if v, isNum := ok[k].(float64); !isNum || v <= 0 {
			t.Errorf("proxied line %s: got %v, want a positive number", k, ok[k])
		}
	}
	if unauth["status"] != float64(401) || unauth["outcome"] != "unauthenticated" || unauth["user"] != nil ||
		unauth["correlation_id"] != resp401.Header.Get("X-Correlation-Id") {
		t.Errorf("unauthenticated line: %v", unauth)
	}
	if ws["status"] != float64(101) || ws["path"] != "/ws" || ws["user"] != "alice@acme.example" {
		t.Errorf("websocket line: %v", ws)
	}
	all := logs.String()
	for _, secret := range []string{"secret-query", "token=", "cookie-value", "ssogw_session"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
}

func TestAccessLogOff(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	var logs syncbuf.Buffer
	g := newGateway(t, up.srv.URL, func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	g.do(t, "GET", "/x", http.Header{"Cookie": {sessionCookie}}, nil)
	g.srv.Close()
	if n := len(accessLines(t, &logs)); n != 0 {
		t.Errorf("AccessLog false: %d lines", n)
	}
}

// TestRequestsInFlight: the gauge counts a request from its arrival to its
// last byte, and only while it lasts.
func TestRequestsInFlight(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		close(arrived)
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	g := newGateway(t, up.URL)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.do(t, "GET", "/slow", http.Header{"Cookie": {sessionCookie}}, nil)
	}()
	<-arrived
	if got := gatherGauge(t, g, "sso_gateway_requests_in_flight"); got != 1 {
		t.Errorf("during the request: %v, want 1", got)
	}
	close(release)
	<-done
	g.srv.Close()
	if got := gatherGauge(t, g, "sso_gateway_requests_in_flight"); got != 0 {
		t.Errorf("after the request: %v, want 0", got)
	}
}

func gatherGauge(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

// TestAccessLogText: the gateway's logger in text format writes the same
// access line, as key=value pairs.
func TestAccessLogText(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	var logs syncbuf.Buffer
	g := newGateway(t, up.srv.URL, func(o *proxy.Options) {
		o.Logger = logging.New(&logs, slog.LevelInfo, "text")
		o.AccessLog = true
	})
	resp, body := g.do(t, "GET", "/api/who%20am%20i?token=secret-query", http.Header{"Cookie": {sessionCookie}}, nil)
	wantStatus(t, resp, body, http.StatusOK)
	g.srv.Close()
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, " msg=request ") {
			line = l
		}
	}
	for _, want := range []string{
		" level=INFO msg=request method=GET path=/api/who%20am%20i status=200 bytes=",
		" outcome=proxied upstream_seconds=",
		` tenant=acme user=alice@acme.example client_ip=127.0.0.1 correlation_id=` + resp.Header.Get("X-Correlation-Id") + "\n",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("got %q, want it to contain %q", line, want)
		}
	}
	if strings.Contains(logs.String(), "secret-query") {
		t.Error("the log contains the query")
	}
}
