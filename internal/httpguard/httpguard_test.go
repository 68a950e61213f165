package httpguard_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/httpguard"
)

// server is an HTTP server behind the guard that records what reached the
// handler.
type server struct {
	addr    string
	hits    atomic.Int64
	mu      sync.Mutex
	paths   []string
	reasons []string
}

func (s *server) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func (s *server) rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reasons...)
}

func startServer(t *testing.T, maxHead int) *server {
	t.Helper()
	s := &server{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		s.paths = append(s.paths, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %s", n, hex.EncodeToString(h.Sum(nil)))
	})
	// A websocket-like echo: 101, then every byte back.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				conn.Write(buf[:n])
			}
			if err != nil {
				return
			}
		}
	})
	// Ignores the Upgrade header: the connection stays HTTP.
	mux.HandleFunc("/no-upgrade", func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		s.paths = append(s.paths, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		io.WriteString(w, "plain")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	guarded := &httpguard.Listener{Listener: l, MaxHead: maxHead, OnReject: func(r httpguard.Rejection) {
		s.mu.Lock()
		s.reasons = append(s.reasons, r.Reason)
		s.mu.Unlock()
	}}
	go srv.Serve(guarded)
	t.Cleanup(func() { srv.Close() })
	return s
}

// exchange writes raw to the server and returns every response read
// until the server closes the connection or goes quiet.
func exchange(t *testing.T, addr, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
		if resp.Close {
			return out
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	}
}

func statuses(rs []*http.Response) []int {
	var s []int
	for _, r := range rs {
		s = append(s, r.StatusCode)
	}
	return s
}

func TestRefusesAmbiguousFraming(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		reason    string
	}{
		{"CL and TE", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"TE and CL", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"two equal CL", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", httpguard.ReasonFraming},
		{"CL list", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", httpguard.ReasonFraming},
		{"CL plus sign", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", httpguard.ReasonFraming},
		{"two TE", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"TE list", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"TE unknown", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"TE in HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"TE vertical tab", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", httpguard.ReasonSyntax},
		{"obs-fold", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", httpguard.ReasonSyntax},
		{"obs-fold TE", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", httpguard.ReasonSyntax},
		// A bad field after a framing error is still reported as syntax.
		{"bad CL then NUL", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nX-A: a\x00b\r\n\r\n", httpguard.ReasonSyntax},
		{"h2c then bad name", "GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nX A: b\r\n\r\n", httpguard.ReasonSyntax},
		{"bare LF in head", "GET /x HTTP/1.1\nHost: a\r\n\r\n", httpguard.ReasonSyntax},
		{"bare LF ends head", "GET /x HTTP/1.1\r\nHost: a\n\n", httpguard.ReasonSyntax},
		{"bare CR", "GET /x HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", httpguard.ReasonSyntax},
		{"space before colon", "GET /x HTTP/1.1\r\nHost : a\r\n\r\n", httpguard.ReasonSyntax},
		{"NUL in value", "GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", httpguard.ReasonSyntax},
		{"two Host", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", httpguard.ReasonSyntax},
		{"no Host", "GET /x HTTP/1.1\r\n\r\n", httpguard.ReasonSyntax},
		{"extra space in request line", "GET  /x HTTP/1.1\r\nHost: a\r\n\r\n", httpguard.ReasonSyntax},
		{"tab in request line", "GET\t/x HTTP/1.1\r\nHost: a\r\n\r\n", httpguard.ReasonSyntax},
		{"HTTP/0.9 style", "GET /x\r\n\r\n", httpguard.ReasonSyntax},
		{"HTTP/1.2", "GET /x HTTP/1.2\r\nHost: a\r\n\r\n", httpguard.ReasonSyntax},
		{"h2c upgrade", "GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", httpguard.ReasonH2C},
		{"h2c settings alone", "GET /x HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", httpguard.ReasonH2C},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", httpguard.ReasonH2C},
		{"leading empty line", "\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n", httpguard.ReasonSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, 0)
			rs := exchange(t, s.addr, tc.raw)
			if got := statuses(rs); len(got) != 1 || got[0] != http.StatusBadRequest {
				t.Fatalf("responses %v, want one 400", got)
			}
			if !rs[0].Close {
				t.Error("the refusal does not close the connection")
			}
			if n := s.hits.Load(); n != 0 {
				t.Errorf("%d requests reached the handler: %v", n, s.seen())
			}
			if got := s.rejected(); len(got) != 1 || got[0] != tc.reason {
				t.Errorf("rejected with %v, want [%s]", got, tc.reason)
			}
		})
	}
}

// A chunked body is checked as it streams: the handler has started by the
// time a bad chunk arrives, and its read fails instead of returning a
// body that a front end might have framed differently.
func TestRefusesBadChunkedBodies(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		reason    string
	}{
		{"chunk size bare LF", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n", httpguard.ReasonSyntax},
		{"chunk size 0x", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\nx\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"chunk size space", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"chunk size overflow", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"chunk without CRLF", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", httpguard.ReasonFraming},
		{"trailer obs-fold", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n 2\r\n\r\n", httpguard.ReasonSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, 0)
			rs := exchange(t, s.addr, tc.raw)
			for _, r := range rs {
				if r.StatusCode == http.StatusOK {
					t.Errorf("the handler read a whole body")
				}
			}
			if len(rs) == 0 {
				t.Error("no response")
			}
			if got := s.rejected(); len(got) != 1 || got[0] != tc.reason {
				t.Errorf("rejected with %v, want [%s]", got, tc.reason)
			}
		})
	}
}

func TestAcceptsWellFormedRequests(t *testing.T) {
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return fmt.Sprintf("%d %x", len(s), h)
	}
	for _, tc := range []struct {
		name, raw string
		bodies    []string // the handler's answer for each request
	}{
		{"GET", "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", []string{sum("")}},
		{"HTTP/1.0 without Host", "GET /x HTTP/1.0\r\n\r\n", []string{sum("")}},
		{"Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", []string{sum("hello")}},
		{"chunked with extension and trailer", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n", []string{sum("hello world")}},
		{"tab around values", "POST /x HTTP/1.1\r\nHost:\ta\t\r\nContent-Length:\t2 \r\n\r\nhi", []string{sum("hi")}},
		{"pipelined", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: a\r\n\r\nPOST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
			[]string{sum("abc"), sum(""), sum("z")}},
		{"head far larger than the first buffer", "GET /x HTTP/1.1\r\nHost: a\r\nCookie: c=" + strings.Repeat("v", 100000) + "\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n", []string{sum(""), sum("")}},
		{"body that looks like a request", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 25\r\n\r\nGET /b HTTP/1.1\r\nX: \n\r\n\r\n", []string{sum("GET /b HTTP/1.1\r\nX: \n\r\n\r\n")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, 0)
			rs := exchange(t, s.addr, tc.raw)
			if len(rs) != len(tc.bodies) {
				t.Fatalf("responses %v, want %d 200s", statuses(rs), len(tc.bodies))
			}
			for i, r := range rs {
				body, _ := io.ReadAll(r.Body)
				if r.StatusCode != http.StatusOK || string(body) != tc.bodies[i] {
					t.Errorf("response %d: %d %q, want 200 %q", i, r.StatusCode, body, tc.bodies[i])
				}
			}
			if got := s.rejected(); len(got) != 0 {
				t.Errorf("rejected: %v", got)
			}
		})
	}
}

// A smuggled request hidden behind a framing conflict never reaches the
// handler, whichever way the conflict would be read.
func TestSmuggledRequestNeverReachesHandler(t *testing.T) {
	for _, raw := range []string{
		// CL.TE: a front end honouring Content-Length forwards all of it.
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 49\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\nX: x",
		// TE.CL with an obfuscated Transfer-Encoding.
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n2e\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n",
		// A well-formed request followed by one with a folded TE.
		"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX:\r\n Transfer-Encoding: chunked\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		s := startServer(t, 0)
		rs := exchange(t, s.addr, raw)
		for _, p := range s.seen() {
			if strings.Contains(p, "admin") || strings.Contains(p, "/b") {
				t.Errorf("%q reached the handler from %q", p, raw)
			}
		}
		if len(rs) == 0 || rs[len(rs)-1].StatusCode != http.StatusBadRequest {
			t.Errorf("responses %v, want the last to be 400", statuses(rs))
		}
	}
}

func TestHeadTooLarge(t *testing.T) {
	s := startServer(t, 4096)
	rs := exchange(t, s.addr, "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("a", 8192)+"\r\n\r\n")
	if got := statuses(rs); len(got) != 1 || got[0] != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("responses %v, want one 431", got)
	}
	if s.hits.Load() != 0 || len(s.rejected()) != 1 || s.rejected()[0] != httpguard.ReasonTooLarge {
		t.Errorf("hits %d, rejected %v", s.hits.Load(), s.rejected())
	}
	// A head that never ends is refused once it passes the limit, not
	// buffered until the client gives up.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n")
		for range 100 {
			if _, err := io.WriteString(c, "X-A: "+strings.Repeat("b", 1000)+"\r\n"); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("status %d, want 431", resp.StatusCode)
	}
}

// Bytes after a 101 are the new protocol's: they pass untouched even
// where they would be refused as HTTP.
func TestUpgradePassesThrough(t *testing.T) {
	s := startServer(t, 0)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	for _, msg := range []string{"GET /x HTTP/1.1\nbare LF\r\n\r\n", "\x00\x01binary\xff", strings.Repeat("z", 100000)} {
		go io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echoed %q, want %q", got[:min(len(got), 40)], msg[:min(len(msg), 40)])
		}
	}
	if len(s.rejected()) != 0 {
		t.Errorf("rejected: %v", s.rejected())
	}
}

// An Upgrade the server declines leaves the connection speaking HTTP, and
// still checked.
func TestDeclinedUpgradeKeepsChecking(t *testing.T) {
	s := startServer(t, 0)
	rs := exchange(t, s.addr, "GET /no-upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"+
		"GET /no-upgrade HTTP/1.1\r\nHost: a\r\n\r\n"+
		"GET /admin HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if got := statuses(rs); len(got) != 3 || got[0] != 200 || got[1] != 200 || got[2] != 400 {
		t.Fatalf("responses %v, want 200 200 400", got)
	}
	if got := s.seen(); len(got) != 2 {
		t.Errorf("handled %v", got)
	}
}

// Large bodies stream through intact in both framings, and arrive in
// pieces no smaller than the network gives.
func TestLargeBodies(t *testing.T) {
	s := startServer(t, 0)
	body := make([]byte, 24<<20)
	rand.Read(body)
	want := fmt.Sprintf("%d %x", len(body), sha256.Sum256(body))

	resp, err := http.Post("http://"+s.addr+"/upload", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != want {
		t.Errorf("Content-Length upload: %q, want %q", got, want)
	}

	// An io.Reader of unknown length is sent chunked.
	resp, err = http.Post("http://"+s.addr+"/upload", "application/octet-stream", io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != want {
		t.Errorf("chunked upload: %q, want %q", got, want)
	}
}

// The server's own timeouts still apply through the guard.
func TestReadHeaderTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 200 * time.Millisecond}
	go srv.Serve(&httpguard.Listener{Listener: l})
	defer srv.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.ReadAll(c)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the connection stayed open %v after an unfinished head", d)
	}
}
