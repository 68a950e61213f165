// Package samlsp is the gateway's multi-tenant SAML service provider: for
// every tenant (Customer_ID) it starts SP-initiated logins, consumes SAML
// responses at the ACS, serves SP metadata, and keeps the signed-in user in
// an encrypted, authenticated session cookie.
//
// All XML parsing, signature verification and decryption is done by
// github.com/crewjam/saml (imported as crewsaml), configured strictly; this
// package only chooses what to trust (each tenant's own IdP metadata), ties
// responses to the requests this browser made, and decides what a verified
// assertion is allowed to do.
package samlsp

import (
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	crewsaml "github.com/crewjam/saml"
	crewsamlsp "github.com/crewjam/saml/samlsp"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/internal/page"
)

// DefaultLoginTimeout is how long a user has at the IdP to finish signing
// in: long enough for MFA and a password reset, short enough that an old
// tracking cookie is not worth stealing.
const DefaultLoginTimeout = 15 * time.Minute

// maxReplayEntries bounds the in-memory replay cache. An entry lives for
// at most a few minutes (crewjam's MaxIssueDelay plus MaxClockSkew), so this
// is far above any realistic login rate.
const maxReplayEntries = 200_000

// Options configure a Provider.
type Options struct {
	// Secure marks every cookie Secure and uses the __Host- and __Secure-
	// cookie prefixes. Set it when browsers reach the gateway over https.
	Secure bool
	// PublicHost is public_url's host name, lower case: the only host
	// where the sessions of tenants without hosts of their own are valid.
	// Empty accepts them on any host.
	PublicHost string
	// SessionKeys encode (the first) and decode (all) cookies.
	SessionKeys []SessionKey
	// SessionLifetime is the longest a session lasts; the IdP's
	// SessionNotOnOrAfter may shorten it.
	SessionLifetime time.Duration
	// SessionCacheEntries and SessionCacheBytes bound the cache of decoded
	// session cookies (sessioncache.go); zero means
	// DefaultSessionCacheEntries and DefaultSessionCacheBytes, and a
	// negative value turns the cache off.
	SessionCacheEntries int
	SessionCacheBytes   int64
	// SignedIdentity says that a signed copy of each session's identity
	// (the identity JWT) is kept with its decoded session, so that the
	// cache counts its bytes against SessionCacheBytes.
	SignedIdentity bool
	// LoginTimeout is how long a tracked AuthnRequest stays answerable;
	// zero means DefaultLoginTimeout.
	LoginTimeout time.Duration
	// ReplayCache records consumed assertion IDs; nil means an in-memory
	// cache, which protects a single replica only.
	ReplayCache crewsaml.AssertionReplayCache
	// Clock is the time source; nil means the real clock.
	Clock clockwork.Clock
	// Logger receives the audit and error log; nil discards.
	Logger *slog.Logger
	// DebugAssertionTenant, if set, names the tenant whose SAML responses
	// are logged, redacted, for debugging.
	DebugAssertionTenant string
	// Metrics must not be nil.
	Metrics *Metrics
	// TenantProblem, if set, says why a tenant has no IdP metadata, for
	// the log, and whether it is transient: its metadata URL has not
	// answered yet, and it may by itself. Its users are then asked to try
	// again later; otherwise (and when TenantProblem is nil) the page says
	// that their organisation's administrator must act. It is set once, by
	// New; Reconfigure ignores it.
	TenantProblem func(tenant string) (problem string, transient bool)
}

// Provider serves the gateway's SAML endpoints for every tenant and
// authenticates requests by their session cookie.
type Provider struct {
	// settings holds what a configuration reload may change about
	// sessions; it is swapped as a whole.
	settings atomic.Pointer[settings]

	replay    crewsaml.AssertionReplayCache
	clock     clockwork.Clock
	dsigClock *dsig.Clock
	log       *slog.Logger
	metrics   *Metrics
	problem   func(tenant string) (string, bool)

	// tenants is swapped as a whole on reload; requests in flight keep the
	// table they started with.
	tenants atomic.Pointer[Tenants]
}

// settings are the session settings in force.
type settings struct {
	cookies cookies
	codec   *codec
	// keys are what codec was made from, and cacheEntries and cacheBytes
	// cache's bounds: Reconfigure keeps the cache while they and cookies
	// stay the same.
	keys            []SessionKey
	cacheEntries    int
	cacheBytes      int64
	signedIdentity  bool
	cache           *sessionCache // nil: none
	sessionLifetime time.Duration
	loginTimeout    time.Duration
	debugTenant     string
	publicHost      string
}

func newSettings(o Options) (*settings, error) {
	codec, err := newCodec(o.SessionKeys)
	if err != nil {
		return nil, err
	}
	if o.SessionLifetime <= 0 {
		return nil, errors.New("samlsp: session lifetime must be positive")
	}
	s := &settings{cookies: cookies{secure: o.Secure}, codec: codec, sessionLifetime: o.SessionLifetime, loginTimeout: o.LoginTimeout, debugTenant: o.DebugAssertionTenant, publicHost: o.PublicHost,
		keys: cloneKeys(o.SessionKeys), cacheEntries: o.SessionCacheEntries, cacheBytes: o.SessionCacheBytes, signedIdentity: o.SignedIdentity}
	if s.loginTimeout <= 0 {
		s.loginTimeout = DefaultLoginTimeout
	}
	return s, nil
}

