package gateway

import (
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// hostSet is the host names the gateway serves: public_url's and the
// tenants' own. Ports are not compared: a load balancer in front may or
// may not pass them on, and cookies do not depend on them.
type hostSet map[string]bool

func newHostSet(cfg *config.Config) hostSet {
	hs := hostSet{samlsp.HostName(cfg.PublicURL.Host): true}
	for _, t := range cfg.Tenants {
		for _, h := range t.Hosts {
			hs[h] = true
		}
	}
	return hs
}

// serves reports whether a Host header names one of the hosts.
func (hs hostSet) serves(host string) bool { return hs[samlsp.HostName(host)] }

// canonical is the Host check of a forward-auth request's original host
// (proxy.Options.CanonicalHost): h in canonicalHost's spelling, and
// whether it is valid and served.
func (hs hostSet) canonical(h string) (string, bool) {
	host, ok := canonicalHost(h)
	return host, ok && hs.serves(host)
}

// otherHost answers a request for a host the gateway does not serve (an
// alias, "localhost" for 127.0.0.1, the bare IP address) before anything
// else happens. Cookies are per host: a login started there would set its
// tracking cookie where the IdP never posts and fail as "started in
// another browser", and a session made there is worthless everywhere
// else. A browser navigation goes to the same path on public_url's host;
// anything else is refused with 421 Misdirected Request.
func (g *Gateway) otherHost(w http.ResponseWriter, r *http.Request, st *state) {
	g.metrics.rejected.WithLabelValues(reasonMisdirected).Inc()
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "request for a host the gateway does not serve",
		slog.String("host", r.Host), slog.String("method", r.Method), slog.String("path", r.URL.EscapedPath()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	if page.IsNavigation(r) {
		target := *st.cfg.PublicURL
		target.Path, target.RawPath = r.URL.Path, r.URL.RawPath
		target.RawQuery = r.URL.RawQuery
		page.SecurityHeaders(w.Header())
		// Temporary: a permanent redirect would be cached, and outlive a
		// configuration that later makes this host a tenant's.
		http.Redirect(w, r, target.String(), http.StatusFound)
		return
	}
	page.Write(w, r, page.Errorf(http.StatusMisdirectedRequest,
		"This service is not available at this address. Use "+st.cfg.PublicURL.String()+" instead.", nil))
}

// canonicalHost checks a Host header value and returns it in the one
// spelling the gateway uses from then on, for its own decisions and for the
// Host and X-Forwarded-Host the upstream receives: the host name in lower
// case without a final dot, the port as given. It refuses anything that is
// not a host name, an IPv4 address or a bracketed IPv6 address, with an
// optional port: net/http lets through commas, '%', empty labels and a
// second port, which frameworks that split X-Forwarded-Host on commas
// would read as another host.
func canonicalHost(h string) (string, bool) {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		ip, err := netip.ParseAddr(h[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", false
		}
		host, port = "["+ip.String()+"]", h[end+1:]
		if port != "" && (port[0] != ':' || !validPort(port[1:])) {
			return "", false
		}
		return host + port, true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i:]
		if !validPort(port[1:]) {
			return "", false
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	// Without brackets and a colon only an IPv4 address parses, and only
	// digits and dots can be one: a name is not parsed (a failed parse
	// allocates its error, on every request).
	if onlyDigitsAndDots(host) {
		if ip, err := netip.ParseAddr(host); err == nil {
			if !ip.Is4() {
				return "", false
			}
			return joinHost(h, host, port), true
		}
	}
	if !validHostName(host) {
		return "", false
	}
	return joinHost(h, host, port), true
}

// onlyDigitsAndDots reports whether s is made of ASCII digits and dots.
func onlyDigitsAndDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return s != ""
}

// joinHost is host+port, or h itself when that is what h was, which
// spares building the same string again.
func joinHost(h, host, port string) string {
	if len(h) == len(host)+len(port) && h[:len(host)] == host {
		return h
	}
	return host + port
}

// validPort reports whether s is a port number, 1 to 65535, in digits.
func validPort(s string) bool {
	if len(s) == 0 || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, _ := strconv.Atoi(s)
	return n >= 1 && n <= 65535
}

// validHostName reports whether s, in lower case, is a DNS host name:
// labels of letters, digits and inner hyphens, 1 to 63 bytes each, 253 in
// all.
func validHostName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// badHost answers a request whose Host is not a host[:port]: 400, before
// anything else happens.
func (g *Gateway) badHost(w http.ResponseWriter, r *http.Request) {
	g.metrics.rejected.WithLabelValues(reasonBadHost).Inc()
	g.log.LogAttrs(r.Context(), slog.LevelDebug, "request refused: Host is not a host name",
		slog.String("host", r.Host), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	page.Write(w, r, page.Errorf(http.StatusBadRequest, "This address is not valid.", nil))
}
