// Package httpguard refuses ambiguous HTTP/1.x request framing before the
// Go HTTP server parses it.
//
// Request smuggling needs two parsers that disagree about where a request
// ends: a load balancer in front of the gateway and the gateway itself. Go's
// server is lenient where others are strict or differently lenient: it
// unfolds obs-fold lines, accepts bare LF line endings, and lets
// Transfer-Encoding override Content-Length. A request the load balancer
// framed one way could then be read another way here. This package checks
// the raw bytes of every request head and chunked body on a plaintext
// connection against the strict grammar of RFC 9112 and answers 400 to
// anything ambiguous: both Content-Length and Transfer-Encoding, several
// Content-Length or Host headers, a Transfer-Encoding other than exactly
// "chunked", obs-fold, bare CR or LF, malformed chunk framing, and requests
// for HTTP/2 over cleartext (Upgrade: h2c, the "PRI" preface), which the
// gateway does not speak.
//
// Bodies pass through as they arrive: a Content-Length body is not copied
// twice, and chunked bodies are only scanned for their framing. After a
// successful protocol switch (a websocket's 101 response) the connection
// is passed through untouched.
//
// It applies to plaintext listeners, which sit behind a load balancer. A
// TLS listener faces clients directly: there is no second parser to
// disagree with, and wrapping it would hide the *tls.Conn that the HTTP
// server needs for HTTP/2.
package httpguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// Reasons for refusing a request, for the caller's metric.
const (
	ReasonFraming  = "framing"   // Content-Length / Transfer-Encoding / chunk framing
	ReasonSyntax   = "syntax"    // line endings, obs-fold, request line, field syntax
	ReasonTooLarge = "too_large" // request head over the limit
	ReasonH2C      = "h2c"       // HTTP/2 over cleartext
)

// Listener wraps accepted connections with the framing checks.
type Listener struct {
	net.Listener
	// MaxHead bounds a request head (request line and fields); zero
	// means 1 MiB. Longer heads get 431.
	MaxHead int
	// OnReject, if set, is called for each refusal.
	OnReject func(Rejection)
}

// Rejection describes a refused request.
type Rejection struct {
	Reason string   // one of the Reason constants
	Detail string   // what was wrong, for the log
	Remote net.Addr // the peer: the load balancer, usually
}

// Accept returns the next connection, wrapped.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	maxHead := l.MaxHead
	if maxHead <= 0 {
		maxHead = 1 << 20
	}
	return &Conn{Conn: c, maxHead: maxHead, onReject: l.OnReject}, nil
}

type state int

const (
	stHead           state = iota // expecting a request head
	stBody                        // remaining bytes of a Content-Length body
	stChunkSize                   // expecting a chunk-size line
	stChunkData                   // remaining bytes of a chunk
	stChunkEnd                    // expecting the CRLF after a chunk
	stTrailer                     // expecting trailer fields or the final CRLF
	stUpgradePending              // after an Upgrade request: waiting for the response
	stPassthrough                 // the connection switched protocols
	stRefused                     // refused: no more bytes for the server
)

// Buffering of unchecked bytes: a connection starts with initialBuffer,
// like the HTTP server's own reader, and reads at least minRead at a time.
const (
	initialBuffer = 4 << 10
	minRead       = 1 << 10
)

// Conn checks the framing of the requests read from it.
type Conn struct {
	net.Conn
	maxHead  int
	onReject func(Rejection)

	readMu sync.Mutex // serializes Read

	mu        sync.Mutex // guards the fields below
	state     state
	remaining int64  // of stBody or stChunkData
	scanned   int    // bytes of an unfinished head already scanned
	raw       []byte // read from the network, the first ready bytes checked
	buf       []byte // raw's backing array
	ready     int
	refusal   []byte // the response to write when the server closes
	afterBody state  // the state after the current body: stHead or stUpgradePending
}

