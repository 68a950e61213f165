// Package config decodes, defaults and validates the gateway's one YAML
// configuration file.
//
// Loading has no side effects beyond reading the files the configuration
// names (keys, certificates, metadata files). Every problem found is
// reported, each prefixed with its key path (for example
// "tenants[2].idp_metadata_url: ..."), so that an operator can fix a broken
// file in one pass. Durations, URLs and keys are parsed once, here, into
// typed fields; nothing downstream parses strings again.
package config

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/netip"
	"net/url"
	"time"
)

// Defaults applied when the file leaves a key out.
const (
	DefaultAdminListen     = "127.0.0.1:9090"
	DefaultUpstreamTimeout = 60 * time.Second
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultShutdownDelay is how long a stopping gateway stays up, not
	// ready, before it stops accepting: long enough for a load balancer
	// or Kubernetes to take it out of rotation.
	DefaultShutdownDelay     = 5 * time.Second
	DefaultSessionLifetime   = 8 * time.Hour
	DefaultDefaultRelayState = "/"
	// DefaultNameIDFormat is what the AuthnRequest asks for. Entra honours a
	// transient request with a new random value at every sign-in, which
	// would change X-Remote-User each time; emailAddress gives the UPN.
	DefaultNameIDFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	// DefaultMetadataRefresh is how often idp_metadata_url is fetched.
	DefaultMetadataRefresh = time.Hour
	// MinMetadataRefresh keeps a typo like "1s" from hammering Entra.
	MinMetadataRefresh = time.Minute
	// DefaultLoginConcurrencyPerClient bounds the requests to the SAML
	// endpoints one client may have in the gateway's hands at once, in
	// each pool (see Limits). A whole office behind one NAT address
	// signing in at nine o'clock stays far below it: each takes
	// milliseconds once its body has arrived.
	DefaultLoginConcurrencyPerClient = 16
	// DefaultLoginConcurrency bounds them for all clients together, in
	// each pool, so that a flood of sign-in work cannot take every CPU.
	DefaultLoginConcurrency = 512
	// DefaultIPv6ClientPrefix is the IPv6 prefix length that counts as one
	// client for the limits: a host usually has a whole /64 to itself.
	DefaultIPv6ClientPrefix = 64
	// MinIPv6ClientPrefix and MaxIPv6ClientPrefix bound ipv6_client_prefix:
	// shorter than a /32 would lump whole providers together, and 128 is
	// one address.
	MinIPv6ClientPrefix = 32
	MaxIPv6ClientPrefix = 128
)

// Config is a validated gateway configuration. The zero value is not useful;
// obtain one from Load or Parse.
type Config struct {
	// Path is the file the configuration was read from, or "" when it was
	// parsed from memory.
	Path string

	// PublicURL is the origin browsers use (scheme and host, no path). Every
	// entity ID and ACS URL derives from it.
	PublicURL *url.URL
	// Listen is the public listener's address.
	Listen string
	// TLS, if non-nil, makes the public listener serve HTTPS.
	TLS *tls.Certificate
	// AdminListen serves /metrics, /healthz and /readyz; never public.
	AdminListen string
	// Upstream is the backend every authenticated request is forwarded to.
	Upstream *url.URL
	// UpstreamHost, if not empty, is the Host header sent upstream; empty
	// keeps the Host the client used.
	UpstreamHost string
	// UpstreamTimeout bounds the wait for the upstream's response headers.
	// Bodies are not bounded: downloads may take as long as they take.
	UpstreamTimeout time.Duration
	// ShutdownTimeout is how long in-flight requests may drain at shutdown.
	ShutdownTimeout time.Duration
	// ShutdownDelay is how long the gateway keeps accepting requests,
	// reporting not ready, after it is told to stop.
	ShutdownDelay time.Duration
	// TrustedProxies are the load balancers whose X-Forwarded-For the
	// gateway believes. With none, the client is the TCP peer.
	TrustedProxies []netip.Prefix
	// AllowInsecureHTTP permits an http public_url on a host other than
	// loopback, where cookies cross the network in clear.
	AllowInsecureHTTP bool
	Limits            Limits
	ReplayCache       ReplayCache

	SP      SP
	Session Session
	// IdentityJWT, if not nil, signs the identity the upstream receives as
	// a JWT (X-Remote-Jwt-Assertion); nil leaves it out.
	IdentityJWT *IdentityJWT
	Tenants     []Tenant
	Log         Log
	// GC is read at start; a reload does not change it.
	GC GC

	// Files are every file the configuration names (keys, certificates,
	// metadata, secrets), as absolute paths: a change to one of them is a
	// change of configuration.
	Files []string

	// Warnings are things worth an operator's attention that do not stop
	// the configuration from working, such as a public_url that was
	// normalised. They have the same form as problems.
	Warnings []*Problem
}

// Limits bound what one client, and all clients, may hold of the
// gateway's SAML endpoints at once. The gateway applies them to each of
// its pools (sign-in responses, single logout, the cheap pages) separately.
type Limits struct {
	LoginConcurrencyPerClient int
	LoginConcurrency          int
	// IPv6ClientPrefix is the length of the IPv6 prefix counted as one
	// client (MinIPv6ClientPrefix to MaxIPv6ClientPrefix). IPv4 clients,
	// IPv4-mapped ones included, count by address.
	IPv6ClientPrefix int
}

