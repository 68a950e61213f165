package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/gorilla/securecookie"

	"github.com/sso-gateway/sso-gateway/correlation"
)

// Session is a signed-in user, as held in the session cookie. It is
// everything the gateway needs to set the identity headers, so no server
// keeps any state and any replica can serve any request.
type Session struct {
	Tenant       string
	NameID       string
	NameIDFormat string
	Email        string
	Name         string
	Groups       []string
	// GroupsOverage means Entra sent the groups.link claim instead of the
	// groups: the user is in more than 150, and Groups is empty.
	GroupsOverage bool
	// Headers are the tenant's own identity headers (config "headers"),
	// by header name: the claim's values, as the IdP sent them. The proxy
	// joins them into one header value.
	Headers      map[string][]string
	SessionIndex string
	// IssuedAt and Expires are Unix seconds. Expires is the earlier of the
	// configured lifetime and the assertion's SessionNotOnOrAfter.
	IssuedAt int64
	Expires  int64

	// memo is set on the sessions the cache shares between requests; see
	// Memo. A copy of the struct keeps the pointer, but not its use: the
	// memo serves only the Session it was made for.
	memo *sessionMemo
}

// sessionMemo holds what Memo derived from one shared Session.
type sessionMemo struct {
	owner *Session
	value atomic.Pointer[any]
}

// Memo returns derive(s), computed once for a Session that Authenticate
// shares between requests (every request with the same cookie, while the
// tenant's configuration lasts) and kept with it, in the memory the
// session cache accounts for; for any other Session, derive runs on every
// call. It lets the proxy render the identity headers once per session
// rather than once per request. derive must depend on nothing but s, and
// every caller must pass the same derive: there is one memo per session.
// Like the Session, the result must not be modified.
func (s *Session) Memo(derive func(*Session) any) any {
	m := s.memo
	if m == nil || m.owner != s {
		return derive(s)
	}
	if v := m.value.Load(); v != nil {
		return *v
	}
	v := derive(s)
	// Two requests may derive at once; both results are equal, and the
	// first stored is kept.
	m.value.CompareAndSwap(nil, &v)
	return *m.value.Load()
}

// share marks s as shared between requests, with a memo of its own.
func (s *Session) share() {
	s.memo = &sessionMemo{owner: s}
}

// wireSession is a Session as serialized: short keys, and group object IDs
// packed into 16 bytes each rather than 36 characters, so that 150 of them
// fit in one cookie.
type wireSession struct {
	Tenant       string              `json:"t"`
	NameID       string              `json:"n"`
	NameIDFormat string              `json:"nf,omitempty"`
	Email        string              `json:"e,omitempty"`
	Name         string              `json:"dn,omitempty"`
	Groups       []string            `json:"g,omitempty"`
	GroupGUIDs   []byte              `json:"gg,omitempty"`
	Overage      bool                `json:"go,omitempty"`
	Headers      map[string][]string `json:"hv,omitempty"`
	// OldHeaders are Headers as earlier gateways kept them, the values
	// joined by commas, under the key they used; see UnmarshalJSON. A
	// new key for the lists keeps earlier gateways (mid-upgrade, or after
	// a rollback) reading new sessions, without these headers, rather
	// than refusing them.
	OldHeaders   map[string]string `json:"h,omitempty"`
	SessionIndex string            `json:"si,omitempty"`
	IssuedAt     int64             `json:"iat"`
	Expires      int64             `json:"exp"`
}

// MarshalJSON packs the groups as GUIDs when every one is a GUID, as Entra's
// group object IDs are; otherwise it keeps them as strings.
func (s Session) MarshalJSON() ([]byte, error) {
	w := wireSession{
		Tenant: s.Tenant, NameID: s.NameID, NameIDFormat: s.NameIDFormat, Email: s.Email, Name: s.Name,
		Overage: s.GroupsOverage, Headers: s.Headers, SessionIndex: s.SessionIndex, IssuedAt: s.IssuedAt, Expires: s.Expires,
	}
	if packed, ok := packGUIDs(s.Groups); ok {
		w.GroupGUIDs = packed
	} else {
		w.Groups = s.Groups
	}
	return json.Marshal(w)
}

