package samlsp

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// Single logout is best-effort: the local session always ends, whatever
// the IdP does or answers. What the IdP says is only logged and counted.

// logoutTrackerCookie remembers a LogoutRequest sent to the IdP, so that its
// LogoutResponse can be matched with it.
const logoutTrackerCookie = CookiePrefix + "logout_"

// switchURL forgets the remembered organisation and asks again.
const switchURL = SelectPath + "?switch=1"

// logoutTimeout is how long the IdP has to answer a LogoutRequest.
const logoutTimeout = 5 * time.Minute

// trackedLogout is a LogoutRequest the gateway sent.
type trackedLogout struct {
	Tenant    string `json:"t"`
	RequestID string `json:"id"`
	// Host is the tenant host a handed-over sign-out started on, or "".
	Host   string `json:"h,omitempty"`
	Issued int64  `json:"iat"`
}

// sloDoneParam carries, from the IdP's verified successful LogoutResponse
// to the signed-out page, that the user is signed out at the IdP too. It is
// sealed with the session keys (name sloDoneName) and expires after
// logoutTimeout: nobody can send a user a link that tells them they are
// signed out of Microsoft when they are not.
const (
	sloDoneParam = "slo_done"
	sloDoneName  = CookiePrefix + "slo_done"
)

// sloDone is the value of sloDoneParam.
type sloDone struct {
	Tenant string `json:"t"`
	Issued int64  `json:"iat"`
}

// serveLogout ends the session and, when the session's IdP has a
// SingleLogoutService, sends it a LogoutRequest with the session's NameID
// and SessionIndex, whose answer lands on the signed-out page. Otherwise it
// shows the signed-out page at once.
func (p *Provider) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	switch q := r.URL.Query(); {
	case q.Has(paramToken):
		// A sign-out handed over from a tenant host (handoff.go).
		p.serveHandedLogout(w, r)
		return
	case q.Has(paramSLORelay):
		// An IdP-initiated logout passing through the tenant's hosts.
		p.serveSLORelay(w, r)
		return
	}
	s, ok := p.Authenticate(r)
	p.clearSession(w, r)
	if !ok {
		p.signedOut(w, r, p.signedOutAtIDP(r))
		return
	}
	t, _ := p.tenants.Load().Get(s.Tenant)
	st := t.current()
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "logout",
		slog.String("tenant", s.Tenant), slog.String("name_id", s.NameID), slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	if st == nil || st.idp.SLOURL == "" || t.SLOURL == nil {
		p.metrics.logouts.WithLabelValues(t.ID, flowSP, "local").Inc()
		p.signedOut(w, r, false)
		return
	}
	if here := requestHost(r); slices.Contains(t.Hosts, here) && here != t.sloHost() {
		// The IdP answers at the SLO URL on another host, where a
		// tracking cookie set here would not be sent.
		p.handLogout(w, r, t, s, here)
		return
	}
	p.sendLogoutRequest(w, r, t, st, s.NameID, s.NameIDFormat, s.SessionIndex, "")
}

// sendLogoutRequest sends the IdP a LogoutRequest for nameID and
// sessionIndex, tracked in a cookie for the SLO endpoint. returnHost, if
// not empty, is the tenant host the sign-out started on, where the
// signed-out page is shown in the end.
func (p *Provider) sendLogoutRequest(w http.ResponseWriter, r *http.Request, t *Tenant, st *tenantState, nameID, nameIDFormat, sessionIndex, returnHost string) {
	set := p.currentSettings()
	var opts []crewsaml.LogoutRequestOption
	if sessionIndex != "" {
		opts = append(opts, crewsaml.WithSessionIndex(sessionIndex))
	}
	req, err := st.sp.MakeLogoutRequest(st.idp.SLOURL, nameID, opts...)
	if err == nil {
		if req.NameID != nil {
			// The NameID as the IdP issued it, format included (or none).
			req.NameID.Format = nameIDFormat
		}
		key := newTrackerKey()
		name := set.cookies.pathName(logoutTrackerCookie + key)
		var value string
		value, err = set.codec.encode(name, trackedLogout{Tenant: t.ID, RequestID: req.ID, Host: returnHost, Issued: p.clock.Now().Unix()})
		if err == nil {
			var target string
			if u, uerr := st.sp.RedirectLogoutRequestURL(req, key); uerr == nil {
				target = u.String()
			} else {
				err = uerr
			}
			if err == nil {
				http.SetCookie(w, set.cookies.tracker(logoutTrackerCookie+key, value, t.SLOURL.EscapedPath(), logoutTimeout))
				page.SecurityHeaders(w.Header())
				http.Redirect(w, r, target, http.StatusFound)
				return
			}
		}
	}
	p.log.LogAttrs(r.Context(), slog.LevelWarn, "cannot send a LogoutRequest to the IdP; signed out locally",
		slog.String("tenant", t.ID), slog.String("error", err.Error()))
	p.metrics.logouts.WithLabelValues(t.ID, flowSP, "local").Inc()
	if returnHost != "" {
		p.signedOutOn(w, r, t, returnHost, false)
		return
	}
	p.signedOut(w, r, false)
}

