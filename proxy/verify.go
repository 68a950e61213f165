package proxy

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/redirect"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Forward auth: an ingress (nginx auth_request, ingress-nginx auth-url,
// Traefik forwardAuth, Caddy forward_auth, Envoy ext_authz over HTTP) keeps
// the data path and asks the gateway only "who is this?" for each request.
// The answer is the proxy's own session check on the original request,
// with the proxy's identity headers; the ingress copies them upstream.

// HeaderSignin is the absolute URL that signs the user in and brings them
// back to the original request, on a 401 for a browser navigation. nginx
// reads it with auth_request_set and redirects to it from error_page 401.
const HeaderSignin = "X-Auth-Signin"

// verifyMaxAge is the longest an ingress may cache a positive answer. A
// cached answer outlives a configuration reload that changes the tenant's
// groups policy (or removes the tenant) and a sign-out elsewhere, by at
// most this long; a longer one would save the ingress little, since a
// check costs microseconds (a cache hit in the session cache). It is never
// past the session's own expiry.
const verifyMaxAge = 30 * time.Second

// The headers in which each ingress describes the original request. They
// are believed only from a trusted proxy (reqinfo.Origin.PeerTrusted).
const (
	headerOriginalURL     = "X-Original-Url"    // ingress-nginx: scheme://host/uri
	headerOriginalURI     = "X-Original-Uri"    // nginx: the request URI
	headerOriginalMethod  = "X-Original-Method" // nginx, ingress-nginx
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
	headerForwardedHost   = "X-Forwarded-Host"
	headerForwardedProto  = "X-Forwarded-Proto"
)

// errAmbiguous is an original request that the headers describe in two
// different ways, or one field sent twice.
var errAmbiguous = errors.New("proxy: forward-auth headers disagree")

// originalRequest is the request an ingress asks about.
type originalRequest struct {
	method, scheme, host, uri string
}

// ServeVerify answers a forward-auth subrequest (samlsp.VerifyPath) about
// the original request it describes:
//
//   - with a session valid for the original host (Authenticate: the same
//     tenant host binding, groups policy and expiry as ServeHTTP): 200
//     with the identity headers as the upstream would get them, cacheable
//     privately for at most verifyMaxAge and never past the session's
//     expiry, varying by Cookie;
//   - without one, for a browser navigation (decided as ServeHTTP decides,
//     wantsSignIn): 401 with HeaderSignin, or, when the verify URL asks
//     for it with ?redirect=1 or is Envoy's path-prefix form (both pass the
//     answer to the browser), a 302 to that URL;
//   - without one, for anything else: 401 as ServeHTTP answers it;
//   - for an original request whose host the gateway does not serve, or
//     that the headers describe ambiguously: 403.
//
// The original request's method, scheme, host and URI are taken from the
// ingress's headers only when the TCP peer is a trusted proxy; from anyone
// else they are the subrequest's own, so a forged header is ignored, never
// believed.
func (p *Proxy) ServeVerify(w http.ResponseWriter, r *http.Request) {
	p.metrics.inFlight.Inc()
	st := &requestState{start: time.Now(), verify: true}
	st.rec.ResponseWriter = w
	rec := &st.rec
	orig, err := p.originalOf(r)
	host, served := "", false
	if err == nil {
		host, served = p.canonicalHost(orig.host)
	}
	if err != nil || !served {
		defer p.finish(rec, r, st)
		st.setOutcome(outcomeVerifyDenied)
		if err == nil {
			err = fmt.Errorf("proxy: forward auth for host %q, which the gateway does not serve", orig.host)
		}
		page.Write(rec, r, page.Errorf(http.StatusForbidden, "This address is not served here.", err))
		return
	}
	orig.host = host
	view, err := viewOf(r, orig)
	if err != nil {
		defer p.finish(rec, r, st)
		st.setOutcome(outcomeVerifyDenied)
		page.Write(rec, r, page.Errorf(http.StatusForbidden, "This address is not valid.", err))
		return
	}
	// Counted and logged as the original request: its method and URI.
	defer p.finish(rec, view, st)
	s, ok := p.auth.Authenticate(view)
	if !ok {
		st.setOutcome(outcomeVerifyDenied)
		p.verifyDenied(rec, r, view, orig)
		return
	}
	st.session = s
	assertion, ok := p.assertion(r, s)
	if !ok {
		// As for a proxied request: no identity goes out unsigned when
		// the upstream expects it signed.
		st.setOutcome(outcomeRefused)
		page.Write(rec, r, page.Errorf(http.StatusInternalServerError, "", errors.New("proxy: identity JWT not signed")))
		return
	}
	st.setOutcome(outcomeVerified)
	h := rec.Header()
	id := identityOf(s)
	hs := headerSet{h: h, vals: make([]string, 0, len(id.names)+3)}
	id.setOn(&hs)
	if assertion != "" {
		hs.set(HeaderJWTAssertion, assertion)
	}
	// Caching trade-off: every request of a page asks again unless the
	// ingress caches; a cached yes outlives a policy change, a sign-out or
	// a tenant's removal by up to verifyMaxAge, and never the session.
	// Private and varying by Cookie, so no shared cache hands one user's
	// answer to another.
	hs.set("Cache-Control", p.verifyCacheControl[p.maxAge(s)])
	hs.set("Vary", "Cookie")
	rec.WriteHeader(http.StatusOK)
}

