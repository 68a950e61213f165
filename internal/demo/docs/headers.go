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

// parseList reads a list-valued identity header (X-Remote-Groups, and a
// tenant's own headers) as RFC 9110 lists are read (section 5.6.1), which
// is how the gateway writes them: commas outside quoted-strings separate
// the values, optional white space around them and empty elements are
// dropped, and a quoted-string ("Finance,EMEA", with \" and \\ escaped)
// is one value. Splitting at every comma would turn a group named
// "Finance,<an ID>" into a group the user is not in. ok is false for a
// value that is not such a list. Like the header names above, this is
// repeated from the gateway's proxy.ParseList rather than imported.
func parseList(v string) (values []string, ok bool) {
	s := v
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return values, true
		}
		if s[0] == ',' {
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
				return nil, false
			}
			elem = b.String()
			s = strings.TrimLeft(s[i+1:], " \t")
			if s != "" && s[0] != ',' {
				return nil, false
			}
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			elem = strings.TrimRight(s[:end], " \t")
			if strings.ContainsAny(elem, `"\`) {
				return nil, false
			}
			s = s[end:]
		}
		values = append(values, elem)
		if s != "" {
			s = s[1:]
		}
	}
}
