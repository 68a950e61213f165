package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// sendHead opens a connection to addr and writes head, then body: a
// request whose body has not all been sent.
func sendHead(t *testing.T, addr, head, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+body); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedWithin reads c to its end and reports whether the end came before
// deadline.
func closedWithin(c net.Conn, br *bufio.Reader, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return true
}

// Every answer the gateway gives itself to a request whose body it does
// not use closes the connection, within a few seconds whatever the client
// does with the rest of the body: the proxy's 401, a 421, the SAML
// endpoints' refusals. A request without a body keeps its connection.
func TestRefusedBodiesCloseConnection(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	tg.gw.loginBodyTimeout = 300 * time.Millisecond
	addr := serveGateway(t, tg)
	post := func(path, host, extra string, length int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n%sContent-Length: %d\r\n\r\n",
			path, host, extra, length)
	}
	tests := []struct {
		name, head, body string
		wantStatus       int
		wantClose        bool
	}{
		{"unauthenticated upload", post("/upload", testPublicHost, "", 100000), "AB", http.StatusUnauthorized, true},
		{"unauthenticated chunked upload",
			"POST /upload HTTP/1.1\r\nHost: " + testPublicHost + "\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nAB\r\n", http.StatusUnauthorized, true},
		{"unauthenticated, body all sent", post("/upload", testPublicHost, "", 2), "AB", http.StatusUnauthorized, true},
		{"misdirected", post("/upload", "elsewhere.example", "", 100000), "AB", http.StatusMisdirectedRequest, true},
		{"SAML method not allowed", post(samlsp.SelectPath, testPublicHost, "", 100000), "AB", http.StatusMethodNotAllowed, true},
		{"unknown SAML path", post(samlsp.PathPrefix+"nope", testPublicHost, "", 100000), "AB", http.StatusNotFound, true},
		{"ACS body too slow", post(samlsp.LoginPath+"acme", testPublicHost, "", 100000), "SAMLResponse=", http.StatusRequestTimeout, true},
		{"ACS body too large", post(samlsp.LoginPath+"acme", testPublicHost, "Accept: text/html\r\n", 1<<20),
			"SAMLResponse=" + strings.Repeat("A", samlsp.MaxACSBody), http.StatusRequestEntityTooLarge, true},
		{"no body", "GET /upload HTTP/1.1\r\nHost: " + testPublicHost + "\r\n\r\n", "", http.StatusUnauthorized, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			c := sendHead(t, addr, tt.head, tt.body)
			c.SetReadDeadline(start.Add(5 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.wantStatus || resp.Close != tt.wantClose {
				t.Errorf("got %d, Connection: close %v; want %d, %v", resp.StatusCode, resp.Close, tt.wantStatus, tt.wantClose)
			}
			if closed := closedWithin(c, br, start.Add(4*time.Second)); closed != tt.wantClose {
				t.Errorf("connection closed within 4 s: got %v, want %v", closed, tt.wantClose)
			}
		})
	}
}