// serveSLO is the tenant's SingleLogoutService: the IdP's answer to a
// LogoutRequest the gateway sent, or a LogoutRequest from the IdP when the
// user signs out elsewhere.
func (p *Provider) serveSLO(w http.ResponseWriter, r *http.Request, t *Tenant) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxACSBody)
	if err := r.ParseForm(); err != nil {
		page.Write(w, r, page.Errorf(http.StatusBadRequest, "The sign-out message could not be read.", err))
		return
	}
	if param, flow := "SAMLResponse", flowSP; r.Form.Get(param) != "" || r.Form.Get("SAMLRequest") != "" {
		if r.Form.Get(param) == "" {
			param, flow = "SAMLRequest", flowIDP
		}
		if err := checkLogoutMessage(r, param); err != nil {
			// Signing out is harmless, and expected by whoever sent
			// this: the local session ends, nothing else happens.
			p.log.LogAttrs(r.Context(), slog.LevelWarn, "logout message refused; signed out locally",
				slog.String("tenant", t.ID), slog.String("error", err.Error()),
				slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
			p.metrics.logouts.WithLabelValues(t.ID, flow, "failure").Inc()
			p.clearSession(w, r)
			page.Write(w, r, page.Errorf(http.StatusBadRequest, "The sign-out message could not be read. You are signed out of this site.", err))
			return
		}
	}
	switch {
	case r.Form.Get("SAMLResponse") != "":
		p.logoutResponse(w, r, t)
	case r.Form.Get("SAMLRequest") != "":
		p.logoutRequest(w, r, t)
	default:
		page.Write(w, r, page.Errorf(http.StatusBadRequest, "The sign-out message is missing.", nil))
	}
}

// errMessageInURL refuses a POST that carries a logout message in its URL.
// The HTTP-POST binding carries it in the body; crewjam reads a message in
// the query first, whatever the method, and inflates it as the
// HTTP-Redirect binding's.
var errMessageInURL = errors.New("a POSTed logout message must be in the body, not the URL")

// checkLogoutMessage scans the logout message in param (SAMLRequest or
// SAMLResponse) of r, a request whose form is parsed, in the very
// representation crewjam's ValidateLogoutRequest and ParseLogoutResponse
// will parse: they take a message in the URL's query whatever the method,
// deflated (HTTP-Redirect), and otherwise the one in the POSTed body, not
// deflated (HTTP-POST and HTTP-POST-SimpleSign). Go's ParseForm never reads
// the body of a GET, and neither does crewjam, so a GET's message is its
// query's. A POST with a message in its query is refused outright: no
// binding sends one, and it would be the query's that crewjam read.
func checkLogoutMessage(r *http.Request, param string) error {
	var doc []byte
	var err error
	if r.Method == http.MethodPost {
		query := r.URL.Query()
		if query.Has("SAMLRequest") || query.Has("SAMLResponse") {
			return errMessageInURL
		}
		doc, err = logoutMessageXML(r.PostForm.Get(param), false)
	} else {
		doc, err = logoutMessageXML(r.URL.Query().Get(param), true)
	}
	if err != nil {
		return err
	}
	return checkLogoutXML(doc)
}

// logoutResponse takes the IdP's answer to the gateway's LogoutRequest. The
// session ended already; the answer is checked, logged and counted, and the
// user lands on the signed-out page whatever it says.
func (p *Provider) logoutResponse(w http.ResponseWriter, r *http.Request, t *Tenant) {
	set := p.currentSettings()
	key := r.Form.Get("RelayState")
	var possible []string
	var handedFrom string // the tenant host a handed-over sign-out started on
	if validTrackerKey(key) {
		name := set.cookies.pathName(logoutTrackerCookie + key)
		if ck, err := r.Cookie(name); err == nil {
			var tl trackedLogout
			if set.codec.decode(name, ck.Value, &tl) == nil && tl.Tenant == t.ID &&
				p.clock.Now().Before(time.Unix(tl.Issued, 0).Add(logoutTimeout)) {
				possible = []string{tl.RequestID}
				handedFrom = tl.Host
			}
			http.SetCookie(w, set.cookies.expired(name, t.SLOURL.EscapedPath()))
		}
	}
	result := "success"
	var err error
	if st := t.current(); st == nil {
		err = errors.New("tenant has no IdP metadata")
	} else {
		_, err = st.sp.ParseLogoutResponse(r, possible)
		if errors.Is(err, crewsaml.ErrIssuerMismatch) {
			if alias := entraLoginIssuer(st); alias != nil {
				_, err = alias.ParseLogoutResponse(r, possible)
			}
		}
	}
	if err != nil {
		result = "failure"
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "IdP LogoutResponse not accepted; the local session has ended anyway",
			slog.String("tenant", t.ID), slog.String("error", privateError(err)),
			slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
	}
	p.metrics.logouts.WithLabelValues(t.ID, flowSP, result).Inc()
	// Verified, with success status: the IdP has ended its session.
	atIDP := err == nil
	if handedFrom != "" && slices.Contains(t.Hosts, handedFrom) {
		// The session ended on the tenant host, where the signed-out
		// page's "Sign in again" leads back to; a session this browser
		// has here is another tenant's, and stays.
		p.signedOutOn(w, r, t, handedFrom, atIDP)
		return
	}
	p.clearSession(w, r)
	// To the signed-out page at a URL without the IdP's message: reloading
	// it must not post the message again.
	target := url.URL{Path: LogoutPath, RawQuery: p.sloDoneQuery(t, atIDP)}
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
}