// Read returns checked bytes only.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	// raw and the parser state other than the upgrade handshake belong to
	// the reader; readMu keeps concurrent Reads, which net.Conn allows,
	// from interleaving.
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		c.mu.Lock()
		if c.ready > 0 {
			n := copy(p, c.raw[:c.ready])
			c.raw = c.raw[n:]
			c.ready -= n
			c.mu.Unlock()
			return n, nil
		}
		st := c.state
		if st == stRefused {
			c.mu.Unlock()
			return 0, io.EOF
		}
		if c.advance() {
			c.mu.Unlock()
			continue
		}
		if st == stUpgradePending && len(c.raw) > c.maxHead {
			// The client is talking before the server answered its
			// handshake; it may not buffer without bound here.
			c.refuse(400, ReasonSyntax, "data sent before the upgrade response")
			c.mu.Unlock()
			continue
		}
		// A body with nothing buffered is read straight into p: large
		// uploads are not copied twice. So is a switched protocol.
		if len(c.raw) == 0 && (st == stBody || st == stChunkData || st == stPassthrough) {
			limit := int64(len(p))
			if st != stPassthrough && c.remaining < limit {
				limit = c.remaining
			}
			c.mu.Unlock()
			n, err := c.Conn.Read(p[:limit])
			if st != stPassthrough {
				c.mu.Lock()
				c.remaining -= int64(n)
				if c.remaining == 0 {
					c.endOfData()
				}
				c.mu.Unlock()
			}
			return n, err
		}
		c.makeRoom()
		buf := c.raw[len(c.raw):cap(c.raw)]
		c.mu.Unlock()
		n, err := c.Conn.Read(buf)
		c.mu.Lock()
		c.raw = c.raw[:len(c.raw)+n]
		c.mu.Unlock()
		if err != nil && n == 0 {
			return 0, err
		}
	}
}

// makeRoom leaves space after raw for a read: raw moves to the start of
// the connection's buffer, which grows only while a head is longer than it.
// Buffers that grew past 64 KiB are dropped once empty, so that idle
// connections hold little. c.mu is held.
func (c *Conn) makeRoom() {
	if len(c.raw) == 0 && cap(c.buf) > 64<<10 {
		c.buf = nil
	}
	if c.buf == nil {
		c.buf = make([]byte, initialBuffer)
	}
	if cap(c.raw)-len(c.raw) >= minRead {
		return
	}
	if len(c.raw)+minRead <= len(c.buf) {
		n := copy(c.buf, c.raw)
		c.raw = c.buf[:n]
		return
	}
	grown := make([]byte, 2*len(c.buf)+len(c.raw))
	n := copy(grown, c.raw)
	c.buf, c.raw = grown, grown[:n]
}

