package httpguard_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/httpguard"
)

// memConn is a connection whose peer sent in and then closed.
type memConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type oneConn struct{ c net.Conn }

func (l *oneConn) Accept() (net.Conn, error) {
	if l.c == nil {
		return nil, errors.New("closed")
	}
	c := l.c
	l.c = nil
	return c, nil
}
func (l *oneConn) Close() error   { return nil }
func (l *oneConn) Addr() net.Addr { return &net.TCPAddr{} }

// guarded returns what the guard lets through of raw, read in small
// pieces so that every state sees split input.
func guarded(t *testing.T, raw []byte) []byte {
	l := &httpguard.Listener{Listener: &oneConn{&memConn{in: bytes.NewReader(raw)}}, MaxHead: 4096}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

// FuzzGuard checks that the guard only ever passes a prefix of what it
// read, and that whatever Go's own parser reads from that prefix has
// exactly one framing.
func FuzzGuard(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := guarded(t, raw)
		if !bytes.HasPrefix(raw, out) {
			t.Fatalf("passed %q, not a prefix of %q", out, raw)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			cls := r.Header.Values("Content-Length")
			chunked := len(r.TransferEncoding) > 0
			if len(cls) > 1 || (len(cls) > 0 && chunked) || len(r.Header.Values("Transfer-Encoding")) > 0 && !chunked {
				t.Fatalf("passed a request with ambiguous framing: CL %q TE %q", cls, r.TransferEncoding)
			}
			if len(r.Header.Values("Host")) > 1 {
				t.Fatalf("passed a request with several Host fields")
			}
			for name := range r.Header {
				if strings.ContainsAny(name, " \t") {
					t.Fatalf("passed field name %q", name)
				}
			}
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			// The guard stops checking after an upgrade handshake; so
			// does this test.
			if r.Header.Get("Upgrade") != "" {
				return
			}
		}
	})
}
