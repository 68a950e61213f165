package samlsp

import (
	"cmp"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/redirect"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// Handoffs. A tenant with hosts of its own keeps its SAML URLs (Identifier,
// Reply URL, Logout URL) on public_url unless saml_urls_on_host moves them,
// so that adding hosts never breaks its Entra application. Its sessions
// are valid only on its hosts, and the session cookie is host-only: only a
// response from the tenant's host can set it. So a login that starts on a
// tenant host, docs.acme.example, while the IdP posts to public_url's host:
//
//  1. GET login on docs.acme.example sets a binding cookie named after a
//     random key K there, and goes to the login URL on the ACS host with
//     host=docs.acme.example and ho=K.
//  2. GET login on the ACS host records host and K in the tracking cookie
//     and sends the AuthnRequest as usual.
//  3. The IdP's POST to the ACS is verified as usual; instead of a session
//     cookie the ACS answers with a handoff token: the session, encrypted
//     and authenticated, for docs.acme.example, K, single use, two minutes.
//  4. GET handoff?t=token on docs.acme.example checks the token against
//     this host, the tenant's hosts now, the binding cookie of K (so a
//     token minted in an attacker's browser is useless in a victim's:
//     login CSRF) and the replay cache, and only then sets the session.
//
// An IdP-initiated login has no K: it lands on the tenant's first host,
// bound to no browser, like any unsolicited SAML response.
//
// Signing out on a tenant host is handed to the SLO host the same way
// (handLogout), since the IdP's LogoutResponse comes back there; an
// IdP-initiated logout at the SLO host passes through the tenant's hosts
// (finishIDPLogout) to end the sessions there before it is answered.

// HandoffPath is where a login verified on another host is completed.
const HandoffPath = PathPrefix + "handoff"

const (
	// handoffTTL is how long a handoff token (or a handed-over logout) may
	// take from the ACS host to the tenant host: one redirect.
	handoffTTL = 2 * time.Minute
	// handoffBindCookie + K is the binding cookie on the tenant host.
	handoffBindCookie = CookiePrefix + "ho_"
	// handoffTokenName, logoutHandoffName and sloRelayName are the names
	// tokens are encoded under. No cookie has them, so no cookie value can
	// be replayed as a token, nor a token as a cookie, nor one kind of
	// token as another.
	handoffTokenName  = CookiePrefix + "handoff"
	logoutHandoffName = CookiePrefix + "logout_handoff"
	sloRelayName      = CookiePrefix + "slo_relay"
	// handoffReplayPrefix keeps token IDs apart from assertion IDs in the
	// replay cache, which prefixes those with "<tenant> ": a Customer_ID
	// never contains ':'.
	handoffReplayPrefix = "handoff: "
)

// Query parameters of the login and handoff URLs.
const (
	paramHost       = "host" // the tenant host a login started on
	paramHandoffKey = "ho"   // K, the binding cookie's key
	paramToken      = "t"    // a handoff token
	paramSLORelay   = "slo"  // an IdP-initiated logout on its way through the tenant's hosts
)

// Results of a handoff: the values of the result label of
// sso_gateway_login_handoffs_total.
const (
	handoffSuccess   = "success"
	handoffInvalid   = "invalid"    // no token, or it does not decode: tampered, truncated, another key
	handoffExpired   = "expired"    // older than handoffTTL
	handoffWrongHost = "wrong_host" // for another host, or a host the tenant no longer has
	handoffUnbound   = "unbound"    // the binding cookie is missing or names another login: started in another browser
	handoffReplayed  = "replayed"   // used before
	handoffStore     = "replay_store_unavailable"
	handoffOther     = "other" // the session could not be set
)

// HandoffResults returns every handoff result, for documentation and
// tests, in a new slice on each call.
func HandoffResults() []string {
	return []string{
		handoffSuccess, handoffInvalid, handoffExpired, handoffWrongHost, handoffUnbound,
		handoffReplayed, handoffStore, handoffOther,
	}
}

// newHandoffCounter is sso_gateway_login_handoffs_total, with every result
// at zero.
func newHandoffCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sso_gateway_login_handoffs_total",
		Help: "Logins verified at the ACS on public_url's host and completed on a tenant's own host, by result (success, invalid, expired, wrong_host, unbound, replayed, replay_store_unavailable, other).",
	}, []string{"result"})
	for _, r := range HandoffResults() {
		c.WithLabelValues(r)
	}
	return c
}