// Write watches for the response to an Upgrade request: a 101 switches
// the connection to pass-through, any other final response means more
// requests may follow.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.state == stUpgradePending || c.afterBody == stUpgradePending {
		next := stUpgradePending
		switch {
		case bytes.HasPrefix(p, []byte("HTTP/1.1 101 ")), bytes.HasPrefix(p, []byte("HTTP/1.0 101 ")):
			next = stPassthrough
		case bytes.HasPrefix(p, []byte("HTTP/1.1 1")), bytes.HasPrefix(p, []byte("HTTP/1.0 1")):
			// 100 Continue and other interim responses: still waiting.
		case bytes.HasPrefix(p, []byte("HTTP/1.")):
			next = stHead
		}
		if c.state == stUpgradePending {
			c.state = next
		} else {
			c.afterBody = next
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// CloseWrite writes the refusal, if any, and shuts down the writing side,
// which the HTTP server does before closing a connection it refused
// itself.
func (c *Conn) CloseWrite() error {
	c.writeRefusal()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *Conn) writeRefusal() {
	c.mu.Lock()
	refusal := c.refusal
	c.refusal = nil
	c.mu.Unlock()
	if refusal != nil {
		_, _ = c.Conn.Write(refusal)
	}
}

// Close writes the refusal, if any, once the server has finished with
// the requests before it, then closes.
func (c *Conn) Close() error {
	c.writeRefusal()
	return c.Conn.Close()
}

// advance checks as much of raw as it can and reports whether it moved.
// c.mu is held.
func (c *Conn) advance() bool {
	unchecked := c.raw[c.ready:]
	switch c.state {
	case stHead:
		return c.head(unchecked)
	case stBody, stChunkData:
		if len(unchecked) == 0 {
			return false
		}
		n := int64(len(unchecked))
		if n > c.remaining {
			n = c.remaining
		}
		c.ready += int(n)
		c.remaining -= n
		if c.remaining == 0 {
			c.endOfData()
		}
		return true
	case stChunkSize:
		line, ok := c.line(unchecked)
		if !ok {
			return false
		}
		if line == nil {
			return true // refused
		}
		size, err := chunkSize(line)
		if err != nil {
			c.refuse(400, ReasonFraming, err.Error())
			return true
		}
		c.ready += len(line) + 2
		if size == 0 {
			c.state = stTrailer
		} else {
			c.state, c.remaining = stChunkData, size
		}
		return true
	case stChunkEnd:
		if len(unchecked) < 2 {
			return false
		}
		if unchecked[0] != '\r' || unchecked[1] != '\n' {
			c.refuse(400, ReasonFraming, "chunk data not followed by CRLF")
			return true
		}
		c.ready += 2
		c.state = stChunkSize
		return true
	case stTrailer:
		line, ok := c.line(unchecked)
		if !ok {
			return false
		}
		if line == nil {
			return true
		}
		if len(line) > 0 {
			if _, _, err := field(line); err != nil {
				c.refuse(400, ReasonSyntax, "trailer: "+err.Error())
				return true
			}
		}
		c.ready += len(line) + 2
		if len(line) == 0 {
			c.state = c.afterBody
		}
		return true
	case stPassthrough:
		if len(unchecked) == 0 {
			return false
		}
		c.ready = len(c.raw)
		return true
	}
	return false // stUpgradePending waits for the response; stRefused
}

// endOfData moves past a finished body or chunk. c.mu is held.
func (c *Conn) endOfData() {
	if c.state == stChunkData {
		c.state = stChunkEnd
		return
	}
	c.state = c.afterBody
}

// line returns the next CRLF-terminated line of b without its CRLF, false
// when b holds no complete line yet, or nil (and refuses) when the line
// breaks the rules or is too long. c.mu is held.
func (c *Conn) line(b []byte) ([]byte, bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(b) > c.maxHead {
			c.refuse(431, ReasonTooLarge, "line too long")
			return nil, true
		}
		if j := bytes.IndexByte(b, '\r'); j >= 0 && j+1 < len(b) {
			c.refuse(400, ReasonSyntax, "bare CR")
			return nil, true
		}
		return nil, false
	}
	if i == 0 || b[i-1] != '\r' {
		c.refuse(400, ReasonSyntax, "bare LF")
		return nil, true
	}
	line := b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		c.refuse(400, ReasonSyntax, "bare CR")
		return nil, true
	}
	return line, true
}

// head checks a complete request head and sets up its body. c.mu is held.
func (c *Conn) head(b []byte) bool {
	// Only the bytes that arrived since the last call are scanned, so a
	// head trickling in a byte at a time costs linear time.
	from := max(c.scanned-3, 0)
	end := bytes.Index(b[from:], []byte("\r\n\r\n"))
	limit := len(b)
	if end >= 0 {
		end += from
		limit = end + 4
	}
	// A bare LF refuses the request as soon as it arrives: it may be
	// what the client meant as the end of the head.
	for i := from; ; i++ {
		j := bytes.IndexByte(b[i:limit], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			c.refuse(400, ReasonSyntax, "bare LF")
			return true
		}
	}
	if end < 0 {
		c.scanned = len(b)
		if len(b) > c.maxHead {
			c.refuse(431, ReasonTooLarge, "request head too large")
			return true
		}
		return false
	}
	c.scanned = 0
	headLen := end + 4
	if headLen > c.maxHead {
		c.refuse(431, ReasonTooLarge, "request head too large")
		return true
	}
	h, err := parseHead(b[:end+2])
	if err != nil {
		var he *headError
		reason := ReasonSyntax
		if errors.As(err, &he) {
			reason = he.reason
		}
		c.refuse(400, reason, err.Error())
		return true
	}
	c.ready += headLen
	c.afterBody = stHead
	if h.upgrade {
		c.afterBody = stUpgradePending
	}
	switch {
	case h.chunked:
		c.state = stChunkSize
	case h.length > 0:
		c.state, c.remaining = stBody, h.length
	default:
		c.state = c.afterBody
	}
	return true
}

