package samlsp

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The session cache spares every request but the first of each session
// cookie what decoding it costs: an HMAC over the whole value, AES, often
// inflating, and JSON. A browser sends the same cookie with every request
// until its session ends, so a replica decodes each one once.
//
// What it may never do is make a cookie valid that decoding would refuse:
//   - It is keyed by the cookie's whole value, compared byte for byte (Go's
//     map compares keys in full; the hash only picks the bucket, and is
//     seeded per process). A value that differs in one bit is another key,
//     and decoding decides about it. No shorter digest of attacker input
//     stands for a value.
//   - Only values that decoded are entered; nothing negative is cached.
//   - It belongs to the session keys and cookie names it was filled under
//     (settings): Reconfigure with other keys, or a change between http
//     and https, starts an empty cache, so a cookie of a retired key
//     decodes (and fails) again.
//   - Expiry is checked against the clock on every request, as it is after
//     decoding, and an entry found expired is dropped.
//   - The tenant's current policy is applied per tenant table: a reload
//     builds new *Tenant values, and the first request after it applies the
//     new policy to a copy of the decoded session. The decoded session
//     itself is never changed and never handed out when the policy changes
//     anything.
//   - The duplicate-cookie rule runs before the cache is consulted.
//
// It is bounded in entries and in bytes, and evicts with CLOCK: a hit sets
// a bit, and the hand clears bits until it finds an entry not used since
// its last pass (or an expired one). Hits take only a read lock.

// Default bounds of the session cache. A user signed in with 150 groups
// (Entra's maximum in a token) takes about 20 KiB an entry: the cookie's
// value (4.6 KiB), the groups (5.4 KiB and their slice), and the
// identity headers the proxy renders once (5.5 KiB). 5,000 of them
// take 100 MiB, which the byte bound holds; users with 20 groups take
// 3 KiB, so the entry bound caps the cache at some 32 MiB for them. 5,000
// users making requests at once is more than one replica of the HPA's
// range serves, and 128 MiB leaves most of the 512 MiB memory limit of the
// Kubernetes manifests to the rest. Without room, every request decodes
// its cookie again: slower, never wrong.
const (
	DefaultSessionCacheEntries = 10_000
	DefaultSessionCacheBytes   = 128 << 20
)

// entryOverhead is what an entry costs besides its strings and slices:
// the map slot, the entry, the view and the Session structs.
const entryOverhead = 384

// sessionCache maps session cookie values to their decoded sessions. A nil
// *sessionCache caches nothing.
type sessionCache struct {
	maxEntries int
	maxBytes   int64
	metrics    *Metrics
	// signed: each entry also holds a signed copy of the identity
	// (Options.SignedIdentity), counted in its size.
	signed bool

	// bufs holds the buffers that chunked values are reassembled in for
	// a lookup, which then allocates nothing.
	bufs sync.Pool // of *[]byte

	mu      sync.RWMutex
	byValue map[string]*cachedSession
	ring    []*cachedSession // the CLOCK; nil where an entry was dropped
	free    []int            // the nil slots of ring
	hand    int
	bytes   int64
}

// cachedSession is one decoded session cookie.
type cachedSession struct {
	value   string   // the cookie's value; the key
	session *Session // as decoded; never modified, never handed out
	size    int64    // what it holds, roughly, in bytes
	slot    int      // its index in the ring

	used atomic.Bool // set by a hit, cleared by the CLOCK hand
	view atomic.Pointer[sessionView]
}

// sessionView is a session under one tenant table's policy.
type sessionView struct {
	tenant *Tenant
	// session is what Authenticate returns, shared by every request with
	// this cookie while the table lasts: the decoded session itself when
	// the policy changes nothing, else a changed copy. nil: the policy
	// refuses the session.
	session *Session
}

// newSessionCache returns a cache of at most entries entries and bytes
// bytes, or nil (no cache) when either is negative. Zero means the
// default.
func newSessionCache(entries int, bytes int64, signed bool, m *Metrics) *sessionCache {
	if entries < 0 || bytes < 0 {
		return nil
	}
	if entries == 0 {
		entries = DefaultSessionCacheEntries
	}
	if bytes == 0 {
		bytes = DefaultSessionCacheBytes
	}
	c := &sessionCache{maxEntries: entries, maxBytes: bytes, signed: signed, metrics: m, byValue: map[string]*cachedSession{}}
	c.bufs.New = func() any { b := make([]byte, 0, maxCookieValue*maxSessionChunks); return &b }
	return c
}

// get returns the entry for the value of a session cookie, or nil.
func (c *sessionCache) get(value string) *cachedSession {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.byValue[value]
	c.mu.RUnlock()
	c.touch(e)
	return e
}

// getBytes is get for a value in a buffer; it does not allocate.
func (c *sessionCache) getBytes(value []byte) *cachedSession {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.byValue[string(value)]
	c.mu.RUnlock()
	c.touch(e)
	return e
}

