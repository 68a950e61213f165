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
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	crewsaml "github.com/crewjam/saml"
	crewsamlsp "github.com/crewjam/saml/samlsp"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/page"
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
	// SessionKeys encode (the first) and decode (all) cookies.
	SessionKeys []SessionKey
	// SessionLifetime is the longest a session lasts; the IdP's
	// SessionNotOnOrAfter may shorten it.
	SessionLifetime time.Duration
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
	// Metrics must not be nil.
	Metrics *Metrics
}

// Provider serves the gateway's SAML endpoints for every tenant and
// authenticates requests by their session cookie.
type Provider struct {
	cookies         cookies
	codec           *codec
	sessionLifetime time.Duration
	loginTimeout    time.Duration
	replay          crewsaml.AssertionReplayCache
	clock           clockwork.Clock
	dsigClock       *dsig.Clock
	log             *slog.Logger
	metrics         *Metrics

	// tenants is swapped as a whole on reload; requests in flight keep the
	// table they started with.
	tenants atomic.Pointer[Tenants]
}

// New returns a Provider with no tenants; call SetTenants before serving.
func New(o Options) (*Provider, error) {
	codec, err := newCodec(o.SessionKeys)
	if err != nil {
		return nil, err
	}
	if o.SessionLifetime <= 0 {
		return nil, errors.New("samlsp: session lifetime must be positive")
	}
	if o.Metrics == nil {
		return nil, errors.New("samlsp: metrics are required")
	}
	p := &Provider{
		cookies:         cookies{secure: o.Secure},
		codec:           codec,
		sessionLifetime: o.SessionLifetime,
		loginTimeout:    o.LoginTimeout,
		replay:          o.ReplayCache,
		clock:           o.Clock,
		log:             o.Logger,
		metrics:         o.Metrics,
	}
	if p.loginTimeout <= 0 {
		p.loginTimeout = DefaultLoginTimeout
	}
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

// Tenants is an immutable tenant table.
type Tenants struct {
	list     []*Tenant
	byID     map[string]*Tenant
	byLower  map[string]*Tenant
	byDomain map[string]*Tenant
	// idpOrigins are the origins of every tenant's SSO endpoint, which the
	// organisation page's form ends at.
	idpOrigins []string
}

// List returns the tenants in configuration order.
func (ts *Tenants) List() []*Tenant { return ts.list }

// Get returns the tenant with exactly this ID.
func (ts *Tenants) Get(id string) (*Tenant, bool) {
	t, ok := ts.byID[id]
	return t, ok
}

// NewTenants builds a tenant table. Every tenant's problem is reported,
// joined.
func (p *Provider) NewTenants(opts []TenantOptions) (*Tenants, error) {
	ts := &Tenants{
		byID:     map[string]*Tenant{},
		byLower:  map[string]*Tenant{},
		byDomain: map[string]*Tenant{},
	}
	var errs []error
	for _, o := range opts {
		t, err := newTenant(o, p.dsigClock, p.replay)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lower := strings.ToLower(t.ID)
		if _, dup := ts.byLower[lower]; dup {
			errs = append(errs, fmt.Errorf("samlsp: duplicate tenant %q", t.ID))
			continue
		}
		ts.list = append(ts.list, t)
		ts.byID[t.ID] = t
		ts.byLower[lower] = t
		for _, d := range t.EmailDomains {
			ts.byDomain[d] = t
		}
		if u, err := url.Parse(t.IDP.SSOURL); err == nil {
			if o := u.Scheme + "://" + u.Host; !slices.Contains(ts.idpOrigins, o) {
				ts.idpOrigins = append(ts.idpOrigins, o)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ts, nil
}

// SetTenants makes ts the tenant table used by new requests.
func (p *Provider) SetTenants(ts *Tenants) {
	for _, t := range ts.list {
		p.metrics.initTenant(t.ID)
	}
	p.tenants.Store(ts)
}

// CurrentTenants returns the tenant table in use.
func (p *Provider) CurrentTenants() *Tenants {
	return p.tenants.Load()
}

// TenantURLs returns a tenant's entity ID (Identifier), ACS URL (Reply URL)
// and SP metadata URL under publicURL. The entity ID and ACS URL are the
// same URL, as the Entra set-up instructions say.
func TenantURLs(publicURL *url.URL, id string) (entityID string, acs, metadata *url.URL) {
	// Built by hand: url.JoinPath on an empty base path drops the leading
	// slash, which String hides but a cookie Path attribute does not.
	acs = &url.URL{Scheme: publicURL.Scheme, Host: publicURL.Host, Path: LoginPath + id}
	metadata = &url.URL{Scheme: publicURL.Scheme, Host: publicURL.Host, Path: MetadataPath + id}
	return acs.String(), acs, metadata
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
	case strings.HasPrefix(path, LoginPath):
		t, ok := p.tenants.Load().Get(strings.TrimPrefix(path, LoginPath))
		if !ok {
			page.Write(w, r, page.Errorf(http.StatusNotFound, "There is no organisation with this Customer ID.", nil))
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
	case strings.HasPrefix(path, MetadataPath):
		t, ok := p.tenants.Load().Get(strings.TrimPrefix(path, MetadataPath))
		if !ok {
			page.Write(w, r, page.Errorf(http.StatusNotFound, "There is no organisation with this Customer ID.", nil))
			return
		}
		p.serveMetadata(w, r, t)
	default:
		page.Write(w, r, page.Errorf(http.StatusNotFound, "", nil))
	}
}
