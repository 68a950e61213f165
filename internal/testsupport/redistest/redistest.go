// Package redistest runs a real redis-server for tests, on a free port of
// 127.0.0.1, writing nothing to disk. A fake would not show how the client
// behaves when the server dies, refuses a password or comes back, which is
// what the tests of a shared replay store are about.
//
// A missing redis-server fails the test rather than skipping it, so that CI
// cannot pass without running these tests.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// EnvServer names the environment variable that may hold the path of
// redis-server; when it is empty, redis-server is looked up in PATH.
const EnvServer = "REDIS_SERVER"

const (
	// startAttempts is how many ports Start tries: another process may
	// take the free port between the probe and redis-server's bind.
	startAttempts = 5
	// readyTimeout is how long a started server has to answer PING.
	readyTimeout = 10 * time.Second
)

// Options configures StartWith.
type Options struct {
	// Password, if not empty, is required of clients (requirepass); URL
	// then carries it.
	Password string
}

// Server is a running redis-server, killed when the test ends.
type Server struct {
	bin      string
	dir      string
	password string
	port     int
	out      *syncbuf.Buffer

	mu   sync.Mutex
	proc *process // nil while stopped
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returns
}

// Start starts a redis-server without a password. See StartWith.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith starts a redis-server on a free port of 127.0.0.1 and waits
// until it answers PING. It fails the test (never skips it) if redis-server
// is not installed. The server is killed when the test ends; its output is
// logged only if the test failed.
func StartWith(tb testing.TB, o Options) *Server {
	tb.Helper()
	bin, err := findServer()
	if err != nil {
		tb.Fatalf("redistest: redis-server not found; install it with: apt-get install -y redis-server (%v)", err)
		return nil
	}
	s := &Server{
		bin:      bin,
		dir:      tb.TempDir(),
		password: o.Password,
		out:      &syncbuf.Buffer{},
	}
	tb.Cleanup(func() {
		s.Stop()
		if tb.Failed() {
			tb.Logf("redis-server output:\n%s", s.out.String())
		}
	})
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redistest: pick a port: %v", err)
			return nil
		}
		s.port = port
		err = s.start()
		if err == nil {
			return s
		}
		if attempt == startAttempts {
			tb.Fatalf("redistest: start redis-server (%d attempts): %v", attempt, err)
			return nil
		}
		tb.Logf("redistest: start redis-server on port %d: %v; trying another port", port, err)
	}
}

// findServer returns the path of redis-server: $REDIS_SERVER if set, else
// the one in PATH.
func findServer() (string, error) {
	if bin := os.Getenv(EnvServer); bin != "" {
		path, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvServer, bin, err)
		}
		return path, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("not in PATH, and " + EnvServer + " is not set")
	}
	return path, nil
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on s.port and waits for PING. On failure the
// process is gone.
func (s *Server) start() error {
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(s.port),
		"--protected-mode", "yes",
		// Nothing on disk: no RDB snapshots, no AOF, and the working
		// directory (where either would go) is the test's temporary one.
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", "",
		"--daemonize", "no",
	}
	if s.password != "" {
		args = append(args, "--requirepass", s.password)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	fmt.Fprintf(s.out, "--- %s (port %d)\n", time.Now().Format(time.TimeOnly), s.port)
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := s.waitReady(p); err != nil {
		p.kill()
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// waitReady polls PING until the server answers, exits, or readyTimeout
// passes.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited: %v", p.cmd.ProcessState)
		default:
		}
		if last = s.ping(); last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer to PING within %v: %v", readyTimeout, last)
}

// ping sends AUTH (if there is a password) and PING in RESP, without a
// client library.
func (s *Server) ping() error {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	var req bytes.Buffer
	want := []string{"+PONG"}
	if s.password != "" {
		writeCommand(&req, "AUTH", s.password)
		want = []string{"+OK", "+PONG"}
	}
	writeCommand(&req, "PING")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	for _, w := range want {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimRight(line, "\r\n"); got != w {
			return fmt.Errorf("got %q, want %q", got, w)
		}
	}
	return nil
}

// writeCommand writes a RESP array of bulk strings.
func writeCommand(b *bytes.Buffer, args ...string) {
	fmt.Fprintf(b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(b, "$%d\r\n%s\r\n", len(a), a)
	}
}

// kill kills the process and waits for it to exit.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Addr returns the server's host:port, on 127.0.0.1.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns a redis:// URL for database 0, with the password if the
// server requires one.
func (s *Server) URL() string {
	u := "redis://"
	if s.password != "" {
		u += ":" + urlEscapePassword(s.password) + "@"
	}
	return u + s.Addr() + "/0"
}

// urlEscapePassword escapes a password for the user information of a URL.
func urlEscapePassword(p string) string {
	// url.UserPassword does the escaping; drop its empty user name.
	return strings.TrimPrefix(url.UserPassword("", p).String(), ":")
}

// Stop kills the server and waits for it to exit, to simulate an outage.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Restart starts a stopped server again on the same port (with an empty
// database) and waits until it answers PING. It stops the server first if
// it is running.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	// The port was just released; retry briefly in case the kernel or
	// another process holds it for a moment.
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("redistest: restart redis-server on port %d: %v", s.port, err)
}