// handoffBinding is the value of a binding cookie: the login it binds to
// this browser.
type handoffBinding struct {
	Tenant string `json:"t"`
	Host   string `json:"h"`
	Issued int64  `json:"iat"`
}

// handoffToken carries a verified login from the ACS host to the tenant
// host.
type handoffToken struct {
	Tenant string `json:"t"`
	Host   string `json:"h"`
	// Key is K of the binding cookie; empty for an IdP-initiated login.
	Key string `json:"k,omitempty"`
	// IDP marks an IdP-initiated login, the only kind that may have no
	// Key.
	IDP     bool     `json:"idp,omitempty"`
	ID      string   `json:"id"`
	Session *Session `json:"s"`
	Return  string   `json:"r,omitempty"`
	Expires int64    `json:"exp"`
}

// logoutHandoff carries a sign-out from a tenant host to the SLO host,
// where the LogoutRequest is made and its answer awaited.
type logoutHandoff struct {
	Tenant       string `json:"t"`
	NameID       string `json:"n"`
	NameIDFormat string `json:"nf,omitempty"`
	SessionIndex string `json:"si,omitempty"`
	// Host is the tenant host the user signed out on, where the
	// signed-out page is shown in the end.
	Host    string `json:"h"`
	Expires int64  `json:"exp"`
}

// samlHost is the host name of the tenant's ACS URL, lower case: where the
// IdP posts.
func (t *Tenant) samlHost() string {
	return strings.TrimSuffix(strings.ToLower(t.ACSURL.Hostname()), ".")
}

// sloHost is the host name of the tenant's SLO URL, lower case, or "".
func (t *Tenant) sloHost() string {
	if t.SLOURL == nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(t.SLOURL.Hostname()), ".")
}

// hostURL is path on host, with the scheme and port of the tenant's SAML
// URLs: one listener serves every host.
func (t *Tenant) hostURL(host, path string) *url.URL {
	if port := t.ACSURL.Port(); port != "" {
		host = net.JoinHostPort(host, port)
	}
	return &url.URL{Scheme: t.ACSURL.Scheme, Host: host, Path: path}
}

// loginQuery is the query of a login URL: the validated return path and
// login hint of r, and more.
func loginQuery(r *http.Request, more url.Values) string {
	q := r.URL.Query()
	v := url.Values{}
	if rt, ok := redirect.Local(q.Get("return_to")); ok {
		v.Set("return_to", rt)
	}
	if hint := q.Get("login_hint"); hint != "" && validEmail(hint) {
		v.Set("login_hint", hint)
	}
	for k, vs := range more {
		v[k] = vs
	}
	return v.Encode()
}

// routeLogin decides where a login for a tenant with hosts happens, given
// the host it reached. It answers the request itself, and returns false,
// unless the login is to go on here; then it returns the tenant host (and
// key) to hand the login to, if any.
func (p *Provider) routeLogin(w http.ResponseWriter, r *http.Request, t *Tenant) (host, key string, ok bool) {
	here := requestHost(r)
	ownHost := slices.Contains(t.Hosts, here)
	switch {
	case ownHost && here != t.samlHost():
		// Started on a tenant host; the IdP posts elsewhere.
		p.bindLogin(w, r, t, here)
		return "", "", false
	case here == t.samlHost():
		q := r.URL.Query()
		if !q.Has(paramHost) && !q.Has(paramHandoffKey) {
			if ownHost {
				// saml_urls_on_host: the login starts and ends here.
				return "", "", true
			}
			break // from the organisation page, a remembered tenant, a bookmark
		}
		host, key = q.Get(paramHost), q.Get(paramHandoffKey)
		if !slices.Contains(t.Hosts, host) || !validTrackerKey(key) {
			// Attacker-controlled: only the tenant's hosts, only keys
			// bindLogin could have made.
			p.log.LogAttrs(r.Context(), slog.LevelWarn, "login refused: handoff host or key not valid",
				slog.String("tenant", t.ID), slog.String("client_ip", reqinfo.OriginOf(r).String()),
				slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
			page.WriteLoginError(w, r, page.Errorf(http.StatusBadRequest, "This sign-in link is not valid. Please sign in again.", nil),
				loginURL(t.ID, "", ""), switchURL)
			return "", "", false
		}
		return host, key, true
	}
	// Anywhere else, the login starts over on the tenant's first host, so
	// that it is bound to this browser there.
	u := t.hostURL(t.Hosts[0], LoginPath+url.PathEscape(t.ID))
	u.RawQuery = loginQuery(r, nil)
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, u.String(), http.StatusFound)
	return "", "", false
}

