package samlsp

import (
	"encoding/xml"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/redirect"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// rememberTenantFor is how long the browser remembers which organisation
// it signed in with, so a returning user goes straight to its IdP.
const rememberTenantFor = 365 * 24 * time.Hour

// serveLogin starts an SP-initiated login: it remembers the AuthnRequest in
// a tracking cookie and redirects the browser to the tenant's IdP with the
// HTTP-Redirect binding.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request, t *Tenant) {
	set := p.currentSettings()
	var handoffHost, handoffKey string
	if len(t.Hosts) > 0 {
		// A tenant with hosts of its own: the tracking cookie must be
		// set where the IdP will post, and the session where the user
		// will use it, on one of the tenant's hosts (see handoff.go).
		// The select page, a remembered tenant or a bookmark may start
		// elsewhere.
		var ok bool
		if handoffHost, handoffKey, ok = p.routeLogin(w, r, t); !ok {
			return
		}
	}
	returnTo := p.returnTarget(r)
	st := t.current()
	if st == nil {
		p.notReady(w, r, t)
		return
	}
	req, err := st.sp.MakeAuthenticationRequest(st.idp.SSOURL, crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		p.internalError(w, r, t, "make AuthnRequest", err)
		return
	}
	key := newTrackerKey()
	tracked := trackedRequest{
		Tenant:    t.ID,
		RequestID: req.ID,
		ReturnTo:  returnTo,
		Host:      handoffHost,
		Handoff:   handoffKey,
		Issued:    p.clock.Now().Unix(),
	}
	value, err := set.codec.encode(set.cookies.pathName(trackerCookie+key), tracked)
	if err != nil {
		// A return_to near redirect.MaxLength can push the cookie over
		// the size limit: log in without it rather than fail.
		tracked.ReturnTo = ""
		value, err = set.codec.encode(set.cookies.pathName(trackerCookie+key), tracked)
		if err != nil {
			p.internalError(w, r, t, "encode tracking cookie", err)
			return
		}
	}
	target, err := req.Redirect(key, st.sp)
	if err != nil {
		p.internalError(w, r, t, "encode AuthnRequest", err)
		return
	}
	if hint := r.URL.Query().Get("login_hint"); hint != "" && validEmail(hint) {
		// Entra pre-fills the account picker with login_hint, so a user
		// who typed an email on the organisation page is not asked again.
		q := target.Query()
		q.Set("login_hint", hint)
		target.RawQuery = q.Encode()
	}

	// Expire the oldest tracking cookies beyond the limit, so abandoned
	// logins do not pile up in the browser.
	if found := p.trackers(r, t.ID); len(found) >= maxTrackers {
		for _, f := range found[:len(found)-maxTrackers+1] {
			http.SetCookie(w, set.cookies.expired(f.name, t.acsPath))
		}
	}
	http.SetCookie(w, set.cookies.tracker(trackerCookie+key, value, t.acsPath, set.loginTimeout))
	p.metrics.loginStarts.WithLabelValues(t.ID).Inc()
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// validEmail reports whether s is exactly one plain email address.
func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// serveMetadata serves the tenant's SP metadata, which an admin can upload
// to the Entra enterprise application instead of typing the URLs.
func (p *Provider) serveMetadata(w http.ResponseWriter, r *http.Request, t *Tenant) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	buf, err := xml.MarshalIndent(t.Metadata(), "", "  ")
	if err != nil {
		p.internalError(w, r, t, "marshal SP metadata", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append([]byte(xml.Header), buf...))
}

// serveSelect is the organisation sign-in page: it asks for a work email or
// Customer ID and sends the browser to that tenant's login.
func (p *Provider) serveSelect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	q := r.URL.Query()
	returnTo := p.returnTarget(r)
	query := strings.TrimSpace(q.Get("q"))
	if q.Has("switch") {
		// "Not your organisation?": forget the remembered tenant, so the
		// next sign-in asks again.
		set := p.currentSettings()
		http.SetCookie(w, set.cookies.expired(set.cookies.hostName(tenantCookie), "/"))
	}
	data := page.DiscoverData{
		Title:    "Sign in to your organisation",
		Action:   SelectPath,
		Query:    query,
		ReturnTo: returnTo,
	}
	ts := p.tenants.Load()
	if query == "" {
		page.RenderDiscover(w, data, ts.idpOrigins())
		return
	}
	var t *Tenant
	hint := ""
	if _, domain, isEmail := strings.Cut(query, "@"); isEmail {
		t = ts.byDomain[strings.ToLower(domain)]
		if t == nil {
			data.Problem = "We don't recognise the organisation for this email address. Check the address, or enter your organisation's Customer ID."
		} else if validEmail(query) {
			hint = query
		}
	} else {
		t = ts.byLower[strings.ToLower(query)]
		if t == nil {
			data.Problem = "We don't recognise this Customer ID. Check it with your administrator, or enter your work email address."
		}
	}
	if t == nil {
		page.RenderDiscover(w, data, ts.idpOrigins())
		return
	}
	http.Redirect(w, r, loginURL(t.ID, returnTo, hint), http.StatusFound)
}

