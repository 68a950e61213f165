package samlsp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/internal/redirect"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// MaxACSBody is the largest form accepted at the ACS. An Entra response with
// 150 groups, encrypted and base64-encoded, is under 40 KiB.
const MaxACSBody = 256 << 10

// Entra ID claim names.
const (
	ClaimEmail       = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	ClaimDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
	ClaimGivenName   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	ClaimSurname     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	ClaimGroups      = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
	// ClaimGroupsLink replaces the groups claim when the user is in more
	// than 150 groups (Entra's "overage"): the groups must then be read
	// from Microsoft Graph, which the gateway does not do.
	ClaimGroupsLink = "http://schemas.microsoft.com/claims/groups.link"
	// ClaimTenantID is the ID of the Entra directory that signed the user
	// in.
	ClaimTenantID = "http://schemas.microsoft.com/identity/claims/tenantid"
)

const emailNameIDFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"

// serveACS consumes a SAML response (HTTP-POST binding), for SP-initiated
// and IdP-initiated logins alike.
func (p *Provider) serveACS(w http.ResponseWriter, r *http.Request, t *Tenant) {
	set := p.currentSettings()
	start := p.clock.Now()
	flow := flowIDP
	st := t.current()
	if st == nil {
		p.notReady(w, r, t)
		return
	}
	tracked, err := p.readACSForm(w, r, t)
	var raw []byte
	var inResponseTo string
	if err == nil {
		raw, inResponseTo, err = readResponse(r.PostForm.Get("SAMLResponse"))
	}
	if tracked != nil || inResponseTo != "" {
		// A response that answers a request is SP-initiated even when
		// its tracking cookie is missing: the label must not make a
		// lost cookie look like an unsolicited login.
		flow = flowSP
	}
	var s *Session
	var assertion *crewsaml.Assertion
	if err == nil {
		assertion, s, err = p.verify(r, t, st.sp, tracked, raw)
	}
	p.metrics.loginDuration.WithLabelValues(t.ID).Observe(p.clock.Since(start).Seconds())
	if err != nil {
		p.fail(w, r, t, flow, assertion, raw, err)
		return
	}

	target := acsTarget(t, r, tracked)
	if host := t.handoffHost(requestHost(r), tracked); host != "" {
		// The session belongs on one of the tenant's hosts, whose
		// host-only cookie a response from here cannot set: the
		// tenant host completes the login (handoff.go).
		target, err = p.handoffURL(t, s, host, tracked, target)
	} else {
		// Before the new session cookie, so that it is the copy left
		// standing.
		p.expireOldSessions(w, r, targetPath(target))
		var value string
		value, err = set.codec.encode(set.cookies.hostName(sessionCookie), s)
		if err == nil {
			err = set.cookies.writeSession(w, value, time.Unix(s.Expires, 0))
		}
		if err == nil {
			if ck, err := p.rememberTenantCookie(t.ID); err == nil {
				http.SetCookie(w, ck)
			}
		}
	}
	if err != nil {
		p.fail(w, r, t, flow, assertion, raw, failure(ReasonOther, http.StatusForbidden,
			"Your account carries more information than this service can keep in a session. Ask your administrator to limit the groups and claims sent to this application.", err))
		return
	}
	if tracked != nil {
		http.SetCookie(w, set.cookies.expired(set.cookies.pathName(trackerCookie+r.PostForm.Get("RelayState")), t.acsPath))
		p.metrics.flowDuration.WithLabelValues(t.ID).Observe(p.clock.Since(time.Unix(tracked.Issued, 0)).Seconds())
	}
	p.metrics.logins.WithLabelValues(t.ID, flow, "success", "none").Inc()
	p.audit(r, t, flow, "success", "none", assertion, nil, nil)
	page.SecurityHeaders(w.Header())
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// acsTarget is where a successful login sends the browser: the page a
// tracked login started from, or the RelayState of an IdP-initiated one if
// it is a local path, or else the tenant's default.
func acsTarget(t *Tenant, r *http.Request, tracked *trackedRequest) string {
	if tracked != nil {
		if tracked.ReturnTo != "" {
			return tracked.ReturnTo
		}
		return t.DefaultRelayState
	}
	if rs, ok := redirect.Local(r.PostForm.Get("RelayState")); ok {
		// Entra sends the enterprise app's configured Relay State with
		// IdP-initiated logins: a deep link into the upstream.
		return rs
	}
	return t.DefaultRelayState
}

// readACSForm reads the POSTed form within MaxACSBody and returns the
// tracked request its RelayState names, if any.
func (p *Provider) readACSForm(w http.ResponseWriter, r *http.Request, t *Tenant) (*trackedRequest, error) {
	if r.ContentLength > MaxACSBody {
		return nil, tooLarge(fmt.Errorf("Content-Length %d", r.ContentLength))
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxACSBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(err)
		}
		return nil, failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response could not be read.", fmt.Errorf("parse form: %w", err))
	}
	tracked := p.trackedByRelayState(r, t.ID, r.PostForm.Get("RelayState"))
	if r.Form.Has("SAMLart") {
		// The HTTP-Artifact binding would make the gateway call the IdP
		// on an attacker's say-so. It is not advertised and never resolved.
		return tracked, failure(ReasonMalformed, http.StatusBadRequest, "This sign-in method is not supported.", errors.New("SAMLart (artifact binding) received"))
	}
	if r.PostForm.Get("SAMLResponse") == "" {
		return tracked, failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response is missing.", errors.New("no SAMLResponse in the POST body"))
	}
	return tracked, nil
}

