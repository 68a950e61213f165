package samlsp

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

// URL paths the gateway serves itself. Everything else is the upstream's.
const (
	PathPrefix   = "/auth/api/v1/saml/"
	LoginPath    = PathPrefix + "login/"    // + Customer_ID: GET starts login, POST is the ACS
	MetadataPath = PathPrefix + "metadata/" // + Customer_ID: SP metadata
	SLOPath      = PathPrefix + "slo/"      // + Customer_ID: single logout
	LogoutPath   = PathPrefix + "logout"
	SelectPath   = PathPrefix + "select" // which organisation are you from?
	// SigninPath starts a login that returns to its rd (an absolute URL
	// on this host, as ingress-nginx's auth-signin appends it) or its
	// return_to: the host's or the remembered tenant's login, else the
	// organisation page, as for a navigation without a session.
	SigninPath = PathPrefix + "signin"
	// VerifyPath is the forward-auth endpoint an ingress asks "who is
	// this?" (proxy.Proxy.ServeVerify). Under VerifyPath+"/" the rest of
	// the path is the original request's (Envoy's ext_authz path_prefix).
	VerifyPath = PathPrefix + "verify"
)

// URLs are a tenant's service provider URLs.
type URLs struct {
	// EntityID is the Identifier (Entity ID) and Audience; ACS is the
	// Reply URL. The gateway uses {public_url}/auth/api/v1/saml/login/{ID}
	// for both, as the Entra set-up instructions say; tests of foreign
	// responses set others.
	EntityID string
	ACS      *url.URL
	SLO      *url.URL
	Metadata *url.URL
}

// TenantURLs returns a tenant's URLs under publicURL.
func TenantURLs(publicURL *url.URL, id string) URLs {
	// Built by hand: url.JoinPath on an empty base path drops the leading
	// slash, which String hides but a cookie Path attribute does not.
	at := func(path string) *url.URL {
		return &url.URL{Scheme: publicURL.Scheme, Host: publicURL.Host, Path: path + id}
	}
	acs := at(LoginPath)
	return URLs{EntityID: acs.String(), ACS: acs, SLO: at(SLOPath), Metadata: at(MetadataPath)}
}

// TenantOptions describe one tenant's service provider.
type TenantOptions struct {
	ID   string
	URLs URLs

	// IDP is the tenant's IdP metadata, or nil when it is still being
	// fetched: the tenant is then not ready until SetIDP.
	IDP *metadata.IDP

	SPKey  *rsa.PrivateKey
	SPCert *x509.Certificate
	// SPPreviousKeys also decrypt assertions, while the IdP still encrypts
	// to the certificate being replaced.
	SPPreviousKeys []*rsa.PrivateKey

	NameIDFormat      string
	AllowIDPInitiated bool
	AllowSHA1         bool
	AllowedGroups     []string
	EmailDomains      []string
	// Hosts belong to this tenant alone (see config.Tenant.Hosts).
	Hosts             []string
	DefaultRelayState string
	// SessionAttributes are the standard identity attributes the session
	// keeps: any of "email", "name" and "groups". Nil keeps all three.
	SessionAttributes []string
	// Headers are the tenant's own identity headers: header name (which
	// must start with X-Remote-) to claim name.
	Headers map[string]string
	// EntraTenantID, if not empty, is the Entra directory ID that every
	// assertion's tenantid claim must carry.
	EntraTenantID string
}

// Session attribute names for TenantOptions.SessionAttributes.
const (
	AttributeEmail  = "email"
	AttributeName   = "name"
	AttributeGroups = "groups"
)

