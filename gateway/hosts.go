package gateway

import (
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/correlation"
	"github.com/sso-gateway/sso-gateway/page"
)

// hostSet is the host names the gateway serves: public_url's and the
// tenants' own. Ports are not compared: a load balancer in front may or
// may not pass them on, and cookies do not depend on them.
type hostSet map[string]bool

func newHostSet(cfg *config.Config) hostSet {
	hs := hostSet{hostName(cfg.PublicURL.Host): true}
	for _, t := range cfg.Tenants {
		for _, h := range t.Hosts {
			hs[h] = true
		}
	}
	return hs
}

// serves reports whether a Host header names one of the hosts.
func (hs hostSet) serves(host string) bool { return hs[hostName(host)] }

// hostName is a Host header's host name, lower case, without port,
// brackets or final dot.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
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
		slog.String("correlation_id", correlation.FromContext(r.Context())))
	if r.Host != "" && page.IsNavigation(r) {
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