// bindLogin starts a login on the tenant host host: a binding cookie here,
// then the login on the ACS host.
func (p *Provider) bindLogin(w http.ResponseWriter, r *http.Request, t *Tenant, host string) {
	set := p.currentSettings()
	key := newTrackerKey()
	name := set.cookies.hostName(handoffBindCookie + key)
	value, err := set.codec.encode(name, handoffBinding{Tenant: t.ID, Host: host, Issued: p.clock.Now().Unix()})
	if err != nil {
		p.internalError(w, r, t, "encode handoff binding cookie", err)
		return
	}
	// Like the tracking cookies: abandoned logins do not pile up.
	if found := p.bindings(r); len(found) >= maxTrackers {
		for _, name := range found[:len(found)-maxTrackers+1] {
			http.SetCookie(w, set.cookies.expired(name, "/"))
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(bindingLifetime(set) / time.Second),
		HttpOnly: true,
		Secure:   set.cookies.secure,
		// Lax is sent with the top-level GET the ACS redirects to, and
		// never with a cross-site subrequest.
		SameSite: http.SameSiteLaxMode,
	})
	u := *t.ACSURL
	u.RawQuery = loginQuery(r, url.Values{paramHost: {host}, paramHandoffKey: {key}})
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// bindingLifetime is how long a binding cookie lasts: the login at the
// IdP, then the handoff.
func bindingLifetime(set *settings) time.Duration { return set.loginTimeout + handoffTTL }

// bindings returns the names of the binding cookies in r, oldest first,
// undecodable ones first of all.
func (p *Provider) bindings(r *http.Request) []string {
	set := p.currentSettings()
	prefix := set.cookies.hostName(handoffBindCookie)
	type found struct {
		name   string
		issued int64 // 0 if it does not decode
	}
	var out []found
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, prefix) {
			continue
		}
		f := found{name: ck.Name}
		var b handoffBinding
		if set.codec.decode(ck.Name, ck.Value, &b) == nil {
			f.issued = b.Issued
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b found) int { return cmp.Compare(a.issued, b.issued) })
	names := make([]string, len(out))
	for i, f := range out {
		names[i] = f.name
	}
	return names
}

// handoffHost returns the tenant host a login verified at the ACS, reached
// at here, must be completed on, or "" to set the session here.
func (t *Tenant) handoffHost(here string, tracked *trackedRequest) string {
	if len(t.Hosts) == 0 {
		return ""
	}
	if tracked != nil && tracked.Host != "" {
		if tracked.Host == here {
			return ""
		}
		if slices.Contains(t.Hosts, tracked.Host) {
			return tracked.Host
		}
		// A reload took the host away: the first one refuses the
		// handoff (its binding cookie is elsewhere) and starts again.
		return t.Hosts[0]
	}
	if slices.Contains(t.Hosts, here) {
		return ""
	}
	return t.Hosts[0]
}

// handoffURL returns the URL on host that completes the login of s.
func (p *Provider) handoffURL(t *Tenant, s *Session, host string, tracked *trackedRequest, returnTo string) (string, error) {
	tok := handoffToken{
		Tenant:  t.ID,
		Host:    host,
		ID:      newTrackerKey(),
		Session: s,
		Return:  returnTo,
		Expires: p.clock.Now().Add(handoffTTL).Unix(),
	}
	if tracked != nil {
		tok.Key = tracked.Handoff
	} else {
		tok.IDP = true
	}
	value, err := p.currentSettings().codec.encode(handoffTokenName, tok)
	if err != nil {
		return "", err
	}
	u := t.hostURL(host, HandoffPath)
	u.RawQuery = url.Values{paramToken: {value}}.Encode()
	return u.String(), nil
}

