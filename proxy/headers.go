package proxy

import (
	"net/http"
	"strings"

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
	// HeaderGroups is the groups claim, comma-joined (Entra sends object
	// IDs, which contain no commas).
	HeaderGroups = "X-Remote-Groups"
	// HeaderTenant is the Customer_ID the user signed in through.
	HeaderTenant = "X-Remote-Tenant"
	// HeaderGroupsOverage is "true" when Entra sent no groups because the
	// user is in more than 150 (the groups.link claim); absent otherwise.
	HeaderGroupsOverage = "X-Remote-Groups-Overage"

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
	for name := range h {
		if isReservedHeader(name) {
			delete(h, name)
		}
	}
	h[HeaderUser] = []string{s.NameID}
	h[HeaderEmail] = []string{s.Email}
	h[HeaderName] = []string{s.Name}
	h[HeaderGroups] = []string{strings.Join(s.Groups, ",")}
	h[HeaderTenant] = []string{s.Tenant}
	if s.GroupsOverage {
		h[HeaderGroupsOverage] = []string{"true"}
	}
	// The tenant's own headers (config "headers") start with X-Remote-, so
	// their inbound copies went with the loop above. Their names are
	// canonical already.
	for name, v := range s.Headers {
		h[name] = []string{v}
	}
}

// stripGatewayCookies removes the gateway's own cookies from the Cookie
// headers, keeping every other cookie byte for byte: the session cookie is
// a bearer credential the upstream has no business seeing.
func stripGatewayCookies(h http.Header) {
	values := h["Cookie"]
	found := false
	for _, v := range values {
		if strings.Contains(v, samlsp.CookiePrefix) {
			found = true
			break
		}
	}
	if !found {
		return
	}
	var kept []string
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
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(kept, "; ")}
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
