package samlsp

// The gateway's cookies: their names, the session's split into chunks that
// browsers accept, and how they are read back from a request.

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// CookiePrefix starts every cookie the gateway sets. The upstream never sees
// cookies with this prefix, so it must not use it for its own.
const CookiePrefix = "ssogw_"

// Cookie names, without the __Host- / __Secure- prefix that is added when
// the public URL is https.
const (
	sessionCookie = CookiePrefix + "session"
	tenantCookie  = CookiePrefix + "tenant"
	trackerCookie = CookiePrefix + "req_"
)

// IsGatewayCookie reports whether a cookie name is one of the gateway's own,
// which must never be forwarded upstream.
func IsGatewayCookie(name string) bool {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-")
	return strings.HasPrefix(name, CookiePrefix)
}

// maxCookieValue keeps every cookie under the 4096 bytes browsers accept for
// name, value and attributes together.
const maxCookieValue = 3800

// maxSessionChunks bounds how many cookies one session may take. Four
// chunks of 3800 bytes stay under the 16 KiB request header limit of
// common servers; one or two carry a session with 150 groups.
const maxSessionChunks = 4

// cookies knows the names and attributes of the gateway's cookies, which
// depend on whether browsers reach it over https.
type cookies struct {
	secure bool
}

// name returns the on-the-wire name: on https the __Host- prefix makes the
// browser refuse the cookie unless it is Secure, host-only and for path /,
// so a sibling subdomain cannot plant or shadow it.
func (c cookies) hostName(base string) string {
	if c.secure {
		return "__Host-" + base
	}
	return base
}

// pathName is for cookies scoped to a path, which __Host- does not allow.
func (c cookies) pathName(base string) string {
	if c.secure {
		return "__Secure-" + base
	}
	return base
}

func (c cookies) session(value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name:     c.hostName(sessionCookie),
		Value:    value,
		Path:     "/",
		Expires:  expires,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

func (c cookies) expired(name, path string) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    "",
		Path:     path,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	}
}

// writeSession sets the session cookie, split into numbered cookies when
// it is too large for one: the first carries "<n>~" and the first piece,
// the others (_1, _2, ...) the rest. Pieces a larger earlier session left
// behind are expired.
func (c cookies) writeSession(w http.ResponseWriter, value string, expires time.Time) error {
	n := (len(value) + maxCookieValue - 1) / maxCookieValue
	if n > maxSessionChunks {
		return fmt.Errorf("samlsp: session needs %d cookies, the limit is %d", n, maxSessionChunks)
	}
	for i := range maxSessionChunks {
		name := c.sessionChunkName(i)
		if i >= n {
			if i > 0 {
				http.SetCookie(w, c.expired(name, "/"))
			}
			continue
		}
		piece := value[i*maxCookieValue : min(len(value), (i+1)*maxCookieValue)]
		if i == 0 && n > 1 {
			piece = strconv.Itoa(n) + "~" + piece
		}
		ck := c.session(piece, expires)
		ck.Name = name
		http.SetCookie(w, ck)
	}
	return nil
}

// readSession reassembles the session cookie, or returns "" when it is
// absent, incomplete or duplicated.
func (c cookies) readSession(r *http.Request) string {
	sc := c.scanSession(r.Header)
	if sc.duplicated != 0 {
		return ""
	}
	return sc.value()
}

// sessionCookies is what a request carries of the session cookie.
type sessionCookies struct {
	// pieces are the values of the pieces present (bit i of valid set),
	// the first of each name as net/http's Request.Cookie would return
	// it.
	pieces [maxSessionChunks]string
	// valid, seen and duplicated hold a bit per piece (1<<i): its name
	// came with a well-formed value; came at all; came more than once.
	valid, seen, duplicated uint8
}

// scanSession reads the pieces of the session cookie from the Cookie
// header lines in h, parsing each cookie as Request.Cookie does, in one
// pass that allocates nothing: Authenticate runs on every request, and
// Request.Cookie would build a slice of every cookie of the request for
// each piece. Unlike Request.Cookie, it notes which names come more than
// once, in one line or across several.
func (c cookies) scanSession(h http.Header) sessionCookies {
	var sc sessionCookies
	for _, line := range h["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			if part == "" {
				continue
			}
			name, value, _ := strings.Cut(part, "=")
			i := c.sessionChunkIndex(textproto.TrimString(name))
			if i < 0 {
				continue
			}
			bit := uint8(1) << i
			if sc.seen&bit != 0 {
				sc.duplicated |= bit
				continue
			}
			sc.seen |= bit
			if v, ok := cookieValue(value); ok {
				sc.pieces[i], sc.valid = v, sc.valid|bit
			}
		}
	}
	return sc
}

