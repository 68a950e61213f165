package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/gctune"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// serveConfig writes a config for serve listening on listen and
// adminListen.
func serveConfig(t *testing.T, listen, adminListen string) string {
	t.Helper()
	d := newCheckDir(t)
	return d.writeConfig(t, baseConfig("http://127.0.0.1:8080", fmt.Sprintf(`listen: %s
admin_listen: %s
shutdown_delay: 0s
tenants:
  - id: acme
    idp_metadata_file: acme.xml
`, listen, adminListen)))
}

// logLines decodes the JSON log lines in s.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(s) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// TestServeStopped: once serve has drained, its last log line is
// "stopped".
func TestServeStopped(t *testing.T) {
	t.Parallel()
	cfgFile := serveConfig(t, "127.0.0.1:0", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", cfgFile}, &syncbuf.Buffer{}, &stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"serving"`) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: got %v, want nil", err)
	}
	lines := logLines(t, stderr.String())
	last := lines[len(lines)-1]
	if got, want := last["msg"], "stopped"; got != want {
		t.Errorf("last log line: got %q, want %q\n%s", got, want, stderr.String())
	}
	if _, ok := last["error"]; ok {
		t.Errorf("last log line has an error after a clean stop: %v", last)
	}
	// The shutdown line gives its durations in seconds.
	for _, l := range lines {
		if l["msg"] == "shutting down" {
			if _, ok := l["drain_seconds"].(float64); !ok {
				t.Errorf(`"shutting down": got %v, want drain_seconds in seconds`, l)
			}
		}
	}
}

// TestServeAddressInUse: a listener address another process holds is
// reported with the key to change and the file it is in, and logged as the
// reason the gateway stopped.
func TestServeAddressInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	addr := taken.Addr().String()
	tests := []struct {
		name, listen, adminListen, key string
	}{
		{"listen", addr, "127.0.0.1:0", "listen"},
		{"admin_listen", "127.0.0.1:0", addr, "admin_listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfgFile := serveConfig(t, tt.listen, tt.adminListen)
			// Bounded, so that a gateway that serves after all ends the test.
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var stderr syncbuf.Buffer
			err := run(ctx, []string{"-config", cfgFile}, &syncbuf.Buffer{}, &stderr)
			want := fmt.Sprintf("listen %s: address already in use: another process holds it; change %q in %s", addr, tt.key, cfgFile)
			if err == nil || err.Error() != want {
				t.Fatalf("serve: got error %v, want %q", err, want)
			}
			lines := logLines(t, stderr.String())
			last := lines[len(lines)-1]
			if last["msg"] != "stopped" || last["error"] != want {
				t.Errorf("last log line: got %v, want msg %q with error %q", last, "stopped", want)
			}
		})
	}
}

// TestServeKeepsAccessLines: the access log's lines, which wait to be
// written in batches, are all written at a graceful stop, before
// "stopped".
func TestServeKeepsAccessLines(t *testing.T) {
	t.Parallel()
	cfgFile := serveConfig(t, "127.0.0.1:0", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", cfgFile}, &syncbuf.Buffer{}, &stderr) }()
	var public string
	for deadline := time.Now().Add(20 * time.Second); public == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
		for l := range strings.Lines(stderr.String()) {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "serving" {
				public, _ = m["public"].(string)
			}
		}
	}
	const requests = 20
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range requests {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/doc/%d", public, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("got %s, want 401", resp.Status)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: got %v, want nil", err)
	}
	lines := logLines(t, stderr.String())
	seen := 0
	for i, l := range lines {
		switch l["msg"] {
		case "request":
			seen++
		case "stopped":
			if i != len(lines)-1 {
				t.Errorf("lines after stopped: %v", lines[i+1:])
			}
		}
	}
	if seen != requests {
		t.Errorf("got %d access lines, want %d:\n%s", seen, requests, stderr.String())
	}
}

// TestServeLogsGCSettings: serve logs the garbage collector's settings in
// effect, and where each came from, before it serves.
func TestServeLogsGCSettings(t *testing.T) {
	t.Parallel()
	cfgFile := serveConfig(t, "127.0.0.1:0", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-config", cfgFile}, &syncbuf.Buffer{}, &stderr) }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), `"msg":"serving"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: got %v, want nil", err)
	}
	var gc map[string]any
	for _, l := range logLines(t, stderr.String()) {
		if l["msg"] == "garbage collector" {
			gc = l
		}
		if l["msg"] == "serving" && gc == nil {
			t.Fatal(`"serving" came before "garbage collector"`)
		}
	}
	if gc == nil {
		t.Fatalf("no garbage collector line:\n%s", stderr.String())
	}
	wantGOGC, wantFrom := float64(gctune.DefaultGOGC), gctune.SourceConfig
	if _, ok := os.LookupEnv("GOGC"); ok {
		wantGOGC, wantFrom = gc["gogc"].(float64), gctune.SourceEnvironment
	}
	if gc["gogc"] != wantGOGC || gc["gogc_from"] != wantFrom {
		t.Errorf("got gogc %v from %v, want %v from %v", gc["gogc"], gc["gogc_from"], wantGOGC, wantFrom)
	}
	if from, _ := gc["memory_limit_from"].(string); from == "" {
		t.Errorf("no memory_limit_from in %v", gc)
	}
}
