package docs

import (
	"net/http"
	"strings"
)

// Header names this service reads. They mirror the gateway's own constants
// but are repeated rather than imported: the demo plays an unmodified
// third-party backend that knows nothing of the gateway's code.
const (
	headerRemoteUser    = "X-Remote-User"
	headerRemoteEmail   = "X-Remote-Email"
	headerRemoteName    = "X-Remote-Name"
	headerRemoteGroups  = "X-Remote-Groups"
	headerRemoteTenant  = "X-Remote-Tenant"
	headerForwardedHost = "X-Forwarded-Host"

	// Lower-case forms used by isIdentityHeader.
	prefixRemote    = "x-remote-"
	prefixForwarded = "x-forwarded-"
	correlationID   = "x-correlation-id"
)

// isIdentityHeader reports whether name is one of the headers the gateway
// vouches for: X-Remote-*, X-Forwarded-* or X-Correlation-ID.
//
// The match ignores case and treats '_' as '-', so that a smuggled
// "X_Remote_User" is echoed too. Some backends (CGI, WSGI, PHP) fold both
// spellings into the same variable, so tests need to see whether the
// gateway let one through.
func isIdentityHeader(name string) bool {
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	return strings.HasPrefix(n, prefixRemote) ||
		strings.HasPrefix(n, prefixForwarded) ||
		n == correlationID
}

// headerValue returns every value of the canonical header name, joined with
// ", " as RFC 9110 allows, so that a duplicated identity header is visible
// rather than silently reduced to its first copy.
func headerValue(h http.Header, name string) string {
	return strings.Join(h.Values(name), ", ")
}
