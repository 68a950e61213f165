package samlsp

// The session codec: a session cookie's value is a Session, compressed,
// encrypted and authenticated with gorilla/securecookie under the session
// keys (the first signs, all verify, for rotation). Authenticate, which
// turns a request's cookies back into a session, lives beside it.

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/gorilla/securecookie"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

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

// Authenticate returns the session in r's session cookie, if it is valid:
// authentic, not expired, for a tenant that is still configured, and sent
// once. Anything else (no cookie, tampered, retired key, expired, a name
// sent twice) is simply no session. Each distinct cookie is decoded once
// (sessioncache.go); the checks that follow run on every request. The
// Session may be shared with other requests: it must not be modified.
func (p *Provider) Authenticate(r *http.Request) (*Session, bool) {
	set := p.currentSettings()
	sc := set.cookies.scanSession(r.Header)
	if sc.duplicated != 0 {
		p.log.LogAttrs(r.Context(), slog.LevelInfo, "session cookie sent more than once: no session",
			slog.String("cookies", strings.Join(set.cookies.names(sc.duplicated), ",")),
			slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
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