// maxAge is how many seconds an ingress may cache a yes for s: at most
// verifyMaxAge, and not past s's expiry.
func (p *Proxy) maxAge(s *samlsp.Session) int64 {
	left := s.Expires - p.clock.Now().Unix()
	return max(0, min(int64(verifyMaxAge/time.Second), left))
}

// verifyDenied answers a forward-auth request without a session: view is
// the original request, r the subrequest.
func (p *Proxy) verifyDenied(w http.ResponseWriter, r, view *http.Request, orig originalRequest) {
	base := orig.scheme + "://" + orig.host
	if !wantsSignIn(view) {
		p.challenge(w, view, base+p.auth.LoginURL(view, p.returnTo(view)))
		return
	}
	// Back to the original URI after signing in, if it is a safe local
	// path on the original host; otherwise to the default page.
	returnTo, ok := redirect.Local(orig.uri)
	if !ok {
		returnTo = ""
	}
	signin := base + p.auth.LoginURL(view, returnTo)
	h := w.Header()
	page.SecurityHeaders(h)
	if envoyForm := r.URL.EscapedPath() != samlsp.VerifyPath; envoyForm || r.URL.Query().Get("redirect") == "1" {
		// Traefik, Caddy and Envoy hand a refusal to the browser as it
		// is: it must be the redirect itself. In Envoy's path-prefix form
		// the query is the original request's, so it always is.
		http.Redirect(w, view, signin, http.StatusFound)
		return
	}
	h.Set(HeaderSignin, signin)
	page.Write(w, view, page.Errorf(http.StatusUnauthorized, "Please sign in.", nil))
}

// canonicalHost is Options.CanonicalHost, or h as sent when there is none.
func (p *Proxy) canonicalHost(h string) (string, bool) {
	if p.hosts == nil {
		return h, h != ""
	}
	return p.hosts(h)
}