func tooLarge(err error) loginError {
	return failure(ReasonMalformed, http.StatusRequestEntityTooLarge, "The sign-in response is too large.", fmt.Errorf("ACS body over %d bytes: %w", MaxACSBody, err))
}

// readResponse decodes the SAMLResponse form value and scans it
// (checkResponse) before anything parses it. It returns the root's
// InResponseTo, unverified, even when it refuses the response; raw is nil
// then.
func readResponse(form string) (raw []byte, inResponseTo string, err error) {
	raw, err = base64.StdEncoding.DecodeString(form)
	if err != nil {
		return nil, "", failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response could not be read.", fmt.Errorf("SAMLResponse is not base64: %w", err))
	}
	inResponseTo, err = checkResponse(raw)
	if err != nil {
		return nil, inResponseTo, failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response could not be read.", err)
	}
	return raw, inResponseTo, nil
}

// verify validates raw, a response that readResponse accepted, with
// crewjam and turns the assertion into a session.
func (p *Provider) verify(r *http.Request, t *Tenant, sp *crewsaml.ServiceProvider, tracked *trackedRequest, raw []byte) (*crewsaml.Assertion, *Session, error) {
	p.debugResponse(r.Context(), t, raw)
	var possible []string
	if tracked != nil {
		// Only the request this RelayState names may be answered: a
		// response to another login in this browser is refused.
		possible = []string{tracked.RequestID}
	}
	// The Destination must be this tenant's public ACS URL, whatever URL
	// the request reached the gateway at.
	assertion, err := sp.ParseXMLResponse(raw, possible, *t.ACSURL)
	if err != nil {
		return nil, nil, classify(err)
	}
	s, err := p.newSession(t, assertion)
	if err != nil {
		return assertion, nil, err
	}
	return assertion, s, nil
}

// newSession builds the session from a verified assertion, refusing values
// that cannot travel safely in an HTTP header, and holds it to the
// tenant's policy (enforcePolicy).
func (p *Provider) newSession(t *Tenant, a *crewsaml.Assertion) (*Session, error) {
	if a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
		return nil, failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response does not say who you are.", errors.New("assertion has no NameID"))
	}
	attrs := attributes(a)
	if t.entraTenantID != "" {
		// The issuer check already ties the response to the directory
		// whose metadata the tenant trusts; this one holds even if an
		// operator pasted another directory's metadata.
		if got := attrs[ClaimTenantID]; len(got) != 1 || !strings.EqualFold(got[0], t.entraTenantID) {
			return nil, failure(ReasonEntraTenant, http.StatusForbidden,
				"The sign-in response came from a Microsoft Entra directory other than your organisation's. Ask your administrator to check this application's setup.",
				fmt.Errorf("tenantid claim %q, want %q", got, t.entraTenantID))
		}
	}
	now := p.clock.Now()
	// White space around the display name means nothing, and the HTTP
	// client would trim it from the header anyway: trimmed here, the
	// session, the log and the upstream agree.
	s := &Session{
		Tenant:       t.ID,
		NameID:       a.Subject.NameID.Value,
		NameIDFormat: a.Subject.NameID.Format,
		Email:        first(attrs[ClaimEmail]),
		Name:         strings.TrimSpace(first(attrs[ClaimDisplayName])),
		Groups:       attrs[ClaimGroups],
		IssuedAt:     now.Unix(),
	}
	if s.Email == "" && (s.NameIDFormat == emailNameIDFormat || validEmail(s.NameID)) {
		s.Email = s.NameID
	}
	if s.Name == "" {
		s.Name = strings.TrimSpace(strings.TrimSpace(first(attrs[ClaimGivenName])) + " " + strings.TrimSpace(first(attrs[ClaimSurname])))
	}
	expires := now.Add(p.currentSettings().sessionLifetime)
	for _, st := range a.AuthnStatements {
		if st.SessionIndex != "" && s.SessionIndex == "" {
			s.SessionIndex = st.SessionIndex
		}
		if st.SessionNotOnOrAfter != nil && st.SessionNotOnOrAfter.Before(expires) {
			expires = *st.SessionNotOnOrAfter
		}
	}
	if !expires.After(now) {
		return nil, failure(ReasonExpired, http.StatusForbidden, "Your organisation's sign-in session has already ended. Please sign in again.", fmt.Errorf("SessionNotOnOrAfter %s is past", expires))
	}
	s.Expires = expires.Unix()

	if _, ok := attrs[ClaimGroupsLink]; ok && len(s.Groups) == 0 {
		s.GroupsOverage = true
	}
	for header, claim := range t.headers {
		if vs := attrs[claim]; len(vs) > 0 {
			if s.Headers == nil {
				s.Headers = map[string][]string{}
			}
			s.Headers[header] = vs
		}
	}

	values := append([]string{s.NameID, s.Email, s.Name}, s.Groups...)
	for _, vs := range s.Headers {
		values = append(values, vs...)
	}
	for _, v := range values {
		if !headerSafe(v) {
			return nil, failure(ReasonMalformed, http.StatusBadRequest, "The sign-in response contains characters this service cannot accept.", fmt.Errorf("identity value %q contains control characters", v))
		}
	}
	if err := t.enforcePolicy(s, true); err != nil {
		return nil, err
	}
	return s, nil
}