// sloDoneQuery is the signed-out page's query that says the user is
// signed out at the IdP too (sloDoneParam), or "" when atIDP is false.
func (p *Provider) sloDoneQuery(t *Tenant, atIDP bool) string {
	if !atIDP {
		return ""
	}
	done, err := p.currentSettings().codec.encode(sloDoneName, sloDone{Tenant: t.ID, Issued: p.clock.Now().Unix()})
	if err != nil {
		return ""
	}
	return url.Values{sloDoneParam: {done}}.Encode()
}

// signedOutAtIDP reports whether r carries a fresh sloDoneParam sealed by
// this gateway.
func (p *Provider) signedOutAtIDP(r *http.Request) bool {
	v := r.URL.Query().Get(sloDoneParam)
	if v == "" {
		return false
	}
	var done sloDone
	if p.currentSettings().codec.decode(sloDoneName, v, &done) != nil {
		return false
	}
	return p.clock.Now().Before(time.Unix(done.Issued, 0).Add(logoutTimeout))
}

// logoutRequest handles an IdP-initiated logout: the session ends, and a
// valid request is answered with a LogoutResponse to the IdP, which goes on
// with the other applications.
func (p *Provider) logoutRequest(w http.ResponseWriter, r *http.Request, t *Tenant) {
	st := t.current()
	var req *crewsaml.LogoutRequest
	err := errors.New("tenant has no IdP metadata")
	if st != nil {
		req, err = st.sp.ValidateLogoutRequest(r)
		if errors.Is(err, crewsaml.ErrIssuerMismatch) {
			if alias := entraLoginIssuer(st); alias != nil {
				req, err = alias.ValidateLogoutRequest(r)
			}
		}
	}
	// The local session ends even when the request does not validate: the
	// worst a forged request can do is sign someone out, and a genuine one
	// the gateway cannot verify must not leave the user signed in.
	if s, ok := p.Authenticate(r); ok && s.Tenant == t.ID {
		p.clearSession(w, r)
	}
	if err != nil {
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "IdP LogoutRequest not accepted; signed out locally",
			slog.String("tenant", t.ID), slog.String("error", privateError(err)),
			slog.String("correlation_id", reqinfo.CorrelationID(r.Context())))
		p.metrics.logouts.WithLabelValues(t.ID, flowIDP, "failure").Inc()
		p.finishIDPLogout(w, r, t, "", false)
		return
	}
	u, err := st.sp.MakeRedirectLogoutResponse(req.ID, r.Form.Get("RelayState"))
	if err != nil || st.idp.SLOURL == "" {
		p.metrics.logouts.WithLabelValues(t.ID, flowIDP, "local").Inc()
		// Not answered, but the verified request came from the IdP,
		// where the user is signing out.
		p.finishIDPLogout(w, r, t, "", true)
		return
	}
	p.metrics.logouts.WithLabelValues(t.ID, flowIDP, "success").Inc()
	p.finishIDPLogout(w, r, t, u.String(), true)
}

// entraLoginIssuer returns a ServiceProvider that expects Entra's
// LogoutResponse issuer. Entra issues tokens as https://sts.windows.net/<tid>/
// but signs LogoutResponses as https://login.microsoftonline.com/<tid>/; the
// certificates are the same. It returns nil for other IdPs.
func entraLoginIssuer(st *tenantState) *crewsaml.ServiceProvider {
	const sts = "https://sts.windows.net/"
	id := st.sp.IDPMetadata.EntityID
	if !strings.HasPrefix(id, sts) {
		return nil
	}
	md := *st.sp.IDPMetadata
	md.EntityID = "https://login.microsoftonline.com/" + strings.TrimPrefix(id, sts)
	sp := *st.sp
	sp.IDPMetadata = &md
	return &sp
}

// privateError returns the reason crewjam keeps out of its error messages.
func privateError(err error) string {
	var ire *crewsaml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		return ire.PrivateErr.Error()
	}
	return err.Error()
}

// clearSession expires the session cookie.
func (p *Provider) clearSession(w http.ResponseWriter, _ *http.Request) {
	p.currentSettings().cookies.clearSession(w)
}

// signedOut shows the signed-out page. atIDP means the IdP confirmed a
// single logout, so the user need not sign out there too.
func (p *Provider) signedOut(w http.ResponseWriter, r *http.Request, atIDP bool) {
	page.Render(w, http.StatusOK, "signedout", page.SignedOutData{
		Title:         "Signed out",
		SignIn:        "/",
		Switch:        switchURL,
		AtIDP:         atIDP,
		CorrelationID: reqinfo.CorrelationID(r.Context()),
	})
}