// serveHandoff completes on a tenant host a login verified at the ACS on
// another host: it checks the token and sets the session cookie here.
func (p *Provider) serveHandoff(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		// Not even HEAD: a link checker must not use up the token.
		w.Header().Set("Allow", "GET")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	set := p.currentSettings()
	ts := p.tenants.Load()
	here := requestHost(r)
	now := p.clock.Now()
	var tok handoffToken
	if err := set.codec.decode(handoffTokenName, r.URL.Query().Get(paramToken), &tok); err != nil || tok.Session == nil || tok.Session.Tenant != tok.Tenant {
		if err == nil {
			err = errors.New("token carries no session of its tenant")
		}
		p.refuseHandoff(w, r, nil, "", handoffInvalid, err)
		return
	}
	t, known := ts.Get(tok.Tenant)
	var result string
	var cause error
	switch {
	case !now.Before(time.Unix(tok.Expires, 0)), tok.Session.Expires <= now.Unix():
		result, cause = handoffExpired, errors.New("token or its session expired at "+time.Unix(min(tok.Expires, tok.Session.Expires), 0).UTC().Format(time.RFC3339))
	case !known || tok.Host != here || !slices.Contains(t.Hosts, here):
		// Checked against the hosts in force now: a reload may have
		// taken the host away since the token was made.
		result, cause = handoffWrongHost, errors.New("token for host "+tok.Host+", tenant hosts now "+hostList(t))
	case !p.handoffBound(r, &tok, t):
		result, cause = handoffUnbound, errors.New("no binding cookie of this login in the browser")
	}
	if result != "" {
		p.refuseHandoff(w, r, t, tok.Return, result, cause)
		return
	}
	// Last, so that a refused attempt cannot use up the browser's token.
	if err := p.replay.Consume(handoffReplayPrefix+tok.ID, time.Unix(tok.Expires, 0).Add(crewsaml.MaxClockSkew)); err != nil {
		result := handoffStore
		if errors.Is(err, crewsaml.ErrAssertionReplayed) {
			result = handoffReplayed
		}
		p.refuseHandoff(w, r, t, tok.Return, result, err)
		return
	}
	target, ok := redirect.Local(tok.Return)
	if !ok {
		target = t.DefaultRelayState
	}
	s := tok.Session
	// Copies of the session cookie planted on this host would otherwise
	// stand beside the new one and make the next request sessionless.
	p.expireOldSessions(w, r, targetPath(target))
	value, err := set.codec.encode(set.cookies.hostName(sessionCookie), s)
	if err == nil {
		err = set.cookies.writeSession(w, value, time.Unix(s.Expires, 0))
	}
	if err != nil {
		p.refuseHandoff(w, r, t, tok.Return, handoffOther, err)
		return
	}
	if ck, err := p.rememberTenantCookie(t.ID); err == nil {
		http.SetCookie(w, ck)
	}
	if tok.Key != "" {
		http.SetCookie(w, set.cookies.expired(set.cookies.hostName(handoffBindCookie+tok.Key), "/"))
	}
	p.metrics.handoffs.WithLabelValues(handoffSuccess).Inc()
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "login handoff",
		slog.String("tenant", t.ID), slog.String("host", here), slog.String("name_id", s.NameID),
		slog.Bool("idp_initiated", tok.IDP),
		slog.String("client_ip", reqinfo.OriginOf(r).String()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	// The token is in this URL: no Referer carries it further.
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// handoffBound reports whether tok may complete its login in the browser
// that sent r: an SP-initiated login only in the browser that started it on
// this host (its binding cookie), an IdP-initiated one only where the
// tenant accepts those.
func (p *Provider) handoffBound(r *http.Request, tok *handoffToken, t *Tenant) bool {
	if tok.Key == "" {
		return tok.IDP && t.AllowIDPInitiated
	}
	if !validTrackerKey(tok.Key) {
		return false
	}
	set := p.currentSettings()
	name := set.cookies.hostName(handoffBindCookie + tok.Key)
	ck, err := r.Cookie(name)
	if err != nil {
		return false
	}
	var b handoffBinding
	if set.codec.decode(name, ck.Value, &b) != nil {
		return false
	}
	fresh := p.clock.Now().Before(time.Unix(b.Issued, 0).Add(bindingLifetime(set)))
	return b.Tenant == tok.Tenant && b.Host == tok.Host && fresh
}

// refuseHandoff counts, logs and answers a refused handoff with the login
// error page, whose retry link starts the login again on this host. t is
// nil when the token names no tenant in force.
func (p *Provider) refuseHandoff(w http.ResponseWriter, r *http.Request, t *Tenant, returnTo, result string, cause error) {
	p.metrics.handoffs.WithLabelValues(result).Inc()
	attrs := []slog.Attr{
		slog.String("result", result),
		slog.String("host", requestHost(r)),
		slog.String("client_ip", reqinfo.OriginOf(r).String()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())),
	}
	if t != nil {
		attrs = append(attrs, slog.String("tenant", t.ID))
	}
	if cause != nil {
		attrs = append(attrs, slog.String("error", cause.Error()))
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "login handoff refused", attrs...)

	code, msg := http.StatusForbidden, "This sign-in could not be completed. Please sign in again."
	switch result {
	case handoffInvalid:
		code, msg = http.StatusBadRequest, "This sign-in link is not valid. Please sign in again."
	case handoffExpired:
		msg = "This sign-in took too long to complete. Please sign in again."
	case handoffUnbound:
		msg = "This sign-in was started in another browser or window. Please sign in again."
	case handoffReplayed:
		msg = "This sign-in link has already been used. Please sign in again."
	case handoffStore:
		code, msg = http.StatusServiceUnavailable, "Signing in is briefly unavailable. Please try again in a moment."
	}
	retry := "/"
	if t == nil {
		t, _ = p.tenants.Load().ForHost(r)
		returnTo = ""
	}
	if t != nil {
		rt, _ := redirect.Local(returnTo)
		retry = loginURL(t.ID, rt, "")
	}
	page.WriteLoginError(w, r, page.Errorf(code, msg, cause), retry, switchURL)
}

func hostList(t *Tenant) string {
	if t == nil {
		return "(tenant gone)"
	}
	return "[" + strings.Join(t.Hosts, " ") + "]"
}

// handLogout hands the sign-out of a session on the tenant host here to the
// tenant's SLO host, whose tracking cookie the IdP's LogoutResponse must
// find. The session here has ended already.
func (p *Provider) handLogout(w http.ResponseWriter, r *http.Request, t *Tenant, s *Session, here string) {
	value, err := p.currentSettings().codec.encode(logoutHandoffName, logoutHandoff{
		Tenant: t.ID, NameID: s.NameID, NameIDFormat: s.NameIDFormat, SessionIndex: s.SessionIndex,
		Host: here, Expires: p.clock.Now().Add(handoffTTL).Unix(),
	})
	if err != nil {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "cannot hand the logout to the SLO host; signed out locally",
			slog.String("tenant", t.ID), slog.String("error", err.Error()))
		p.metrics.logouts.WithLabelValues(t.ID, flowSP, "local").Inc()
		p.signedOut(w, r, false)
		return
	}
	u := url.URL{Scheme: t.SLOURL.Scheme, Host: t.SLOURL.Host, Path: LogoutPath, RawQuery: url.Values{paramToken: {value}}.Encode()}
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// serveHandedLogout, on the SLO host, sends the IdP the LogoutRequest of a
// sign-out handed over from a tenant host. Nothing here is signed in or
// out: the session ended on the tenant host, and a session the browser
// has on this host is left alone. A token that is not valid ends the
// logout locally. Tokens are not single-use: the worst one can do is ask
// the IdP to sign its user out again.
func (p *Provider) serveHandedLogout(w http.ResponseWriter, r *http.Request) {
	var lt logoutHandoff
	if err := p.currentSettings().codec.decode(logoutHandoffName, r.URL.Query().Get(paramToken), &lt); err != nil {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "handed-over logout refused: token not valid",
			slog.String("error", err.Error()), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		p.signedOut(w, r, false)
		return
	}
	t, ok := p.tenants.Load().Get(lt.Tenant)
	if !ok || !slices.Contains(t.Hosts, lt.Host) {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "handed-over logout refused: tenant or host no longer configured",
			slog.String("tenant", lt.Tenant), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		p.signedOut(w, r, false)
		return
	}
	st := t.current()
	switch {
	case !p.clock.Now().Before(time.Unix(lt.Expires, 0)), requestHost(r) != t.sloHost():
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "handed-over logout refused: expired, or not on the SLO host; signed out locally",
			slog.String("tenant", t.ID), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	case st == nil || st.idp.SLOURL == "":
	default:
		p.sendLogoutRequest(w, r, t, st, lt.NameID, lt.NameIDFormat, lt.SessionIndex, lt.Host)
		return
	}
	p.metrics.logouts.WithLabelValues(t.ID, flowSP, "local").Inc()
	p.signedOutOn(w, r, t, lt.Host, false)
}

// signedOutOn sends the browser to the signed-out page on host, one of t's
// hosts, whose "Sign in again" leads back there; atIDP says that the IdP
// has ended its session too.
func (p *Provider) signedOutOn(w http.ResponseWriter, r *http.Request, t *Tenant, host string, atIDP bool) {
	u := t.hostURL(host, LogoutPath)
	u.RawQuery = p.sloDoneQuery(t, atIDP)
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// sloRelay carries an IdP-initiated logout through the tenant's hosts, each
// of which ends its own session, to the LogoutResponse.
type sloRelay struct {
	Tenant string `json:"t"`
	// Hosts are the tenant hosts still to visit, in order.
	Hosts []string `json:"hs"`
	// Next is the LogoutResponse URL at the IdP, or "" to end on the
	// signed-out page of the last host.
	Next string `json:"n,omitempty"`
	// AtIDP means the IdP's request was verified: that page says the
	// user is signed out at the IdP too.
	AtIDP   bool  `json:"idp,omitempty"`
	Expires int64 `json:"exp"`
}

// finishIDPLogout ends an IdP-initiated logout for t, whose session here
// has ended: at next (the LogoutResponse to the IdP), or the signed-out
// page when next is "". A session on the tenant's other hosts is
// host-only, out of reach from here: the browser visits each of them first.
func (p *Provider) finishIDPLogout(w http.ResponseWriter, r *http.Request, t *Tenant, next string, atIDP bool) {
	here := requestHost(r)
	rl := sloRelay{Tenant: t.ID, Next: next, AtIDP: atIDP, Expires: p.clock.Now().Add(handoffTTL).Unix()}
	for _, h := range t.Hosts {
		if h != here {
			rl.Hosts = append(rl.Hosts, h)
		}
	}
	p.relaySLO(w, r, t, rl)
}

// relaySLO sends the browser to the next host of rl, or, when none is
// left, to where the logout ends.
func (p *Provider) relaySLO(w http.ResponseWriter, r *http.Request, t *Tenant, rl sloRelay) {
	if len(rl.Hosts) > 0 {
		u := t.hostURL(rl.Hosts[0], LogoutPath)
		rl.Hosts = rl.Hosts[1:]
		value, err := p.currentSettings().codec.encode(sloRelayName, rl)
		if err == nil {
			u.RawQuery = url.Values{paramSLORelay: {value}}.Encode()
			page.SecurityHeaders(w.Header())
			http.Redirect(w, r, u.String(), http.StatusFound)
			return
		}
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "cannot pass the IdP's logout to the tenant's hosts",
			slog.String("tenant", t.ID), slog.String("error", err.Error()))
	}
	if rl.Next == "" {
		p.signedOut(w, r, rl.AtIDP)
		return
	}
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, rl.Next, http.StatusFound)
}