// attributes flattens the attribute statements into name -> values.
func attributes(a *crewsaml.Assertion) map[string][]string {
	out := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			for _, v := range at.Values {
				out[at.Name] = append(out[at.Name], v.Value)
			}
		}
	}
	return out
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// headerSafe reports whether v can be sent as an HTTP header value without
// being split or rejected: no control characters at all.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// fail records and answers a failed login. raw is the response as
// readResponse accepted it, or nil.
func (p *Provider) fail(w http.ResponseWriter, r *http.Request, t *Tenant, flow string, a *crewsaml.Assertion, raw []byte, err error) {
	var le loginError
	if !errors.As(err, &le) {
		le = failure(ReasonOther, http.StatusForbidden, "The sign-in response was not accepted.", err)
	}
	p.metrics.logins.WithLabelValues(t.ID, flow, "failure", le.reason).Inc()
	p.audit(r, t, flow, "failure", le.reason, a, raw, le.page.Err)
	page.WriteLoginError(w, r, le.page, loginURL(t.ID, "", ""), switchURL)
}

func (le loginError) Error() string { return le.reason + ": " + le.page.Error() }

// audit writes the one log line every login attempt gets. Without a
// verified assertion a, it names what raw (a response readResponse
// accepted, or nil) claims.
func (p *Provider) audit(r *http.Request, t *Tenant, flow, result, reason string, a *crewsaml.Assertion, raw []byte, cause error) {
	attrs := []slog.Attr{
		slog.String("tenant", t.ID),
		slog.String("flow", flow),
		slog.String("result", result),
		slog.String("reason", reason),
		slog.String("client_ip", reqinfo.OriginOf(r).String()),
		slog.String("correlation_id", reqinfo.CorrelationID(r.Context())),
	}
	if a != nil {
		attrs = append(attrs, slog.String("assertion_id", a.ID))
		if a.Subject != nil && a.Subject.NameID != nil {
			attrs = append(attrs, slog.String("name_id", a.Subject.NameID.Value))
		}
	} else if id, nameID := claimedIdentity(raw); id != "" || nameID != "" {
		// Not verified: what the refused response claims, so that
		// support can find "why can't this user sign in".
		attrs = append(attrs, slog.String("assertion_id_unverified", id), slog.String("name_id_unverified", nameID))
	}
	level := slog.LevelInfo
	if cause != nil {
		level = slog.LevelWarn
		// crewjam's errors say only "Authentication failed"; the reason is
		// in PrivateErr, for the log only.
		attrs = append(attrs, slog.String("error", privateError(cause)))
	}
	p.log.LogAttrs(r.Context(), level, "login", attrs...)
}

// claimedIdentity reads the assertion ID and NameID a refused response
// claims, if it is readable and not encrypted, each cut to 256 bytes. raw
// must have passed checkResponse (or be nil): it then holds at most one
// assertion, so the one found here is the one crewjam looked at.
func claimedIdentity(raw []byte) (assertionID, nameID string) {
	if raw == nil {
		return "", ""
	}
	doc := etree.NewDocument()
	if doc.ReadFromBytes(raw) != nil {
		return "", ""
	}
	cut := func(s string) string {
		if len(s) > 256 {
			return s[:256]
		}
		return s
	}
	if a := doc.FindElement("//Assertion"); a != nil {
		assertionID = cut(a.SelectAttrValue("ID", ""))
		if n := a.FindElement("Subject/NameID"); n != nil {
			nameID = cut(strings.TrimSpace(n.Text()))
		}
	}
	return assertionID, nameID
}