// Tenant is one customer's service provider. Its configuration is
// immutable; its IdP metadata is replaced as a whole when a refresh brings
// a new document.
type Tenant struct {
	ID                string
	EntityID          string
	ACSURL            *url.URL
	SLOURL            *url.URL
	AllowIDPInitiated bool
	DefaultRelayState string
	EmailDomains      []string
	Hosts             []string

	// base is the ServiceProvider without IdP metadata: it serves the SP
	// metadata, and each state copies it.
	base          crewsaml.ServiceProvider
	allowedGroups map[string]bool
	headers       map[string]string // header name -> claim
	entraTenantID string            // lower case; "" to not check
	keep          struct{ email, name, groups bool }
	acsPath       string
	table         *Tenants // notified when the IdP's sign-on origin changes

	state atomic.Pointer[tenantState]
}

// tenantState is a tenant's IdP metadata and the ServiceProvider that
// trusts it.
type tenantState struct {
	idp *metadata.IDP
	sp  *crewsaml.ServiceProvider
}

// OwnPath reports whether r is for one of the gateway's SAML endpoints. It
// matches the decoded and the escaped path, so that
// "/auth/api/v1/%73aml/..." cannot slip past to the upstream as something
// the gateway would have answered. Without a RawPath the escaped path is
// the decoded one with some bytes escaped, and PathPrefix has none that
// are: it starts the one exactly when it starts the other, and is not
// built (which allocates) on every request.
func OwnPath(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, PathPrefix) ||
		r.URL.RawPath != "" && strings.HasPrefix(r.URL.EscapedPath(), PathPrefix)
}

// IsVerifyPath reports whether r is for the forward-auth endpoint:
// VerifyPath itself, or a path under VerifyPath+"/". It matches the escaped
// path, as ServeHTTP routes, so "/auth/api/v1/saml/%76erify" is not it.
func IsVerifyPath(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, VerifyPath) {
		// VerifyPath has no '%': an escaped path that starts with it
		// decodes to one that does. The check spares EscapedPath, which
		// may allocate, on every proxied request.
		return false
	}
	path := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(path, VerifyPath)
	return ok && (rest == "" || rest[0] == '/')
}

// noNetwork is the HTTP client of every crewjam ServiceProvider: the
// gateway never resolves artifacts, queries attributes or does SOAP logout,
// and an attacker must not be able to make it open connections.
var noNetwork = &http.Client{Transport: refuseTransport{}}

type refuseTransport struct{}

func (refuseTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("samlsp: outbound SAML connections are disabled")
}