// UnmarshalJSON reverses MarshalJSON.
func (s *Session) UnmarshalJSON(data []byte) error {
	var w wireSession
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if len(w.GroupGUIDs)%16 != 0 {
		return errors.New("samlsp: malformed packed groups")
	}
	*s = Session{
		Tenant: w.Tenant, NameID: w.NameID, NameIDFormat: w.NameIDFormat, Email: w.Email, Name: w.Name,
		Groups: w.Groups, GroupsOverage: w.Overage, Headers: w.Headers, SessionIndex: w.SessionIndex,
		IssuedAt: w.IssuedAt, Expires: w.Expires,
	}
	if n := len(w.GroupGUIDs) / 16; n > 0 {
		// Every GUID in one string, each group a slice of it: one
		// allocation rather than two per group, and less for a cached
		// session to hold.
		all := make([]byte, 0, 36*n)
		for i := 0; i < len(w.GroupGUIDs); i += 16 {
			all = appendGUID(all, w.GroupGUIDs[i:i+16])
		}
		joined := string(all)
		s.Groups = slices.Grow(s.Groups, n)
		for i := range n {
			s.Groups = append(s.Groups, joined[36*i:36*(i+1)])
		}
	}
	if s.Headers == nil && w.OldHeaders != nil {
		// A session made before the values were kept apart: the
		// upstream sees the comma-joined value as it used to, read as
		// the list it always was (a value with a comma in it was
		// already two). Such sessions end within the session lifetime.
		s.Headers = make(map[string][]string, len(w.OldHeaders))
		for name, v := range w.OldHeaders {
			s.Headers[name] = strings.Split(v, ",")
		}
	}
	return nil
}

// packGUIDs packs lower-case canonical GUIDs (as Entra sends group object
// IDs) into 16 bytes each. It reports false if any is not one, so that
// unpacking gives back exactly the strings it was given.
func packGUIDs(groups []string) ([]byte, bool) {
	if len(groups) == 0 {
		return nil, false
	}
	out := make([]byte, 0, 16*len(groups))
	for _, g := range groups {
		if len(g) != 36 || g[8] != '-' || g[13] != '-' || g[18] != '-' || g[23] != '-' {
			return nil, false
		}
		b, err := hex.DecodeString(g[0:8] + g[9:13] + g[14:18] + g[19:23] + g[24:36])
		if err != nil || formatGUID(b) != g {
			return nil, false
		}
		out = append(out, b...)
	}
	return out, true
}

func formatGUID(b []byte) string {
	return string(appendGUID(make([]byte, 0, 36), b))
}

// appendGUID appends the 16 bytes of b as a lower-case canonical GUID.
func appendGUID(dst, b []byte) []byte {
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:16])
}

// Authenticate returns the session in r's session cookie, if it is valid:
// authentic, not expired, for a tenant that is still configured, and sent
// once. Anything else (no cookie, tampered, retired key, expired, a name
// sent twice) is simply no session. Each distinct cookie is decoded once
// (sessioncache.go); the checks that follow run on every request. The
// Session may be shared with other requests: it must not be modified.
func (p *Provider) Authenticate(r *http.Request) (*Session, bool) {
	set := p.s()
	sc := set.cookies.scanSession(r.Header)
	if sc.duplicated != 0 {
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "session cookie sent more than once: no session",
			slog.String("cookies", strings.Join(set.cookies.names(sc.duplicated), ",")),
			slog.String("correlation_id", correlation.FromContext(r.Context())))
		return p.rejectSession(rejectDuplicate)
	}
	now := p.clock.Now().Unix()
	e, reason := p.lookupSession(set, &sc, now)
	switch {
	case reason != "":
		return p.rejectSession(reason)
	case e == nil:
		return nil, false
	}
	s := e.session
	if s.Expires <= now || s.IssuedAt > now+int64(crewsaml.MaxClockSkew/time.Second) {
		if s.Expires <= now {
			set.cache.remove(e)
		}
		return p.rejectSession(rejectExpired)
	}
	ts := p.tenants.Load()
	t, ok := ts.Get(s.Tenant)
	switch {
	case !ok:
		return p.rejectSession(rejectTenant)
	case !ts.servesHost(t, r, set.publicHost):
		return p.rejectSession(rejectHost)
	}
	v := e.viewFor(t)
	if v.session == nil {
		return p.rejectSession(rejectPolicy)
	}
	return v.session, true
}