// serveSLORelay, on a tenant host, ends the session here as part of an
// IdP-initiated logout and sends the browser on. Like any sign-out it ends
// the session whatever the token says; only a valid token, for a tenant
// that has this host, goes on (Next is where the IdP asked to be
// answered, so it is followed only from a token the gateway made).
func (p *Provider) serveSLORelay(w http.ResponseWriter, r *http.Request) {
	p.clearSession(w, r)
	var rl sloRelay
	err := p.currentSettings().codec.decode(sloRelayName, r.URL.Query().Get(paramSLORelay), &rl)
	t, ok := p.tenants.Load().Get(rl.Tenant)
	switch {
	case err != nil:
	case !ok || !slices.Contains(t.Hosts, requestHost(r)):
		err = errors.New("tenant gone, or this host is not one of its hosts")
	case !p.clock.Now().Before(time.Unix(rl.Expires, 0)):
		err = errors.New("expired")
	default:
		// Hosts a reload took away are skipped.
		rl.Hosts = slices.DeleteFunc(rl.Hosts, func(h string) bool { return !slices.Contains(t.Hosts, h) })
		p.relaySLO(w, r, t, rl)
		return
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "IdP logout relay refused; signed out here",
		slog.String("error", err.Error()), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	p.signedOut(w, r, false)
}
