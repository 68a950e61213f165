package samlsp

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A request that names a piece of the session cookie twice has no session
// (Authenticate). Browsers send every cookie whose domain and path match,
// the longer paths first and then the older ones, so a copy planted for a
// parent domain or a deeper path would otherwise decide who the user is.
// Without more, such a browser would loop: it signs in, gets a new session
// cookie beside the planted copy, and is refused again. So the response
// that sends it to sign in (LoginRedirect) expires every copy the gateway
// can name, and so does the ACS before it sets a new session.
//
// On https every piece is named __Host-, which the browser accepts only
// from a secure origin, with Path=/ and without Domain: a sibling host
// cannot set it, and a deeper path or a parent domain cannot scope it, so
// a second __Host- cookie of the same name is the same cookie and replaces
// the first. What remains is a copy in another storage partition: a
// cookie set with the Partitioned attribute (CHIPS) is kept apart from the
// unpartitioned one of the same name, domain and path, and Chromium sends
// both. Only the origin itself can set one, with a response or a script
// of its own (the upstream's pages share the gateway's origin), or the
// user's browser itself; the gateway expires it too.
//
// On plain http nothing stops a sibling host from setting the name for
// the parent domain, or a page from setting it for a deeper path. Browsers
// send only names and values, so the gateway cannot know which domain and
// path a copy has: it expires the name for each it can guess, a bounded
// number of them.
const (
	// maxCopyPaths bounds the paths a copy is expired at on plain http:
	// "/" and the shortest prefixes of the path the browser was going to.
	// A copy scoped deeper affects only that subtree.
	maxCopyPaths = 3
	// maxCopyDomains bounds the Domain attributes a copy is expired with
	// on plain http, besides host-only: the host itself and its broadest
	// parents, which any sibling host can set.
	maxCopyDomains = 3
)

// expireDuplicateSessions expires, if r names a piece of the session
// cookie more than once, every copy of each such piece the gateway can
// reach, as the comment above says: on plain http, for the paths that
// prefix path (the escaped path of the page the browser was going to).
func (p *Provider) expireDuplicateSessions(w http.ResponseWriter, r *http.Request, path string) {
	c := p.currentSettings().cookies
	c.expireCopies(w, r, c.scanSession(r.Header).duplicated, path)
}

// expireOldSessions expires, at the ACS, every copy of each piece of the
// session cookie that r carries, once or more, as expireDuplicateSessions
// does. A single one is not proof of a planted copy, but the login is about
// to set a new session, and a copy that a parent domain or another path
// keeps would sit beside it: after a redirect to sign in expired the
// browser's own session, a copy planted again while the user was at the
// IdP is the only one the ACS sees. It must run before the new session
// cookie is set in the same response, so that the new one is the copy left
// standing.
func (p *Provider) expireOldSessions(w http.ResponseWriter, r *http.Request, path string) {
	c := p.currentSettings().cookies
	c.expireCopies(w, r, c.scanSession(r.Header).seen, path)
}

// expireCopies expires every copy the gateway can reach of each piece of
// the session cookie whose bit is set in pieces, for the page at path.
func (c cookies) expireCopies(w http.ResponseWriter, r *http.Request, pieces uint8, path string) {
	if pieces == 0 {
		return
	}
	for _, name := range c.names(pieces) {
		for _, ck := range c.copies(name, requestHost(r), path) {
			// Valid refuses a Domain or Path that the browser could
			// not have stored anyway (an IP address, a ';').
			if ck.Valid() == nil {
				http.SetCookie(w, ck)
			}
		}
	}
}

// copies returns the cookies that expire every copy of the cookie name
// that the gateway can reach from host, for the page at path.
func (c cookies) copies(name, host, path string) []*http.Cookie {
	if c.secure {
		partitioned := c.expired(name, "/")
		partitioned.Partitioned = true
		return []*http.Cookie{c.expired(name, "/"), partitioned}
	}
	var out []*http.Cookie
	for _, domain := range append([]string{""}, cookieDomains(host)...) {
		for _, p := range cookiePaths(path) {
			ck := c.expired(name, p)
			ck.Domain = domain
			out = append(out, ck)
		}
	}
	return out
}

// cookieDomains returns the Domain attributes a cookie for host may have
// been set with: host itself, then its parents from the broadest (two
// labels) down, at most maxCopyDomains. An IP address or a single label
// has none.
func cookieDomains(host string) []string {
	if host == "" || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return nil
	}
	out := []string{host}
	labels := strings.Split(host, ".")
	for n := 2; n < len(labels) && len(out) < maxCopyDomains; n++ {
		out = append(out, strings.Join(labels[len(labels)-n:], "."))
	}
	return out
}

// cookiePaths returns the Path attributes a cookie sent with a request for
// path may have: "/", then path's shortest prefixes that end before a
// slash, at most maxCopyPaths in all.
func cookiePaths(path string) []string {
	out := []string{"/"}
	for i := 1; i < len(path) && len(out) < maxCopyPaths; i++ {
		if path[i] == '/' {
			out = append(out, path[:i])
		}
	}
	if len(out) < maxCopyPaths && len(path) > 1 && !strings.HasSuffix(path, "/") {
		out = append(out, path)
	}
	return out
}

// targetPath returns the escaped path of target, a local URL the gateway
// redirects to, or "/".
func targetPath(target string) string {
	u, err := url.Parse(target)
	if err != nil || u.EscapedPath() == "" {
		return "/"
	}
	return u.EscapedPath()
}