// lookupSession returns the decoded session of the session cookie in sc:
// from the cache, or decoded and then cached unless expired at now. It
// returns nil and "" when there is no complete cookie, and nil and a
// rejection reason when the cookie does not decode or is expired.
func (p *Provider) lookupSession(set *settings, sc *sessionCookies, now int64) (*cachedSession, string) {
	first, n, ok := sc.split()
	if !ok {
		return nil, ""
	}
	var value string
	if n == 1 {
		// The common case: a substring of the Cookie header.
		if e := set.cache.get(first); e != nil {
			return e, ""
		}
		value = first
	} else {
		var bufp *[]byte
		if set.cache != nil {
			bufp = set.cache.bufs.Get().(*[]byte)
		} else {
			bufp = new([]byte)
		}
		*bufp = sc.appendValue((*bufp)[:0], first, n)
		e := set.cache.getBytes(*bufp)
		if e == nil {
			value = string(*bufp)
		}
		if set.cache != nil {
			set.cache.bufs.Put(bufp)
		}
		if e != nil {
			return e, ""
		}
	}
	s := new(Session)
	if err := set.codec.decode(set.cookies.hostName(sessionCookie), value, s); err != nil {
		return nil, rejectInvalid
	}
	if s.Expires <= now {
		return nil, rejectExpired
	}
	return set.cache.add(value, s, now), ""
}

func (p *Provider) rejectSession(reason string) (*Session, bool) {
	p.metrics.sessionRejections[reason].Inc()
	return nil, false
}

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

// codec encodes and decodes the gateway's cookies with gorilla/securecookie:
// authenticated (HMAC-SHA256) and encrypted (AES), under the cookie's name,
// so that a value minted for one cookie is useless as another.
type codec struct {
	codecs []securecookie.Codec
}

// SessionKey is one securecookie key pair.
type SessionKey struct {
	Hash, Block []byte
}

// equal reports whether k and o are the same key pair.
func (k SessionKey) equal(o SessionKey) bool {
	return bytes.Equal(k.Hash, o.Hash) && bytes.Equal(k.Block, o.Block)
}

// cloneKeys copies keys, so that a caller reusing its slices cannot change
// what the settings were made from.
func cloneKeys(keys []SessionKey) []SessionKey {
	out := make([]SessionKey, len(keys))
	for i, k := range keys {
		out[i] = SessionKey{Hash: bytes.Clone(k.Hash), Block: bytes.Clone(k.Block)}
	}
	return out
}

func newCodec(keys []SessionKey) (*codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("samlsp: no session keys")
	}
	c := &codec{}
	// One serializer for every key: its pools of deflaters and inflaters
	// are shared.
	ser := &compressingJSON{}
	for _, k := range keys {
		sc := securecookie.New(k.Hash, k.Block)
		// Expiry is checked against the Expires and IssuedAt fields with
		// the injected clock; securecookie's own check reads the wall clock.
		sc.MaxAge(0)
		// A session may be split across several cookies (see
		// cookies.writeSession); each piece stays under maxCookieValue.
		sc.MaxLength(maxCookieValue * maxSessionChunks)
		sc.SetSerializer(ser)
		c.codecs = append(c.codecs, sc)
	}
	return c, nil
}

func (c *codec) encode(name string, v any) (string, error) {
	s, err := securecookie.EncodeMulti(name, v, c.codecs[0])
	if err != nil {
		return "", fmt.Errorf("samlsp: encode cookie %s: %w", name, err)
	}
	return s, nil
}

// decode tries every key, so cookies made with a retired-but-listed key
// still work during a rotation.
func (c *codec) decode(name, value string, v any) error {
	return securecookie.DecodeMulti(name, value, v, c.codecs...)
}

