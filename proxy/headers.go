package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Identity headers the upstream receives. They are set only by the gateway,
// from a verified session; every inbound header that could be read as one
// of them is deleted first, on every request.
const (
	// HeaderUser is the SAML NameID (with Entra's default claims, the
	// user principal name).
	HeaderUser = "X-Remote-User"
	// HeaderEmail is Entra's emailaddress claim, else the NameID when it
	// is an email address.
	HeaderEmail = "X-Remote-Email"
	// HeaderName is Entra's displayname claim, else given name and surname.
	HeaderName = "X-Remote-Name"
	// HeaderGroups is the groups claim, as a list (encodeList): Entra's
	// object IDs travel as they are, and a group name with a comma, a
	// quote or white space at either end as a quoted-string.
	HeaderGroups = "X-Remote-Groups"
	// HeaderTenant is the Customer_ID the user signed in through.
	HeaderTenant = "X-Remote-Tenant"
	// HeaderGroupsOverage is "true" when Entra sent no groups because the
	// user is in more than 150 (the groups.link claim); absent otherwise.
	HeaderGroupsOverage = "X-Remote-Groups-Overage"
	// HeaderJWTAssertion is the identity as a JWT the gateway signed
	// (config identity_jwt, package identityjwt), which the upstream can
	// verify against the gateway's JWKS; absent when identity_jwt is off.
	HeaderJWTAssertion = "X-Remote-Jwt-Assertion"

	// identityPrefix is reserved: any inbound header that starts with it,
	// in any case and with '_' for '-', is removed.
	identityPrefix = "x-remote-"
)

// reservedHeaders are the other headers only the gateway sets: forwarding
// information a client might forge to pose as another address or host, and
// the correlation ID. ReverseProxy's Rewrite mode drops the canonical
// spellings of some of them; deleteReserved drops every spelling.
var reservedHeaders = []string{"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip", "x-correlation-id"}