// refuse stops the connection: the server reads EOF after the bytes
// already checked, and the refusal is written when it closes. c.mu is held.
func (c *Conn) refuse(status int, reason, detail string) {
	if c.state == stRefused {
		return
	}
	c.state = stRefused
	c.raw = c.raw[:c.ready]
	body := fmt.Sprintf("%s: %s\n", statusText(status), detail)
	c.refusal = fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, statusText(status), len(body), body)
	if c.onReject != nil {
		c.onReject(Rejection{Reason: reason, Detail: detail, Remote: c.Conn.RemoteAddr()})
	}
}

func statusText(status int) string {
	if status == 431 {
		return "Request Header Fields Too Large"
	}
	return "Bad Request"
}

// headInfo is what the framing checks learned from a head.
type headInfo struct {
	chunked bool
	length  int64
	upgrade bool
}

type headError struct {
	reason, msg string
}

func (e *headError) Error() string { return e.msg }

func syntaxErr(format string, args ...any) error {
	return &headError{reason: ReasonSyntax, msg: fmt.Sprintf(format, args...)}
}

func framingErr(format string, args ...any) error {
	return &headError{reason: ReasonFraming, msg: fmt.Sprintf(format, args...)}
}

// parseHead checks a request head (its lines, each ending in CRLF, without
// the final empty line) against RFC 9112 with no leniency.
func parseHead(b []byte) (headInfo, error) {
	var h headInfo
	if i := bytes.IndexByte(b, '\r'); i >= 0 && (i+1 >= len(b) || b[i+1] != '\n') {
		return h, syntaxErr("bare CR")
	}
	first, fields, _ := bytes.Cut(b, crlf)
	if bytes.IndexByte(first, '\n') >= 0 {
		return h, syntaxErr("bare LF")
	}
	version, err := requestLine(first)
	if err != nil {
		return h, err
	}
	// One pass over the fields. Every field's syntax is checked before a
	// framing error is returned, so that a malformed line is reported as
	// such rather than as the framing it would have changed: the first
	// framing error is kept until the last line has passed.
	var lengths, encodings, hosts int
	var connectionUpgrade, upgrade bool
	var framing error
	for rest := fields; len(rest) > 0; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, crlf)
		if bytes.IndexByte(l, '\n') >= 0 {
			return h, syntaxErr("bare LF")
		}
		name, value, err := field(l)
		if err != nil {
			return h, err
		}
		if framing != nil {
			continue
		}
		// Names are compared by length first: most fields are none of
		// these, and EqualFold is the costlier test.
		switch {
		case len(name) == len("content-length") && bytes.EqualFold(name, []byte("content-length")):
			lengths++
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || !digits(value) {
				framing = framingErr("invalid Content-Length %q", value)
			}
			h.length = n
		case len(name) == len("transfer-encoding") && bytes.EqualFold(name, []byte("transfer-encoding")):
			encodings++
			if !bytes.EqualFold(value, []byte("chunked")) {
				framing = framingErr("Transfer-Encoding %q: only a single \"chunked\" is accepted", value)
			}
			h.chunked = true
		case len(name) == len("host") && bytes.EqualFold(name, []byte("host")):
			hosts++
		case len(name) == len("upgrade") && bytes.EqualFold(name, []byte("upgrade")):
			if hasToken(value, "h2c") {
				framing = &headError{reason: ReasonH2C, msg: "HTTP/2 over cleartext (h2c) is not supported"}
			}
			upgrade = true
		case len(name) == len("http2-settings") && bytes.EqualFold(name, []byte("http2-settings")):
			framing = &headError{reason: ReasonH2C, msg: "HTTP/2 over cleartext (h2c) is not supported"}
		case len(name) == len("connection") && bytes.EqualFold(name, []byte("connection")):
			if hasToken(value, "upgrade") {
				connectionUpgrade = true
			}
		}
	}
	if framing != nil {
		return h, framing
	}
	switch {
	case lengths > 1:
		return h, framingErr("several Content-Length fields")
	case encodings > 1:
		return h, framingErr("several Transfer-Encoding fields")
	case lengths > 0 && encodings > 0:
		return h, framingErr("both Content-Length and Transfer-Encoding")
	case encodings > 0 && version != "HTTP/1.1":
		return h, framingErr("Transfer-Encoding in an %s request", version)
	case hosts > 1:
		return h, syntaxErr("several Host fields")
	case hosts == 0 && version == "HTTP/1.1":
		return h, syntaxErr("no Host field")
	}
	h.upgrade = upgrade && connectionUpgrade
	return h, nil
}

