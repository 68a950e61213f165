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

	// identityPrefix is reserved: any inbound header that starts with it,
	// in any case and with '_' for '-', is removed.
	identityPrefix = "x-remote-"
)

// Forwarding headers a client might send to pose as another address. The
// ReverseProxy's Rewrite mode already drops Forwarded and X-Forwarded-*;
// X-Real-Ip is not part of that set.
const headerRealIP = "X-Real-Ip"

// isIdentityHeader reports whether a header name would be read as an
// identity header by some backend: many (CGI, PHP, nginx with
// underscores_in_headers) treat '_' and '-' alike and ignore case.
func isIdentityHeader(name string) bool {
	if len(name) < len(identityPrefix) {
		return false
	}
	for i := 0; i < len(identityPrefix); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != identityPrefix[i] {
			return false
		}
	}
	return true
}

// setIdentity removes every inbound identity header and sets the verified
// ones from s.
func setIdentity(h http.Header, s *samlsp.Session) {
	for name := range h {
		if isIdentityHeader(name) {
			delete(h, name)
		}
	}
	h.Del(headerRealIP)
	h[HeaderUser] = []string{s.NameID}
	h[HeaderEmail] = []string{s.Email}
	h[HeaderName] = []string{s.Name}
	h[HeaderGroups] = []string{strings.Join(s.Groups, ",")}
	h[HeaderTenant] = []string{s.Tenant}
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