// Thousands of unauthenticated uploads that send a byte and stop each get
// their answer and lose their connection within a few seconds, and leave
// nothing behind: the gateway's goroutines and heap return to where they
// were. Not parallel: it counts the process's goroutines.
func TestSlowBodiesLeaveNothingBehind(t *testing.T) {
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	addr := serveGateway(t, tg)
	const conns = 2000
	head := "POST /upload HTTP/1.1\r\nHost: " + testPublicHost + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\nA"

	settle := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	baseGoroutines, baseHeap := settle()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		slowest  time.Duration
	)
	sem := make(chan struct{}, 256) // dials in flight, not connections open
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			fail := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				if len(problems) < 10 {
					problems = append(problems, fmt.Sprintf("connection %d: ", i)+fmt.Sprintf(format, args...))
				}
			}
			c, err := net.Dial("tcp", addr)
			<-sem
			if err != nil {
				fail("dial: %v", err)
				return
			}
			defer c.Close()
			start := time.Now()
			if _, err := io.WriteString(c, head); err != nil {
				fail("write: %v", err)
				return
			}
			c.SetReadDeadline(start.Add(20 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				fail("no answer after %v: %v", time.Since(start), err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusUnauthorized {
				fail("got %d, want 401", resp.StatusCode)
			}
			if !closedWithin(c, br, start.Add(20*time.Second)) {
				fail("still open after %v", time.Since(start))
				return
			}
			mu.Lock()
			slowest = max(slowest, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	// Each connection is given 1 s of drain and net/http's 0.5 s before
	// closing; without the fix they stay open as long as the client
	// trickles (forever). The bound leaves room for 2,000 connections under
	// -race on a busy 2-core machine: it tells "bounded" from "held", it
	// is not a performance target.
	if slowest > 15*time.Second {
		t.Errorf("slowest connection closed after %v, want within 15 s", slowest)
	}

	var goroutines int
	var heap uint64
	deadline := time.Now().Add(10 * time.Second)
	for {
		goroutines, heap = settle()
		if goroutines <= baseGoroutines+20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if goroutines > baseGoroutines+20 {
		t.Errorf("goroutines: got %d after the connections closed, want about %d", goroutines, baseGoroutines)
	}
	if heap > baseHeap+16<<20 {
		t.Errorf("heap in use: got %d MiB after the connections closed, want about %d MiB", heap>>20, baseHeap>>20)
	}
	t.Logf("goroutines %d -> %d, heap %d KiB -> %d KiB, slowest %v", baseGoroutines, goroutines, baseHeap>>10, heap>>10, slowest)
}

// An authenticated upload is the upstream's: however slowly its body
// arrives, it streams on to the upstream, past every deadline the gateway
// sets for its own answers.
func TestAuthenticatedSlowUploadStreams(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	}), "")
	tg.gw.loginBodyTimeout = 100 * time.Millisecond
	tg.gw.ownWriteTimeout = 100 * time.Millisecond
	session := tg.signIn(t)
	addr := serveGateway(t, tg)
	const size = 12 // one byte every 200 ms: 2.4 s, past the 1 s drain
	c := sendHead(t, addr, fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: %s\r\nCookie: %s=%s\r\nContent-Length: %d\r\n\r\n",
		testPublicHost, session.Name, session.Value, size), "")
	for range size {
		time.Sleep(200 * time.Millisecond)
		if _, err := io.WriteString(c, "A"); err != nil {
			t.Fatalf("the gateway cut an authenticated upload: %v", err)
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(size) || resp.Close {
		t.Errorf("got %d %q (close %v), want 200 %q on a connection kept open", resp.StatusCode, body, resp.Close, strconv.Itoa(size))
	}
}

// A client that asks and never reads the answers cannot hold a
// connection: the gateway's own answers are written within a deadline.
func TestOwnAnswersWriteTimeout(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	tg.gw.ownWriteTimeout = 300 * time.Millisecond
	addr := serveGateway(t, tg)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Pipelined requests for the organisation page, made 32 KiB long by
	// echoing a long query: 150 answers fill the socket buffers (4 MiB
	// at most on Linux by default), however slowly the gateway runs.
	const requests = 1000
	req := "GET " + samlsp.SelectPath + "?q=" + strings.Repeat("x", 32<<10) + " HTTP/1.1\r\nHost: " + testPublicHost +
		"\r\nAccept: text/html\r\n\r\n"
	go func() {
		for range requests {
			if _, err := io.WriteString(c, req); err != nil {
				return
			}
		}
	}()
	time.Sleep(2 * time.Second) // never reading meanwhile
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	_, err = io.Copy(&got, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("the gateway kept the connection of a client that did not read (%d answers sent)", bytes.Count(got.Bytes(), []byte("HTTP/1.1 200")))
	}
	if n := bytes.Count(got.Bytes(), []byte("HTTP/1.1 200")); n >= requests {
		t.Errorf("all %d answers were sent to a client that did not read", n)
	}
}