// touch counts a lookup, and marks a hit's entry used.
func (c *sessionCache) touch(e *cachedSession) {
	if e == nil {
		c.metrics.sessionCacheMisses.Inc()
		return
	}
	c.metrics.sessionCacheHits.Inc()
	// Load first: most hits find the bit set, and a load does not take the
	// cache line from the other cores.
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// add enters s, decoded from value, and returns its entry. An entry too
// large for the cache is returned without being entered. Entries expired
// at now go first when room is needed.
func (c *sessionCache) add(value string, s *Session, now int64) *cachedSession {
	e := &cachedSession{value: strings.Clone(value), session: s}
	e.size = int64(len(value)) + sessionBytes(s) + entryOverhead
	if c != nil && c.signed {
		e.size += signedIdentityBytes(s)
	}
	if c == nil || e.size > c.maxBytes {
		return e
	}
	s.share()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byValue[value]; ok {
		// Another request decoded it meanwhile.
		return old
	}
	for len(c.byValue) >= c.maxEntries || c.bytes+e.size > c.maxBytes {
		c.evictOne(now)
	}
	if n := len(c.free); n > 0 {
		e.slot, c.free = c.free[n-1], c.free[:n-1]
		c.ring[e.slot] = e
	} else {
		e.slot = len(c.ring)
		c.ring = append(c.ring, e)
	}
	c.byValue[e.value] = e
	c.bytes += e.size
	return e
}

// evictOne drops one entry: the first the hand finds expired at now or not
// used since it last passed. Called with mu held and the cache not empty.
func (c *sessionCache) evictOne(now int64) {
	// Two turns at most: the first may only clear the bits.
	for range 2*len(c.ring) + 1 {
		c.hand++
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		if e == nil {
			continue
		}
		if e.session.Expires > now && e.used.Swap(false) {
			continue
		}
		c.drop(e)
		return
	}
}

// remove drops e if it is still entered.
func (c *sessionCache) remove(e *cachedSession) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byValue[e.value] == e {
		c.drop(e)
	}
}

// drop removes e, which is entered. Called with mu held.
func (c *sessionCache) drop(e *cachedSession) {
	delete(c.byValue, e.value)
	c.ring[e.slot] = nil
	c.free = append(c.free, e.slot)
	c.bytes -= e.size
}

// size returns the number of entries and the bytes they hold.
func (c *sessionCache) size() (entries int, bytes int64) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.byValue), c.bytes
}

// viewFor returns the session under t's policy, computing it once per
// tenant table.
func (e *cachedSession) viewFor(t *Tenant) *sessionView {
	if v := e.view.Load(); v != nil && v.tenant == t {
		return v
	}
	s := e.session.clone()
	v := &sessionView{tenant: t}
	if t.enforcePolicy(s, false) == nil {
		v.session = s
		if s.equal(e.session) {
			v.session = e.session
		} else {
			s.share()
		}
	}
	e.view.Store(v)
	return v
}

// sessionBytes estimates the memory s holds, with a copy of its slices
// for a view, and what Memo keeps: the proxy's identity headers, which
// repeat the values once more.
func sessionBytes(s *Session) int64 {
	n := 2 * (len(s.Tenant) + len(s.NameID) + len(s.NameIDFormat) + len(s.Email) + len(s.Name) + len(s.SessionIndex))
	for _, g := range s.Groups {
		n += 2*len(g) + 1 + 2*16
	}
	for name, vs := range s.Headers {
		n += 2*len(name) + 64
		for _, v := range vs {
			n += 2*len(v) + 1 + 2*16
		}
	}
	return int64(n)
}

// signedIdentityBytes estimates the identity JWT kept with s when
// Options.SignedIdentity is set: its claims as JSON (the values, each
// group quoted, and some 256 bytes of names and times), base64url-encoded,
// with a header and a signature (an RSA-4096 one at most).
func signedIdentityBytes(s *Session) int64 {
	claims := 256 + len(s.Tenant) + len(s.NameID) + len(s.Email) + len(s.Name)
	for _, g := range s.Groups {
		claims += len(g) + 3
	}
	return int64(claims*4/3 + 1024)
}

// clone returns a copy of s that shares nothing writable with it, and no
// memo.
func (s *Session) clone() *Session {
	c := *s
	c.memo = nil
	c.Groups = slices.Clone(s.Groups)
	if s.Headers != nil {
		c.Headers = make(map[string][]string, len(s.Headers))
		for name, vs := range s.Headers {
			c.Headers[name] = slices.Clone(vs)
		}
	}
	return &c
}

// equal reports whether s and o hold the same values.
func (s *Session) equal(o *Session) bool {
	return s.Tenant == o.Tenant && s.NameID == o.NameID && s.NameIDFormat == o.NameIDFormat &&
		s.Email == o.Email && s.Name == o.Name && slices.Equal(s.Groups, o.Groups) &&
		s.GroupsOverage == o.GroupsOverage && maps.EqualFunc(s.Headers, o.Headers, slices.Equal[[]string]) &&
		s.SessionIndex == o.SessionIndex && s.IssuedAt == o.IssuedAt && s.Expires == o.Expires
}