// compressingJSON serializes cookie values as JSON, deflated when that
// pays (sessions with many groups), behind one marker byte. The zero value
// is ready to use.
type compressingJSON struct {
	// deflaters recycles flate writers: flate.NewWriter allocates about a
	// megabyte of hash tables and window, which every login that deflates
	// its session (20 groups are enough) would otherwise allocate and clear
	// again, and leave to the collector.
	deflaters sync.Pool // of *flate.Writer
	// inflaters recycles what inflating a value needs: a flate reader
	// holds some 40 KiB of tables and window, which flate.NewReader would
	// allocate again for every deflated cookie decoded.
	inflaters sync.Pool // of *inflater
}

// deflateLevel is BestSpeed: a session is mostly group GUIDs, packed into
// bytes and then base64 in the JSON, where longer searches find almost
// nothing more (the cookies of a 150-group session grow by 48 bytes of
// 5,000 over BestCompression's) at several times the work, and a pooled
// writer's tables are the smallest (about 800 KB, against 1.1 MB).
const deflateLevel = flate.BestSpeed

// inflater is one reusable decompression: the flate reader (a
// flate.Resetter), its source, and the buffer it inflates into.
type inflater struct {
	src bytes.Reader
	fr  io.ReadCloser
	lim io.LimitedReader // fr, cut at maxInflated+1
	out bytes.Buffer
}

// maxPooledInflate is the largest output buffer put back in the pool; one
// that grew past it (a value near maxInflated) is left to the collector.
const maxPooledInflate = 16 << 10

// compressAbove is the JSON size above which a value is deflated; small
// values would grow, and every request would pay for inflating them.
const compressAbove = 512

// maxInflated bounds a decompressed value: a small cookie must not inflate
// into megabytes (its HMAC is checked first, but keys can leak).
const maxInflated = 64 << 10

func (c *compressingJSON) Serialize(src any) ([]byte, error) {
	data, err := json.Marshal(src)
	if err != nil {
		return nil, err
	}
	if len(data) > maxInflated {
		// Deserialize would refuse it: a session that could never be read
		// back must fail the login, not loop it.
		return nil, fmt.Errorf("samlsp: cookie value of %d bytes exceeds %d", len(data), maxInflated)
	}
	if len(data) <= compressAbove {
		return append([]byte{'j'}, data...), nil
	}
	var buf bytes.Buffer
	buf.WriteByte('z')
	zw, _ := c.deflaters.Get().(*flate.Writer)
	if zw == nil {
		if zw, err = flate.NewWriter(&buf, deflateLevel); err != nil {
			return nil, err
		}
	} else {
		zw.Reset(&buf)
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// The writer keeps a reference to buf until its next use, which
	// resets it before writing anything.
	c.deflaters.Put(zw)
	return buf.Bytes(), nil
}

func (c *compressingJSON) Deserialize(src []byte, dst any) error {
	if len(src) == 0 {
		return errors.New("samlsp: empty cookie value")
	}
	switch src[0] {
	case 'j':
		return json.Unmarshal(src[1:], dst)
	case 'z':
		in, _ := c.inflaters.Get().(*inflater)
		if in == nil {
			in = &inflater{}
		}
		defer c.release(in)
		in.src.Reset(src[1:])
		if in.fr == nil {
			in.fr = flate.NewReader(&in.src)
		} else if err := in.fr.(flate.Resetter).Reset(&in.src, nil); err != nil {
			return fmt.Errorf("samlsp: inflate cookie value: %w", err)
		}
		in.lim = io.LimitedReader{R: in.fr, N: maxInflated + 1}
		in.out.Reset()
		if _, err := in.out.ReadFrom(&in.lim); err != nil {
			return fmt.Errorf("samlsp: inflate cookie value: %w", err)
		}
		if in.out.Len() > maxInflated {
			return errors.New("samlsp: cookie value inflates too far")
		}
		// json.Unmarshal copies what it keeps, so the buffer may be reused.
		return json.Unmarshal(in.out.Bytes(), dst)
	}
	return errors.New("samlsp: unknown cookie value encoding")
}

// release puts in back in the pool, without its reference to the cookie
// value, unless its buffer grew large.
func (c *compressingJSON) release(in *inflater) {
	in.src.Reset(nil)
	if in.out.Cap() > maxPooledInflate {
		return
	}
	c.inflaters.Put(in)
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
func cookieValue(raw string) (string, bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw = raw[1 : len(raw)-1]
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
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