// New returns a Provider with no tenants; call SetTenants before serving.
func New(o Options) (*Provider, error) {
	st, err := newSettings(o)
	if err != nil {
		return nil, err
	}
	if o.Metrics == nil {
		return nil, errors.New("samlsp: metrics are required")
	}
	p := &Provider{
		replay:  o.ReplayCache,
		clock:   o.Clock,
		log:     o.Logger,
		metrics: o.Metrics,
		problem: o.TenantProblem,
	}
	st.cache = newSessionCache(st.cacheEntries, st.cacheBytes, st.signedIdentity, p.metrics)
	p.settings.Store(st)
	p.metrics.cache.Store(st.cache)
	if p.clock == nil {
		p.clock = clockwork.NewRealClock()
	}
	p.dsigClock = dsig.NewFakeClock(p.clock)
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.replay == nil {
		mem := crewsamlsp.NewMemoryReplayCache(maxReplayEntries)
		mem.Clock = p.dsigClock
		p.replay = mem
	}
	p.tenants.Store(&Tenants{byID: map[string]*Tenant{}})
	return p, nil
}

// Reconfigure applies the session settings of o (Secure, SessionKeys,
// SessionLifetime, SessionCache*, LoginTimeout, DebugAssertionTenant) to
// requests that start from now on. A session or login cookie made before
// still decodes if its key is still listed. The decoded sessions cached so
// far are kept only if the keys, Secure and the cache's bounds are the
// same: with other keys every cookie is decoded again, so that one of a
// retired key is refused.
func (p *Provider) Reconfigure(o Options) error {
	st, err := newSettings(o)
	if err != nil {
		return err
	}
	// Reloads are serialised by the caller; this load and the store below
	// need not be atomic together.
	old := p.currentSettings()
	if old.sameCache(st) {
		st.cache = old.cache
	} else {
		st.cache = newSessionCache(st.cacheEntries, st.cacheBytes, st.signedIdentity, p.metrics)
	}
	p.settings.Store(st)
	p.metrics.cache.Store(st.cache)
	return nil
}

// sameCache reports whether s's session cache may serve under n: the same
// keys, in any order (every listed key decodes), the same cookie names,
// the same bounds and the same way of counting entries.
func (s *settings) sameCache(n *settings) bool {
	if s.cookies != n.cookies || s.cacheEntries != n.cacheEntries || s.cacheBytes != n.cacheBytes || s.signedIdentity != n.signedIdentity || len(s.keys) != len(n.keys) {
		return false
	}
	for _, k := range s.keys {
		if !slices.ContainsFunc(n.keys, k.equal) {
			return false
		}
	}
	for _, k := range n.keys {
		if !slices.ContainsFunc(s.keys, k.equal) {
			return false
		}
	}
	return true
}

// currentSettings returns the settings in force.
func (p *Provider) currentSettings() *settings { return p.settings.Load() }

// unknownOrganisation answers a Customer ID that is not configured (a typo
// in a bookmark, a tenant since removed), with a way to find the right one.
func unknownOrganisation(w http.ResponseWriter, r *http.Request) {
	e := page.Errorf(http.StatusNotFound, "There is no organisation with this Customer ID.", nil)
	e.Select = SelectPath
	page.Write(w, r, e)
}

// ServeHTTP serves everything under PathPrefix. Paths are matched on their
// escaped form, so that look-alikes (percent-encoded, other case, trailing
// slash, ";x") are 404 before anything else happens.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case path == LogoutPath:
		p.serveLogout(w, r)
	case path == SelectPath:
		p.serveSelect(w, r)
	case path == SigninPath:
		p.serveSignin(w, r)
	case path == HandoffPath:
		p.serveHandoff(w, r)
	case strings.HasPrefix(path, LoginPath):
		t, ok := p.tenants.Load().Get(strings.TrimPrefix(path, LoginPath))
		if !ok {
			unknownOrganisation(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			p.serveLogin(w, r, t)
		case http.MethodPost:
			p.serveACS(w, r, t)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "", nil))
		}
	case strings.HasPrefix(path, SLOPath):
		t, ok := p.tenants.Load().Get(strings.TrimPrefix(path, SLOPath))
		if !ok || t.SLOURL == nil {
			unknownOrganisation(w, r)
			return
		}
		p.serveSLO(w, r, t)
	case strings.HasPrefix(path, MetadataPath):
		t, ok := p.tenants.Load().Get(strings.TrimPrefix(path, MetadataPath))
		if !ok {
			unknownOrganisation(w, r)
			return
		}
		p.serveMetadata(w, r, t)
	default:
		page.Write(w, r, page.Errorf(http.StatusNotFound, "", nil))
	}
}