func newTenant(o TenantOptions, clock *dsig.Clock, replay crewsaml.AssertionReplayCache) (*Tenant, error) {
	if o.URLs.ACS == nil || o.URLs.Metadata == nil {
		return nil, fmt.Errorf("samlsp: tenant %q: no ACS or metadata URL", o.ID)
	}
	t := &Tenant{
		ID:                o.ID,
		EntityID:          o.URLs.EntityID,
		ACSURL:            o.URLs.ACS,
		SLOURL:            o.URLs.SLO,
		AllowIDPInitiated: o.AllowIDPInitiated,
		DefaultRelayState: o.DefaultRelayState,
		EmailDomains:      slices.Clone(o.EmailDomains),
		Hosts:             slices.Clone(o.Hosts),
		acsPath:           o.URLs.ACS.EscapedPath(),
		entraTenantID:     strings.ToLower(o.EntraTenantID),
	}
	if t.DefaultRelayState == "" {
		t.DefaultRelayState = "/"
	}
	t.headers = maps.Clone(o.Headers)
	if o.SessionAttributes == nil {
		t.keep.email, t.keep.name, t.keep.groups = true, true, true
	}
	for _, a := range o.SessionAttributes {
		switch a {
		case AttributeEmail:
			t.keep.email = true
		case AttributeName:
			t.keep.name = true
		case AttributeGroups:
			t.keep.groups = true
		default:
			return nil, fmt.Errorf("samlsp: tenant %q: unknown session attribute %q", o.ID, a)
		}
	}
	if len(o.AllowedGroups) > 0 {
		t.allowedGroups = map[string]bool{}
		for _, g := range o.AllowedGroups {
			t.allowedGroups[g] = true
		}
	}
	t.base = crewsaml.ServiceProvider{
		EntityID:       o.URLs.EntityID,
		Key:            o.SPKey,
		Certificate:    o.SPCert,
		DecryptionKeys: o.SPPreviousKeys,
		AcsURL:         *o.URLs.ACS,
		MetadataURL:    *o.URLs.Metadata,

		AuthnNameIDFormat: crewsaml.NameIDFormat(o.NameIDFormat),
		// Only HTTP-POST: crewjam would also advertise HTTP-Artifact, which
		// the gateway never resolves.
		AssertionConsumerServiceBindings: []string{crewsaml.HTTPPostBinding},

		// AllowIDPInitiated lets an assertion without InResponseTo through
		// crewjam's own check; the ValidateRequestID hook then decides, per
		// tenant, both unsolicited responses and InResponseTo matching, so
		// SP-initiated responses are still checked against the tracked
		// request when IdP-initiated login is allowed.
		AllowIDPInitiated: true,
		ValidateRequestID: requestIDValidator(o.AllowIDPInitiated),

		RejectSHA1Signatures: !o.AllowSHA1,
		// AES-CBC is not authenticated: decrypt it only inside a Response
		// whose signature has already been checked (padding oracles).
		RequireSignedResponseForCBC: true,
		RejectUnknownConditions:     true,
		RejectExpiredIDPMetadata:    true,
		RequireStandardArtifacts:    true,
		ReplayCache:                 tenantReplayCache{prefix: o.ID + " ", cache: replay},
		HTTPClient:                  noNetwork,
		Clock:                       clock,
	}
	if o.URLs.SLO != nil {
		t.base.SloURL = *o.URLs.SLO
		t.base.LogoutBindings = []string{crewsaml.HTTPRedirectBinding}
		// The single logout profile requires signed logout messages; an IdP
		// without a verification certificate for the SP ignores the
		// signature, as Entra does unless told otherwise.
		t.base.LogoutSignatureMethod = dsig.RSASHA256SignatureMethod
	}
	if o.IDP != nil {
		t.SetIDP(o.IDP)
	}
	return t, nil
}

// SetIDP makes md the tenant's IdP metadata, for every request that starts
// from now on.
func (t *Tenant) SetIDP(md *metadata.IDP) {
	sp := t.base
	sp.IDPMetadata = md.Entity
	old := t.state.Swap(&tenantState{idp: md, sp: &sp})
	if t.table != nil && (old == nil || origin(old.idp.SSOURL) != origin(md.SSOURL)) {
		t.table.originsChanged()
	}
}

// current returns the tenant's IdP metadata and ServiceProvider, or nil
// while it has no usable metadata.
func (t *Tenant) current() *tenantState {
	return t.state.Load()
}

// Ready reports whether the tenant has usable IdP metadata.
func (t *Tenant) Ready() bool { return t.state.Load() != nil }

// IDP returns the tenant's IdP metadata, or nil.
func (t *Tenant) IDP() *metadata.IDP {
	if st := t.state.Load(); st != nil {
		return st.idp
	}
	return nil
}

// requestIDValidator decides whether a response's InResponseTo is
// acceptable: empty (unsolicited) only if the tenant allows IdP-initiated
// login, otherwise it must name a request tracked in this browser.
func requestIDValidator(allowIDPInitiated bool) func(crewsaml.Response, []string) error {
	return func(resp crewsaml.Response, possible []string) error {
		if resp.InResponseTo == "" {
			if !allowIDPInitiated {
				return errIDPInitiatedDisabled
			}
			return nil
		}
		for _, id := range possible {
			if id != "" && id == resp.InResponseTo {
				return nil
			}
		}
		return fmt.Errorf("%w (InResponseTo %q)", errUntracked, resp.InResponseTo)
	}
}

// tenantReplayCache keeps each tenant's assertion IDs apart in a cache
// shared by all tenants.
type tenantReplayCache struct {
	prefix string
	cache  crewsaml.AssertionReplayCache
}