// split returns the first piece of the session cookie's value, without
// its "<n>~" when it is chunked, and the number of pieces n; ok is false
// when the cookie is absent or incomplete. It does not look at
// duplicates.
func (sc *sessionCookies) split() (first string, n int, ok bool) {
	if sc.valid&1 == 0 {
		return "", 0, false
	}
	count, rest, chunked := strings.Cut(sc.pieces[0], "~")
	if !chunked {
		return sc.pieces[0], 1, true
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 || n > maxSessionChunks {
		return "", 0, false
	}
	for i := 1; i < n; i++ {
		if sc.valid&(1<<i) == 0 {
			return "", 0, false
		}
	}
	return rest, n, true
}

// appendValue appends to dst the value of a session cookie of n pieces
// whose first is first, as split returned them.
func (sc *sessionCookies) appendValue(dst []byte, first string, n int) []byte {
	dst = append(dst, first...)
	for i := 1; i < n; i++ {
		dst = append(dst, sc.pieces[i]...)
	}
	return dst
}

// value reassembles the session cookie, or returns "" when it is absent
// or incomplete. It does not look at duplicates.
func (sc *sessionCookies) value() string {
	first, n, ok := sc.split()
	switch {
	case !ok:
		return ""
	case n == 1:
		return first
	}
	size := len(first)
	for i := 1; i < n; i++ {
		size += len(sc.pieces[i])
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteString(first)
	for i := 1; i < n; i++ {
		b.WriteString(sc.pieces[i])
	}
	return b.String()
}

// cookieValue is net/http's parsing of a cookie value: without its double
// quotes, if quoted; not ok if it holds a byte RFC 6265 forbids.
//
// The session cookie is kilobytes long and read on every request, so the
// check reads eight bytes at a time (bit tricks: haszero, hasless, each
// exact for "some byte of the word"), and byte by byte only the tail.
func cookieValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	rest := raw
	for len(rest) >= 8 {
		x := uint64(rest[0]) | uint64(rest[1])<<8 | uint64(rest[2])<<16 | uint64(rest[3])<<24 |
			uint64(rest[4])<<32 | uint64(rest[5])<<40 | uint64(rest[6])<<48 | uint64(rest[7])<<56
		bad := x&highs | // 0x80 and above
			(x-ones*0x20)&^x&highs | // below 0x20
			zero(x^ones*0x7f) | zero(x^ones*'"') | zero(x^ones*';') | zero(x^ones*'\\')
		if bad != 0 {
			return "", false
		}
		rest = rest[8:]
	}
	for i := 0; i < len(rest); i++ {
		if b := rest[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", false
		}
	}
	return raw, true
}

// sessionChunkIndex returns which piece of the session cookie name names
// (0 for the first, whose name is the session cookie's), or -1 if it names
// none. It compares without building the names, which would allocate.
func (c cookies) sessionChunkIndex(name string) int {
	if c.secure {
		var ok bool
		if name, ok = strings.CutPrefix(name, "__Host-"); !ok {
			return -1
		}
	}
	rest, ok := strings.CutPrefix(name, sessionCookie)
	switch {
	case !ok:
		return -1
	case rest == "":
		return 0
	case len(rest) == 2 && rest[0] == '_' && rest[1] >= '1' && rest[1] < '0'+maxSessionChunks:
		return int(rest[1] - '0')
	}
	return -1
}

// clearSession expires every piece of the session cookie.
func (c cookies) clearSession(w http.ResponseWriter) {
	for i := range maxSessionChunks {
		http.SetCookie(w, c.expired(c.sessionChunkName(i), "/"))
	}
}

// sessionChunkName is the name of piece i of the session cookie.
func (c cookies) sessionChunkName(i int) string {
	if i == 0 {
		return c.hostName(sessionCookie)
	}
	return c.hostName(sessionCookie + "_" + strconv.Itoa(i))
}

// names returns the names of the pieces of the session cookie whose bits
// are set in bits.
func (c cookies) names(bits uint8) []string {
	var out []string
	for i := range maxSessionChunks {
		if bits&(1<<i) != 0 {
			out = append(out, c.sessionChunkName(i))
		}
	}
	return out
}
