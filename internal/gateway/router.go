package gateway

import (
	"net/http"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// router returns the public listener's one router. Every request takes
// these steps, in this order, and which handler serves it is decided here and nowhere else:
//
//  1. Framing guard: httpguard.Listener (ServeListeners) refuses requests
//     whose framing is ambiguous before net/http parses them, and
//     guardExchanges bounds the gateway's own answers in time.
//  2. Request info: reqinfo.Correlate gives the request its correlation
//     ID; route resolves the client behind the trusted proxies and checks
//     the Host (hosts.go).
//     A forward-auth request (samlsp.VerifyPath) goes to
//     proxy.Proxy.ServeVerify before the Host check: it checks the host
//     of the original request it describes (with canonicalHost and
//     hostSet.serves, through proxy.Options.CanonicalHost), which an
//     ingress may name in a header while the subrequest's own Host is
//     the gateway's address. It is a per-request hot path, not a login,
//     and takes no slot of the login pools.
//  3. Own paths, with their throttle: everything under samlsp.PathPrefix
//     goes to serveSAML (limits.go), which reads the body in time and
//     takes a slot of its pool before samlsp.Provider serves it; but the
//     identity JWT's public keys, JWKSPath, are served at once (jwks.go).
//  4. Session check: proxy.Proxy asks samlsp.Provider.Authenticate for
//     the session; without one, the user is sent to sign in or gets 401.
//  5. Proxy: proxy.Proxy forwards the request upstream with the verified
//     identity headers.
func (g *Gateway) router() http.Handler {
	return g.guardExchanges(reqinfo.Correlate(http.HandlerFunc(g.route)))
}

// route finds the client's address, checks the host, and sends the
// request to the gateway's own endpoints or to the proxy, under the
// configuration in force.
func (g *Gateway) route(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	info := st.client.Resolve(r)
	r = reqinfo.WithOrigin(r, info)
	if samlsp.IsVerifyPath(r) {
		st.proxy.ServeVerify(w, r)
		return
	}
	host, ok := canonicalHost(r.Host)
	if !ok {
		g.badHost(w, r)
		return
	}
	r.Host = host
	if !st.hosts.serves(host) {
		g.otherHost(w, r, st)
		return
	}
	if r.URL.Path == JWKSPath {
		// Static bytes: no throttle.
		serveJWKS(w, r, st)
		return
	}
	if samlsp.OwnPath(r) {
		g.serveSAML(w, r, st, info)
		return
	}
	st.proxy.ServeHTTP(w, r)
}