func (c tenantReplayCache) Consume(id string, expiresAt time.Time) error {
	err := c.cache.Consume(c.prefix+id, expiresAt)
	if err != nil && !errors.Is(err, crewsaml.ErrAssertionReplayed) {
		// The store could not say: the assertion is refused (fail
		// closed), and the user is told to retry rather than that the
		// response was used before.
		return fmt.Errorf("%w: %w", errReplayStore, err)
	}
	return err
}

// Metadata returns the SP metadata to give to the IdP.
func (t *Tenant) Metadata() *crewsaml.EntityDescriptor {
	return t.base.Metadata()
}

// Tenants is a tenant table. Which tenants exist, and their settings, never
// change; a new configuration makes a new table.
type Tenants struct {
	list     []*Tenant
	byID     map[string]*Tenant
	byLower  map[string]*Tenant
	byDomain map[string]*Tenant
	byHost   map[string]*Tenant

	// origins caches the origins of the tenants' sign-on endpoints, which
	// the organisation page's form may end at. Metadata refreshes mark it
	// stale; the next page recomputes it once.
	originsStale atomic.Bool
	origins      atomic.Pointer[[]string]
}

func (ts *Tenants) originsChanged() { ts.originsStale.Store(true) }

// idpOrigins returns the distinct origins of every ready tenant's
// sign-on endpoint.
func (ts *Tenants) idpOrigins() []string {
	if o := ts.origins.Load(); o != nil && !ts.originsStale.Load() {
		return *o
	}
	ts.originsStale.Store(false)
	var out []string
	for _, t := range ts.list {
		if md := t.IDP(); md != nil {
			if o := origin(md.SSOURL); o != "" && !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	ts.origins.Store(&out)
	return out
}

// origin is scheme://host[:port] of a URL, or "".
func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return ""
	}
	return p.Scheme + "://" + p.Host
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
		byHost:   map[string]*Tenant{},
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
		t.table = ts
		ts.list = append(ts.list, t)
		ts.byID[t.ID] = t
		ts.byLower[lower] = t
		for _, d := range t.EmailDomains {
			ts.byDomain[d] = t
		}
		for _, h := range t.Hosts {
			ts.byHost[h] = t
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ts, nil
}

// ForHost returns the tenant a request's Host belongs to, if any.
func (ts *Tenants) ForHost(r *http.Request) (*Tenant, bool) {
	if len(ts.byHost) == 0 {
		return nil, false
	}
	t, ok := ts.byHost[requestHost(r)]
	return t, ok
}

// servesHost reports whether t's sessions are valid on r's host: a host
// that belongs to a tenant accepts only that tenant's sessions, a tenant
// with hosts of its own is valid only there, and one without only on
// publicHost (any host when publicHost is ""). The gateway sends nothing
// for another host this far; this holds even if it did.
func (ts *Tenants) servesHost(t *Tenant, r *http.Request, publicHost string) bool {
	if owner, ok := ts.ForHost(r); ok {
		return owner == t
	}
	return len(t.Hosts) == 0 && (publicHost == "" || requestHost(r) == publicHost)
}

// requestHost is r's host name in lower case, without port or final dot.
func requestHost(r *http.Request) string { return HostName(r.Host) }

// HostName is the host name of a Host header value (host[:port]) in lower
// case, without port, IPv6 brackets or final dot: the form hosts are
// compared in.
func HostName(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// SetTenants makes ts the tenant table used by new requests. Tenants that
// are gone lose their metric series.
func (p *Provider) SetTenants(ts *Tenants) {
	for _, t := range ts.list {
		p.metrics.initTenant(t.ID)
	}
	old := p.tenants.Swap(ts)
	for _, t := range old.list {
		if _, ok := ts.byID[t.ID]; !ok {
			p.metrics.forgetTenant(t.ID)
		}
	}
}

// CurrentTenants returns the tenant table in use.
func (p *Provider) CurrentTenants() *Tenants {
	return p.tenants.Load()
}