// ReplayCache says where consumed assertion IDs are recorded.
type ReplayCache struct {
	// RedisURL (redis:// or rediss://), if not empty, shares the record
	// between replicas. Empty keeps it in memory, which protects only one
	// replica. It may hold a password: never log it.
	RedisURL string
}

// SP is the service provider's key pair. The certificate is published in
// the SP metadata; the key decrypts encrypted assertions.
type SP struct {
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
	// PreviousKey, if not nil, also decrypts assertions during an SP key
	// rollover, while IdPs still encrypt to PreviousCertificate.
	PreviousCertificate *x509.Certificate
	PreviousKey         *rsa.PrivateKey
}

// Session configures the session cookies.
type Session struct {
	Lifetime time.Duration
	// Keys are the cookie keys. The first one encodes; every one decodes,
	// so that a new key can be rolled in without logging anyone out.
	Keys []SessionKey
	// CacheEntries and CacheMiB bound the cache of decoded session
	// cookies; CacheEntries 0 turns it off.
	CacheEntries int
	CacheMiB     int
}

// Defaults of the session cache, the same as samlsp's
// (DefaultSessionCacheEntries, DefaultSessionCacheBytes): see there.
const (
	DefaultSessionCacheEntries = 10_000
	DefaultSessionCacheMiB     = 128
)

// SessionKey is one gorilla/securecookie key pair.
type SessionKey struct {
	Hash  []byte // HMAC key: 32 or 64 bytes
	Block []byte // AES key: 16, 24 or 32 bytes
}

// Tenant is one customer (Customer_ID) and its Entra ID directory.
type Tenant struct {
	// ID is the Customer_ID, used in every per-tenant URL.
	ID string
	// EntraTenantID, if not empty, is the directory (tenant) ID, a lower
	// case GUID, that every assertion's tenantid claim must name.
	EntraTenantID string
	// Exactly one of MetadataFile (an absolute path) and MetadataURL is set.
	// The file is not read here: a missing or broken file is a tenant
	// problem, found when the gateway loads it.
	MetadataFile string
	MetadataURL  *url.URL
	// MetadataRefresh is how often MetadataURL is fetched again.
	MetadataRefresh time.Duration
	// MetadataSigners, if not empty, are the certificates one of which
	// must have signed the metadata document.
	MetadataSigners []*x509.Certificate
	// Hosts are host names (lower case, no port) that belong to this
	// tenant alone: a request to one signs in with this tenant directly,
	// and only this tenant's sessions are valid there. Logins that start
	// on one complete there. The first is the tenant's Sign on URL.
	Hosts []string
	// SAMLURLsOnHost moves the tenant's Identifier (entity ID), Reply URL
	// and Logout URL from public_url to its first host. False (the
	// default) keeps them on public_url whatever the hosts, so that adding
	// hosts never changes what the Entra application is configured with.
	// Only set with Hosts.
	SAMLURLsOnHost bool
	// EmailDomains map a work email to this tenant on the sign-in page;
	// lower case.
	EmailDomains []string
	// AllowedGroups, if not empty, is the set of group claims of which a
	// user must hold at least one.
	AllowedGroups []string
	// AllowIDPInitiated accepts unsolicited responses (My Apps tiles,
	// "Test this application").
	AllowIDPInitiated bool
	// DefaultRelayState is where a user lands when no valid return path
	// came with the login.
	DefaultRelayState string
	// NameIDFormat is the NameIDPolicy Format of the AuthnRequest.
	NameIDFormat string
	// AllowSHA1 accepts SHA-1 signatures from this tenant's IdP.
	AllowSHA1 bool
	// SessionAttributes are the standard attributes sessions keep: any of
	// "email", "name", "groups"; nil keeps all three.
	SessionAttributes []string
	// Headers maps extra identity headers (canonical names starting with
	// X-Remote-) to the claim whose values they carry.
	Headers map[string]string

	// Problems are the tenant problems found in the tenant's own material
	// while the configuration was loaded (see Problem); nil when none. A
	// tenant with problems is not ready, or keeps its last good metadata.
	// Its metadata file is read, and its problems found, by the gateway.
	Problems []*Problem
}

// Log configures the process logger.
// GC sets the garbage collector (see internal/gctune). The environment
// variables GOGC and GOMEMLIMIT, when set, win over both.
type GC struct {
	// GOGC is the collector's target percentage.
	GOGC int
	// MemoryLimitRatio is the share of the container's memory limit that
	// becomes the Go memory limit (GOMEMLIMIT), in (0, 1].
	MemoryLimitRatio float64
}

type Log struct {
	Level  slog.Level
	Format string // "json" or "text"
	// Access writes one line per proxied request.
	Access bool
	// DebugAssertionTenant, if set, logs each SAML response that tenant's
	// IdP sends, redacted (no names, attribute values, signatures or
	// ciphertext), to debug claims and conditions. Never left on.
	DebugAssertionTenant string
}

// ExternalSecure reports whether browsers reach the gateway over HTTPS, in
// which case every cookie is Secure.
func (c *Config) ExternalSecure() bool {
	return c.PublicURL.Scheme == "https"
}