// normalEqual reports whether name, read the way many backends read header
// names (CGI, PHP, nginx with underscores_in_headers: any case, '_' for
// '-'), starts with (prefix true) or equals want, which is lower case.
func normalEqual(name, want string, prefix bool) bool {
	if len(name) < len(want) || !prefix && len(name) != len(want) {
		return false
	}
	for i := 0; i < len(want); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// isIdentityHeader reports whether a backend could read a header name as
// one of the identity headers.
func isIdentityHeader(name string) bool {
	return normalEqual(name, identityPrefix, true)
}

// isReservedHeader reports whether a header name is an identity header or
// one of reservedHeaders, in any spelling.
func isReservedHeader(name string) bool {
	if isIdentityHeader(name) {
		return true
	}
	for _, r := range reservedHeaders {
		if normalEqual(name, r, false) {
			return true
		}
	}
	return false
}

// setIdentity removes every inbound identity, forwarding and correlation
// header, in every spelling, and sets the verified identity from s. The
// forwarding headers are set afterwards by the caller.
func setIdentity(h http.Header, s *samlsp.Session) {
	deleteReserved(h)
	id := identityOf(s)
	hs := headerSet{h: h, vals: make([]string, 0, len(id.names))}
	id.setOn(&hs)
}

// deleteReserved removes every header a backend could read as an identity,
// forwarding or correlation header.
func deleteReserved(h http.Header) {
	for name := range h {
		if isReservedHeader(name) {
			delete(h, name)
		}
	}
}

// identity is a session's identity headers, rendered: names[i] is set to
// values[i]. Once made it is never modified, but for the token cached in
// assertion, and it is shared by every request of a session that the
// session cache shares.
type identity struct {
	names, values []string
	// assertion keeps the session's signed identity (HeaderJWTAssertion)
	// between its requests: it is signed once per validity window.
	assertion identityjwt.Cache
}

// identityOf returns s's identity headers, rendered once per shared
// session (samlsp.Session.Memo): encoding 150 groups costs more than the
// rest of the request.
func identityOf(s *samlsp.Session) *identity {
	return s.Memo(renderIdentity).(*identity)
}

// renderIdentity renders s's identity headers. It depends on s alone, as
// Memo requires.
func renderIdentity(s *samlsp.Session) any {
	n := 5 + len(s.Headers)
	id := &identity{names: make([]string, 0, n+1), values: make([]string, 0, n+1)}
	add := func(name, v string) {
		id.names = append(id.names, name)
		id.values = append(id.values, v)
	}
	add(HeaderUser, s.NameID)
	add(HeaderEmail, s.Email)
	add(HeaderName, s.Name)
	add(HeaderGroups, encodeList(s.Groups))
	add(HeaderTenant, s.Tenant)
	if s.GroupsOverage {
		add(HeaderGroupsOverage, "true")
	}
	// The tenant's own headers (config "headers") start with X-Remote-, so
	// their inbound copies went with deleteReserved. Their names are
	// canonical already. A claim may have several values: they are a list
	// too.
	for name, vs := range s.Headers {
		add(name, encodeList(vs))
	}
	return id
}

// setOn sets the identity headers through hs.
func (id *identity) setOn(hs *headerSet) {
	for i, name := range id.names {
		hs.set(name, id.values[i])
	}
}

// headerSet sets header fields of one value each from one backing array,
// one allocation for them all rather than one per field. Each field's
// slice has room for its one value only, so that appending to it (Add)
// copies it rather than writing over the next field's value.
type headerSet struct {
	h    http.Header
	vals []string
}

// set sets the field name, which must be in canonical form, to v.
func (hs *headerSet) set(name, v string) {
	hs.vals = append(hs.vals, v)
	n := len(hs.vals)
	hs.h[name] = hs.vals[n-1 : n : n]
}

// encodeList writes values as one header value in the list syntax of RFC
// 9110 (section 5.6.1), so that an upstream reads back exactly these values:
// comma-separated, each element as it is unless that would be ambiguous,
// and otherwise as a quoted-string (section 5.6.4) with '"' and '\\'
// escaped by a backslash. Ambiguous are an empty value, one with a comma, a
// double quote or a backslash, and one with white space at either end,
// which the HTTP client trims from the whole field value and many
// upstreams trim from each element (any Unicode white space, not only the
// SP and HTAB of RFC 9110). GUIDs and plain names therefore go out byte for
// byte as before; no values at all is the empty string. Control characters
// never reach here: newSession refuses them.
func encodeList(values []string) string {
	size := 0
	for _, v := range values {
		size += len(v) + 1
		if needsQuoting(v) {
			size += 2 + strings.Count(v, `"`) + strings.Count(v, `\`)
		}
	}
	var b strings.Builder
	b.Grow(size)
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		if !needsQuoting(v) {
			b.WriteString(v)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(v); j++ {
			if c := v[j]; c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[j])
		}
		b.WriteByte('"')
	}
	return b.String()
}

// needsQuoting reports whether v must be a quoted-string in encodeList.
func needsQuoting(v string) bool {
	if v == "" {
		return true
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == ',' || c == '"' || c == '\\' {
			return true
		}
	}
	return spaceAt(v, true) || spaceAt(v, false)
}

// spaceAt reports whether v, not empty, starts (first) or ends with
// white space as unicode.IsSpace has it. An ASCII byte is looked at
// without decoding: among ASCII, IsSpace holds for '\t' to '\r' and ' '.
func spaceAt(v string, first bool) bool {
	c := v[len(v)-1]
	if first {
		c = v[0]
	}
	if c < utf8.RuneSelf {
		return c == ' ' || '\t' <= c && c <= '\r'
	}
	var r rune
	if first {
		r, _ = utf8.DecodeRuneInString(v)
	} else {
		r, _ = utf8.DecodeLastRuneInString(v)
	}
	return unicode.IsSpace(r)
}

// ErrMalformedList is returned by ParseList for a value that is not a
// list as the gateway writes one.
var ErrMalformedList = errors.New("proxy: malformed list header")

// ParseList reads a list-valued identity header (X-Remote-Groups, or a
// tenant's own header) into its values, as an upstream should: split at
// the commas outside quoted-strings, drop the optional white space (SP,
// HTAB) around each element and the empty elements RFC 9110 tells
// recipients to ignore, and unquote the quoted-strings, taking the
// character after each backslash literally. An empty or blank value is no
// values. Of the gateway's header values it returns exactly the values the
// session holds; the gateway itself never calls it. It returns
// ErrMalformedList (wrapped) for an unterminated quoted-string, text after
// one, or a '"' or '\\' outside one, which the gateway never sends.
func ParseList(v string) ([]string, error) {
	var out []string
	s := v
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		if s[0] == ',' {
			// An empty element: ignored (RFC 9110, section 5.6.1.2).
			s = s[1:]
			continue
		}
		var elem string
		if s[0] == '"' {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
					if i == len(s) {
						break
					}
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%w: unterminated quoted-string in %q", ErrMalformedList, v)
			}
			elem = b.String()
			s = strings.TrimLeft(s[i+1:], " \t")
			if s != "" && s[0] != ',' {
				return nil, fmt.Errorf("%w: text after a quoted-string in %q", ErrMalformedList, v)
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			elem = strings.TrimRight(s[:end], " \t")
			if strings.ContainsAny(elem, `"\`) {
				return nil, fmt.Errorf("%w: '\"' or '\\' outside a quoted-string in %q", ErrMalformedList, v)
			}
			s = s[end:]
		}
		out = append(out, elem)
		if s != "" {
			s = s[1:] // the comma
		}
	}
}

// stripGatewayCookies removes the gateway's own cookies from the Cookie
// headers, keeping every other cookie byte for byte: the session cookie is
// a bearer credential the upstream has no business seeing.
func stripGatewayCookies(h http.Header) {
	v, changed := strippedCookies(h["Cookie"])
	switch {
	case !changed:
	case v == "":
		h.Del("Cookie")
	default:
		h["Cookie"] = []string{v}
	}
}

// strippedCookies returns the Cookie header lines values as one line
// without the gateway's cookies, and whether that is a change. The other
// cookies are kept byte for byte, joined by "; ".
func strippedCookies(values []string) (string, bool) {
	found := false
	for _, v := range values {
		if strings.Contains(v, samlsp.CookiePrefix) {
			found = true
			break
		}
	}
	if !found {
		return "", false
	}
	var b strings.Builder
	for pass := range 2 {
		// The first pass measures, the second writes: one allocation.
		size := 0
		for _, v := range values {
			for part := range strings.SplitSeq(v, ";") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				name, _, _ := strings.Cut(part, "=")
				if samlsp.IsGatewayCookie(strings.TrimSpace(name)) {
					continue
				}
				if pass == 0 {
					size += len(part) + 2
					continue
				}
				if b.Len() > 0 {
					b.WriteString("; ")
				}
				b.WriteString(part)
			}
		}
		if pass == 0 {
			b.Grow(size)
		}
	}
	return b.String(), true
}

// stripGatewaySetCookies drops Set-Cookie headers from the upstream that
// would overwrite or delete the gateway's cookies.
func stripGatewaySetCookies(h http.Header) {
	values := h["Set-Cookie"]
	if len(values) == 0 {
		return
	}
	kept := values[:0:0]
	for _, v := range values {
		name, _, _ := strings.Cut(v, "=")
		if samlsp.IsGatewayCookie(strings.TrimSpace(name)) {
			continue
		}
		kept = append(kept, v)
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
