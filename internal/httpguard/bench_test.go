package httpguard_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/httpguard"
)

// browserHead is a request head of the size browsers send to the
// gateway: a session cookie of a few kilobytes and the usual fields.
var browserHead = "GET /documents/folder/Q3%20Minutes.docx?version=3 HTTP/1.1\r\n" +
	"Host: cloudimanage.com\r\n" +
	"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-GB,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Cookie: __Host-ssogw_session=" + strings.Repeat("a", 3000) + "\r\n" +
	"Sec-Fetch-Mode: navigate\r\n" +
	"X-Forwarded-For: 198.51.100.7\r\n\r\n"

// drain reads everything the guard passes from raw.
func drain(b *testing.B, raw []byte, buf []byte) {
	l := &httpguard.Listener{Listener: &oneConn{&memConn{in: bytes.NewReader(raw)}}}
	c, err := l.Accept()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		m, err := c.Read(buf)
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if n != len(raw) {
		b.Fatalf("passed %d of %d bytes", n, len(raw))
	}
}

// BenchmarkHeads checks 100 pipelined browser request heads per
// iteration.
func BenchmarkHeads(b *testing.B) {
	raw := []byte(strings.Repeat(browserHead, 100))
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		drain(b, raw, buf)
	}
}

// BenchmarkBody streams a 16 MiB upload, with Content-Length and chunked.
func BenchmarkBody(b *testing.B) {
	const size = 16 << 20
	body := bytes.Repeat([]byte("x"), size)
	var chunked bytes.Buffer
	for i := 0; i < size; i += 32 << 10 {
		chunked.WriteString("8000\r\n")
		chunked.Write(body[i : i+32<<10])
		chunked.WriteString("\r\n")
	}
	chunked.WriteString("0\r\n\r\n")
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"content-length", append([]byte("PUT /dav/big.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 16777216\r\n\r\n"), body...)},
		{"chunked", append([]byte("PUT /dav/big.bin HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), chunked.Bytes()...)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 32<<10) // what the HTTP server's body reads ask for
			b.SetBytes(int64(len(tc.raw)))
			b.ReportAllocs()
			for b.Loop() {
				drain(b, tc.raw, buf)
			}
		})
	}
}