// originalOf returns the original request r asks about. From a trusted
// proxy it is read from the forwarding headers of whichever ingress sent
// them, each field from every spelling present, which must agree: an
// ingress that passes the client's own headers through (Traefik, Caddy)
// sets its own spelling and leaves a forged other one beside it, and
// such a request is refused rather than read either way. A field no
// header names is the subrequest's own.
func (p *Proxy) originalOf(r *http.Request) (originalRequest, error) {
	if !reqinfo.OriginOf(r).PeerTrusted {
		return originalRequest{method: r.Method, scheme: forwardedProto(p.scheme, r), host: r.Host, uri: r.URL.RequestURI()}, nil
	}
	var method, scheme, host, uri field
	if rest := strings.TrimPrefix(r.URL.EscapedPath(), samlsp.VerifyPath); rest != "" {
		// Envoy's ext_authz with path_prefix: the original path follows,
		// with the original query, method and Host.
		u := rest
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		uri.add(u)
		method.add(r.Method)
	}
	if v, ok, err := single(r.Header, headerOriginalURL); err != nil {
		return originalRequest{}, err
	} else if ok {
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
			return originalRequest{}, fmt.Errorf("%w: %s %q is not an absolute URL", errAmbiguous, headerOriginalURL, v)
		}
		scheme.add(strings.ToLower(u.Scheme))
		host.add(u.Host)
		uri.add(u.RequestURI())
	}
	// Each spelling in turn, without a table: a table of pointers to the
	// fields would move them to the heap, on every request.
	for _, name := range [...]string{headerOriginalURI, headerForwardedURI, headerOriginalMethod, headerForwardedMethod, headerForwardedHost, headerForwardedProto} {
		v, ok, err := single(r.Header, name)
		if err != nil {
			return originalRequest{}, err
		}
		if !ok {
			continue
		}
		switch name {
		case headerOriginalURI, headerForwardedURI:
			uri.add(v)
		case headerOriginalMethod, headerForwardedMethod:
			method.add(v)
		case headerForwardedHost:
			host.add(v)
		case headerForwardedProto:
			scheme.add(strings.ToLower(v))
		}
	}
	for _, f := range [...]field{method, scheme, host, uri} {
		if f.conflict {
			return originalRequest{}, fmt.Errorf("%w: %q", errAmbiguous, []string{f.value, f.other})
		}
	}
	o := originalRequest{method: method.value, scheme: scheme.value, host: host.value, uri: uri.value}
	// A field no header names is the subrequest's own.
	if !method.set {
		o.method = r.Method
	}
	if !scheme.set {
		o.scheme = forwardedProto(p.scheme, r)
	}
	if !host.set {
		o.host = r.Host
	}
	if !uri.set {
		o.uri = r.URL.RequestURI()
	}
	return o, nil
}

// field is one field of the original request as the headers give it: the
// first value, and the first that disagrees with it.
type field struct {
	value, other  string
	set, conflict bool
}

func (f *field) add(v string) {
	switch {
	case !f.set:
		f.value, f.set = v, true
	case v != f.value && !f.conflict:
		f.other, f.conflict = v, true
	}
}

// single returns the one value of the header name, whether there is one,
// and an error if it is sent more than once.
func single(h http.Header, name string) (string, bool, error) {
	vs := h[name]
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return strings.TrimSpace(vs[0]), true, nil
	}
	return "", false, fmt.Errorf("%w: %s sent %d times", errAmbiguous, name, len(vs))
}

// viewOf returns r as the original request: its method, Host and URI,
// with r's headers (the cookies, Accept, Sec-Fetch-Mode, Referer the
// ingress passed on) and context. Headers are shared, not copied.
func viewOf(r *http.Request, orig originalRequest) (*http.Request, error) {
	if orig.scheme != "http" && orig.scheme != "https" {
		return nil, fmt.Errorf("%w: scheme %q", errAmbiguous, orig.scheme)
	}
	u, err := url.ParseRequestURI(orig.uri)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(orig.uri, "/") {
		return nil, fmt.Errorf("%w: URI %q is not a path", errAmbiguous, orig.uri)
	}
	if orig.method == "" || strings.ContainsAny(orig.method, " \t\r\n") {
		return nil, fmt.Errorf("%w: method %q", errAmbiguous, orig.method)
	}
	v := r.WithContext(r.Context()) // a shallow copy
	v.Method = orig.method
	v.Host = orig.host
	v.URL = u
	v.RequestURI = orig.uri
	return v, nil
}

// wantsSignIn reports whether a request without a session is sent to sign
// in (a browser navigation) rather than answered 401: the one decision
// ServeHTTP and ServeVerify share.
func wantsSignIn(r *http.Request) bool { return page.IsNavigation(r) }