var crlf = []byte("\r\n")

// requestLine checks "method SP request-target SP HTTP-version".
func requestLine(l []byte) (string, error) {
	method, rest, ok1 := bytes.Cut(l, []byte(" "))
	target, ver, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || bytes.IndexByte(ver, ' ') >= 0 {
		return "", syntaxErr("malformed request line")
	}
	var version string
	switch string(ver) {
	case "HTTP/1.1":
		version = "HTTP/1.1"
	case "HTTP/1.0":
		version = "HTTP/1.0"
	}
	if len(method) == 0 || !token(method) {
		return "", syntaxErr("malformed method")
	}
	if string(method) == "PRI" {
		return "", &headError{reason: ReasonH2C, msg: "HTTP/2 over cleartext (h2c) is not supported"}
	}
	if len(target) == 0 {
		return "", syntaxErr("empty request target")
	}
	for _, ch := range target {
		if ch <= ' ' || ch == 0x7f {
			return "", syntaxErr("control character in the request target")
		}
	}
	if version == "" {
		return "", syntaxErr("unsupported version %q", ver)
	}
	return version, nil
}

// field splits "name: value" with no whitespace before the colon, no
// obs-fold (a line starting with whitespace) and no control characters but
// HTAB in the value, which is returned without surrounding whitespace.
func field(l []byte) ([]byte, []byte, error) {
	if len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
		return nil, nil, syntaxErr("obs-fold (a field line starting with whitespace)")
	}
	i := bytes.IndexByte(l, ':')
	if i <= 0 {
		return nil, nil, syntaxErr("malformed field line")
	}
	name, value := l[:i], l[i+1:]
	if !token(name) {
		return nil, nil, syntaxErr("invalid field name %q", name)
	}
	if !visible(value) {
		return nil, nil, syntaxErr("control character in field %q", name)
	}
	return name, bytes.Trim(value, " \t"), nil
}

// visible reports whether b holds no control character but HTAB, and no
// DEL: what a field value may hold. A session cookie makes field values of
// kilobytes on every request, so the check reads eight bytes at a time
// and looks at single bytes only in a word that may hold one.
func visible(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		del := x ^ (ones * 0x7f)
		// A byte below 0x20, or a byte equal to 0x7f; exact for "any
		// byte", which is all that is asked (bit tricks: hasless, haszero).
		if ((x-ones*0x20)&^x|(del-ones)&^del)&highs != 0 && !visibleBytes(b[:8]) {
			return false
		}
		b = b[8:]
	}
	return visibleBytes(b)
}

func visibleBytes(b []byte) bool {
	for _, ch := range b {
		if ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}

// chunkSize parses "1*HEXDIG [ chunk-ext ]".
func chunkSize(l []byte) (int64, error) {
	hex := l
	if i := bytes.IndexByte(l, ';'); i >= 0 {
		hex = l[:i]
		if !visibleBytes(l[i:]) {
			return 0, errors.New("control character in a chunk extension")
		}
	}
	if len(hex) == 0 || len(hex) > 15 {
		return 0, errors.New("invalid chunk size")
	}
	var n int64
	for _, ch := range hex {
		var d byte
		switch {
		case ch >= '0' && ch <= '9':
			d = ch - '0'
		case ch >= 'a' && ch <= 'f':
			d = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, errors.New("invalid chunk size")
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

func digits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return false
		}
	}
	return true
}

// token reports whether b is an RFC 9110 token.
func token(b []byte) bool {
	for _, ch := range b {
		if !tchar[ch] {
			return false
		}
	}
	return len(b) > 0
}

// tchar marks the bytes of a token (RFC 9110 §5.6.2).
var tchar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()

// hasToken reports whether a comma-separated field value lists tok.
func hasToken(value []byte, tok string) bool {
	for part := range bytes.SplitSeq(value, []byte(",")) {
		if bytes.EqualFold(bytes.Trim(part, " \t"), []byte(tok)) {
			return true
		}
	}
	return false
}