// returnTarget is the page a sign-in entry (login, select) returns to: its
// return_to, a local path, or else its rd, the absolute URL that
// ingress-nginx's auth-signin appends, turned into a local path when its
// scheme and host are this request's own. Anything else, or a path that
// fails redirect.Local, is "" (the default page).
func (p *Provider) returnTarget(r *http.Request) string {
	q := r.URL.Query()
	if q.Has("return_to") {
		target, _ := redirect.Local(q.Get("return_to"))
		return target
	}
	rd := q.Get("rd")
	if rd == "" || len(rd) > redirect.MaxLength {
		return ""
	}
	u, err := url.Parse(rd)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return ""
	}
	want := "http"
	if p.currentSettings().cookies.secure {
		want = "https"
	}
	if u.Scheme != want || !sameHost(u.Host, r.Host) {
		return ""
	}
	local := u.EscapedPath()
	if u.RawQuery != "" {
		local += "?" + u.RawQuery
	}
	target, _ := redirect.Local(local)
	return target
}

// sameHost reports whether two Host values (host[:port]) name the same
// host and port, compared as HostName compares hosts.
func sameHost(a, b string) bool {
	return HostName(a) == HostName(b) && portOf(a) == portOf(b)
}

// portOf is the port of a Host value, or "".
func portOf(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		return host[i+1:]
	}
	return ""
}

// loginURL is the gateway's own URL that starts a login for tenant.
func loginURL(tenant, returnTo, hint string) string {
	u := LoginPath + url.PathEscape(tenant)
	v := url.Values{}
	if returnTo != "" {
		v.Set("return_to", returnTo)
	}
	if hint != "" {
		v.Set("login_hint", hint)
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

// LoginRedirect answers a browser navigation that has no session: it goes
// to the remembered organisation's login, or to the organisation page,
// carrying the requested path so the user lands where they were going. If
// the request named the session cookie twice, it expires the copies.
func (p *Provider) LoginRedirect(w http.ResponseWriter, r *http.Request) {
	// A browser refused for a duplicated session cookie must lose the
	// copies, or it would come back with them after signing in.
	p.expireDuplicateSessions(w, r, r.URL.EscapedPath())
	returnTo, ok := redirect.Local(r.URL.RequestURI())
	if !ok {
		returnTo = ""
	}
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, p.LoginURL(r, returnTo), http.StatusFound)
}

// serveSignin starts a login for an ingress's sign-in redirect (SigninPath).
func (p *Provider) serveSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, p.LoginURL(r, p.returnTarget(r)), http.StatusFound)
}

// LoginURL is the gateway's own URL (a path) where the browser that sent r
// signs in and then returns to returnTo, a local path that the caller has
// checked with redirect.Local ("" for the tenant's default): the login of
// the host's tenant or of the remembered one, else the organisation page.
func (p *Provider) LoginURL(r *http.Request, returnTo string) string {
	if t, ok := p.tenants.Load().ForHost(r); ok {
		return loginURL(t.ID, returnTo, "")
	}
	if t, ok := p.rememberedTenant(r); ok {
		return loginURL(t.ID, returnTo, "")
	}
	u := SelectPath
	if returnTo != "" {
		u += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	return u
}

// SessionCookieName is the name of the session cookie (its first chunk).
func (p *Provider) SessionCookieName() string {
	return p.currentSettings().cookies.hostName(sessionCookie)
}

// rememberedTenant returns the tenant the browser last signed in with, if
// it is still configured.
func (p *Provider) rememberedTenant(r *http.Request) (*Tenant, bool) {
	set := p.currentSettings()
	name := set.cookies.hostName(tenantCookie)
	ck, err := r.Cookie(name)
	if err != nil {
		return nil, false
	}
	var id string
	if err := set.codec.decode(name, ck.Value, &id); err != nil {
		return nil, false
	}
	return p.tenants.Load().Get(id)
}

func (p *Provider) rememberTenantCookie(id string) (*http.Cookie, error) {
	set := p.currentSettings()
	name := set.cookies.hostName(tenantCookie)
	value, err := set.codec.encode(name, id)
	if err != nil {
		return nil, err
	}
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(rememberTenantFor / time.Second),
		HttpOnly: true,
		Secure:   set.cookies.secure,
		SameSite: http.SameSiteLaxMode,
	}, nil
}

// notReady answers a login at a tenant without usable IdP metadata. Most
// such problems (a broken metadata file, an expired certificate, metadata
// of another directory) do not go away by themselves: the user is told
// that their organisation's administrator must act, with the reference
// that finds the log line. Only metadata that may still arrive (its URL has
// not answered yet) asks them to try again later.
func (p *Provider) notReady(w http.ResponseWriter, r *http.Request, t *Tenant) {
	problem, transient := "no IdP metadata", false
	if p.problem != nil {
		problem, transient = p.problem(t.ID)
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "login refused: tenant not ready",
		slog.String("tenant", t.ID), slog.String("problem", problem), slog.Bool("transient", transient),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	if transient {
		w.Header().Set("Retry-After", "60")
		page.Write(w, r, page.Errorf(http.StatusServiceUnavailable, "Sign-in for your organisation is temporarily unavailable. Please try again in a few minutes.", nil))
		return
	}
	page.Write(w, r, page.Errorf(http.StatusServiceUnavailable,
		"Sign-in for your organisation cannot work until your organisation's administrator fixes its set-up. Please tell your IT support team, and quote the reference below.", nil))
}

// internalError logs an unexpected failure and shows a generic page.
func (p *Provider) internalError(w http.ResponseWriter, r *http.Request, t *Tenant, what string, err error) {
	p.log.LogAttrs(r.Context(), slog.LevelError, "internal error",
		slog.String("tenant", t.ID), slog.String("op", what), slog.String("error", err.Error()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	page.Write(w, r, page.Errorf(http.StatusInternalServerError, "Something went wrong while signing you in. Please try again.", err))
}
