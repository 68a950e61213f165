package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// send sends one command to addr and returns the first line of the reply.
func send(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	lines, err := sendRead(t, addr, 1, args...)
	return strings.Join(lines, "|"), err
}

// sendRead sends one command to addr and returns the first n lines of the
// reply.
func sendRead(t *testing.T, addr string, n int, args ...string) ([]string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return nil, err
	}
	var req bytes.Buffer
	writeCommand(&req, args...)
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	var lines []string
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		lines = append(lines, strings.TrimRight(line, "\r\n"))
	}
	return lines, nil
}

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Fatalf("got Addr %q, want one on 127.0.0.1", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("got URL %q, want %q", s.URL(), want)
	}
	if got, err := send(t, s.Addr(), "SET", "k", "v"); err != nil || got != "+OK" {
		t.Fatalf("SET: got %q, %v, want %q", got, err, "+OK")
	}
	// Nothing may be written to disk: snapshots and the AOF are off.
	for _, c := range []struct{ name, want string }{{"save", ""}, {"appendonly", "no"}} {
		lines, err := sendRead(t, s.Addr(), 5, "CONFIG", "GET", c.name)
		if err != nil || len(lines) != 5 || lines[4] != c.want {
			t.Fatalf("CONFIG GET %s: got %q, %v, want value %q", c.name, lines, err, c.want)
		}
	}

	s.Stop()
	if _, err := send(t, s.Addr(), "PING"); err == nil {
		t.Fatalf("PING after Stop: got no error")
	}
	s.Stop() // a second Stop does nothing

	s.Restart(t)
	if got, err := send(t, s.Addr(), "PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after Restart: got %q, %v, want %q", got, err, "+PONG")
	}
	// The restarted server is empty: nothing was persisted.
	if got, err := send(t, s.Addr(), "EXISTS", "k"); err != nil || got != ":0" {
		t.Fatalf("EXISTS after Restart: got %q, %v, want %q", got, err, ":0")
	}
}

func TestPassword(t *testing.T) {
	t.Parallel()
	const password = "p@ss:word/1"
	s := StartWith(t, Options{Password: password})
	if want := "redis://:p%40ss%3Aword%2F1@" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("got URL %q, want %q", s.URL(), want)
	}
	if got, err := send(t, s.Addr(), "PING"); err != nil || !strings.HasPrefix(got, "-NOAUTH") {
		t.Fatalf("PING without AUTH: got %q, %v, want -NOAUTH", got, err)
	}
	s.Restart(t) // Restart must authenticate its readiness check too
}

func TestStartsDistinctServers(t *testing.T) {
	t.Parallel()
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("got the same address %q twice", a.Addr())
	}
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingServerFails(t *testing.T) {
	tests := []struct {
		name, env, path string
	}{
		{name: "env names no file", env: "/nonexistent/redis-server", path: t.TempDir()},
		{name: "not in PATH", env: "", path: t.TempDir()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvServer, tt.env)
			t.Setenv("PATH", tt.path)
			f := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				StartWith(f, Options{})
				t.Errorf("StartWith returned; want it to call Fatalf")
			}()
			<-done
			const want = "redis-server not found; install it with: apt-get install -y redis-server"
			if !strings.Contains(f.msg, want) {
				t.Fatalf("got Fatalf %q, want it to contain %q", f.msg, want)
			}
		})
	}
}
