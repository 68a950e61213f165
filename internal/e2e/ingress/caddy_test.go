package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// caddyfile is the shipped Caddyfile, relative to this package.
var caddyfile = filepath.Join("..", "..", "..", "deploy", "caddy", "Caddyfile")

// shippedCaddyfile returns the text of the shipped Caddyfile.
func shippedCaddyfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// startCaddy runs the shipped Caddyfile on ln's port for publicHost and
// globexHost, in front of gateway and upstream (host:port each).
func startCaddy(t *testing.T, ln net.Listener, gateway, upstream string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return runCaddy(t, caddyfile, ln, fmt.Sprintf("http://%s:%s, http://%s:%s", publicHost, port, globexHost, port), gateway, upstream)
}

// runCaddy runs Caddy with the Caddyfile file, its {$SSO_*} variables
// set: site (its addresses) on ln's port, which it binds itself, in front
// of gateway and upstream (host:port each). It returns the address to
// dial once Caddy listens. It fails, never skips, without caddy ($CADDY,
// or caddy on PATH; .ci/run installs Debian's), and a Caddy that does not
// start fails the test with its output.
func runCaddy(t *testing.T, file string, ln net.Listener, site, gateway, upstream string) string {
	t.Helper()
	bin := os.Getenv("CADDY")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("caddy"); err != nil {
			t.Fatalf("caddy is not installed (apt-get install caddy, or set CADDY): %v", err)
		}
	}
	addr := ln.Addr().String()
	ln.Close() // Caddy binds it itself.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--adapter", "caddyfile", "--config", file)
	cmd.Env = append(os.Environ(),
		"HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"SSO_SITE="+site, "SSO_GATEWAY="+gateway, "SSO_UPSTREAM="+upstream,
		"SSO_BIND=127.0.0.1", "SSO_CADDY_ADMIN=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("caddy's output:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("caddy exited at start:\n%s", out.String())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s:\n%s", addr, out.String())
		}
	}
}

// TestCaddyForwardAuth runs the shipped Caddyfile in a real Caddy in
// front of the real gateway and an upstream: the same flow as nginx's.
func TestCaddyForwardAuth(t *testing.T) {
	s := startStack(t, startCaddy)

	t.Run("API client gets 401", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/api/docs", nil, "Accept: application/json")
		if r.code != http.StatusUnauthorized || s.upstreamHits() != 0 {
			t.Errorf("got %d and %d upstream requests, want 401 and none", r.code, s.upstreamHits())
		}
	})

	t.Run("navigation signs in and returns to the original URL", func(t *testing.T) {
		back, r := s.spLogin(t, publicHost, "/docs/a%20b?c=d")
		if back != s.base+"/docs/a%20b?c=d" {
			t.Errorf("after signing in: got sent to %q, want %q", back, s.base+"/docs/a%20b?c=d")
		}
		var got seen
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
			t.Fatalf("original URL after signing in: got %d %s", r.code, r.body)
		}
		if u := got.Headers["X-Remote-User"]; len(u) != 1 || u[0] != user {
			t.Errorf("X-Remote-User upstream: got %q, want %q", u, user)
		}
	})

	t.Run("forged identity headers are stripped", func(t *testing.T) {
		r := s.do(t, http.MethodGet, s.base+"/docs/x", nil,
			"X-Remote-User: mallory", "x-remote-tenant: globex", "X_Remote_User: mallory", "X-Remote-Department: forged")
		var got seen
		if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &got) != nil {
			t.Fatalf("got %d %s", r.code, r.body)
		}
		for name, vs := range got.Headers {
			n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if !strings.HasPrefix(n, "x-remote-") {
				continue
			}
			for _, v := range vs {
				if v == "mallory" || v == "forged" || (n == "x-remote-tenant" && v != "acme") {
					t.Errorf("upstream got %s: %q, a client's copy", name, v)
				}
			}
		}
		if u := got.Headers["X-Remote-Tenant"]; len(u) != 1 || u[0] != "acme" {
			t.Errorf("X-Remote-Tenant upstream: got %q, want acme", u)
		}
	})
}
