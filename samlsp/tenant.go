package samlsp

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// URL paths the gateway serves itself. Everything else is the upstream's.
const (
	PathPrefix   = "/auth/api/v1/saml/"
	LoginPath    = PathPrefix + "login/"    // + Customer_ID: GET starts login, POST is the ACS
	MetadataPath = PathPrefix + "metadata/" // + Customer_ID: SP metadata
	LogoutPath   = PathPrefix + "logout"
	SelectPath   = PathPrefix + "select" // which organisation are you from?
)

// TenantOptions describe one tenant's service provider.
type TenantOptions struct {
	ID string
	// EntityID is the Identifier (Entity ID) and Audience; ACSURL is the
	// Reply URL. The gateway uses {public_url}/auth/api/v1/saml/login/{ID}
	// for both; tests of foreign responses set others.
	EntityID string
	ACSURL   *url.URL
	// MetadataURL is where the SP metadata is served.
	MetadataURL *url.URL

	IDP *IDPMetadata

	SPKey  *rsa.PrivateKey
	SPCert *x509.Certificate

	NameIDFormat      string
	AllowIDPInitiated bool
	AllowSHA1         bool
	AllowedGroups     []string
	EmailDomains      []string
	DefaultRelayState string
}

// Tenant is one customer's service provider. It is immutable once built.
type Tenant struct {
	ID                string
	EntityID          string
	ACSURL            *url.URL
	IDP               *IDPMetadata
	AllowIDPInitiated bool
	DefaultRelayState string
	EmailDomains      []string

	sp            *crewsaml.ServiceProvider
	allowedGroups map[string]bool
	acsPath       string
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
	if o.IDP == nil {
		return nil, fmt.Errorf("samlsp: tenant %q: no IdP metadata", o.ID)
	}
	t := &Tenant{
		ID:                o.ID,
		EntityID:          o.EntityID,
		ACSURL:            o.ACSURL,
		IDP:               o.IDP,
		AllowIDPInitiated: o.AllowIDPInitiated,
		DefaultRelayState: o.DefaultRelayState,
		EmailDomains:      slices.Clone(o.EmailDomains),
		acsPath:           o.ACSURL.EscapedPath(),
	}
	if t.DefaultRelayState == "" {
		t.DefaultRelayState = "/"
	}
	if len(o.AllowedGroups) > 0 {
		t.allowedGroups = map[string]bool{}
		for _, g := range o.AllowedGroups {
			t.allowedGroups[g] = true
		}
	}
	t.sp = &crewsaml.ServiceProvider{
		EntityID:    o.EntityID,
		Key:         o.SPKey,
		Certificate: o.SPCert,
		AcsURL:      *o.ACSURL,
		MetadataURL: *o.MetadataURL,
		IDPMetadata: o.IDP.Entity,

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

		RejectSHA1Signatures:        !o.AllowSHA1,
		RequireSignedResponseForCBC: true,
		RejectUnknownConditions:     true,
		RequireStandardArtifacts:    true,
		ReplayCache:                 tenantReplayCache{prefix: o.ID + " ", cache: replay},
		HTTPClient:                  noNetwork,
		Clock:                       clock,
	}
	return t, nil
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
	return c.cache.Consume(c.prefix+id, expiresAt)
}

// Metadata returns the SP metadata to give to the IdP.
func (t *Tenant) Metadata() *crewsaml.EntityDescriptor {
	return t.sp.Metadata()
}

// groupAllowed reports whether a user holding groups may sign in.
func (t *Tenant) groupAllowed(groups []string) bool {
	if t.allowedGroups == nil {
		return true
	}
	for _, g := range groups {
		if t.allowedGroups[g] {
			return true
		}
	}
	return false
}
