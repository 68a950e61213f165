package samlsp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// Session is a signed-in user, as held in the session cookie. It is
// everything the gateway needs to set the identity headers, so no server
// keeps any state and any replica can serve any request.
type Session struct {
	Tenant       string   `json:"t"`
	NameID       string   `json:"n"`
	NameIDFormat string   `json:"nf,omitempty"`
	Email        string   `json:"e,omitempty"`
	Name         string   `json:"dn,omitempty"`
	Groups       []string `json:"g,omitempty"`
	SessionIndex string   `json:"si,omitempty"`
	// IssuedAt and Expires are Unix seconds. Expires is the earlier of the
	// configured lifetime and the assertion's SessionNotOnOrAfter.
	IssuedAt int64 `json:"iat"`
	Expires  int64 `json:"exp"`
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

func newCodec(keys []SessionKey) (*codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("samlsp: no session keys")
	}
	c := &codec{}
	for _, k := range keys {
		sc := securecookie.New(k.Hash, k.Block)
		// Expiry is checked against the Expires and IssuedAt fields with
		// the injected clock; securecookie's own check reads the wall clock.
		sc.MaxAge(0)
		sc.MaxLength(maxCookieValue)
		sc.SetSerializer(securecookie.JSONEncoder{})
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
