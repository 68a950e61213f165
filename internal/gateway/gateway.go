// Package gateway assembles the running gateway from a validated
// configuration: it loads every tenant's IdP metadata, builds the SAML
// service provider and the proxy, and serves the public and admin
// listeners until its context ends, then drains in-flight requests.
package gateway

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Deps are the gateway's dependencies, injected so that tests control them.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Clock is the time source for SAML validation, sessions and metadata
	// refreshes; nil means the real clock.
	Clock clockwork.Clock
	// MetadataClient fetches idp_metadata_url; nil means a client with
	// the environment's proxy settings.
	MetadataClient *http.Client
	// UpstreamTransport overrides the upstream transport, for tests.
	UpstreamTransport http.RoundTripper
	// Version is reported by sso_gateway_build_info; "" means the
	// version the toolchain stamped into the binary.
	Version string
	// LookupEnv resolves *_env secrets on reload; nil means os.LookupEnv.
	LookupEnv config.LookupEnv
	// InitialFetchWait bounds how long Build waits for the first fetch of
	// every idp_metadata_url before serving; zero means 20 seconds.
	// Tenants still without metadata are not ready until it arrives.
	InitialFetchWait time.Duration
}

// Gateway is an assembled gateway. Everything a configuration reload may
// change is in an immutable state swapped as a whole; the SAML provider,
// the metadata refresher and the metrics live for the whole process.
type Gateway struct {
	log          *slog.Logger
	clock        clockwork.Clock
	deps         Deps
	provider     *samlsp.Provider
	refresher    *metadata.Refresher
	proxyMetrics *proxy.Metrics
	metrics      *metrics
	admin        http.Handler
	public       http.Handler
	draining     atomic.Bool
	bodyTimeouts prometheus.Counter
	// loginBodyTimeout and ownWriteTimeout are the constants of the same
	// names; tests shorten them.
	loginBodyTimeout time.Duration
	ownWriteTimeout  time.Duration
	// bodiesArriving counts the SAML request bodies being read, for tests.
	bodiesArriving atomic.Int64
	// admitted, if set, is called while a request to the SAML endpoints
	// holds its slot, before it is served; tests use it to hold slots.
	admitted func(*http.Request)

	reloadMu sync.Mutex // one reload at a time
	files    *fileCache
	state    atomic.Pointer[state]
}

// state is what one configuration produced.
type state struct {
	cfg    *config.Config
	proxy  *proxy.Proxy
	client *reqinfo.Resolver
	// logins bounds the requests to the SAML endpoints in flight, per
	// client and in all, in three pools (limits.go). A reload starts a new
	// count; requests admitted under the old one release their slot there.
	logins *loginPools
	// loads is where each tenant's metadata comes from, and its problems,
	// by tenant ID.
	loads map[string]*tenantLoad
	// hosts are the host names the gateway serves.
	hosts hostSet
	// jwt signs the identity sent upstream and serves its JWKS; nil when
	// identity_jwt is off.
	jwt *identityjwt.Signer
}

// PublicHandler is the handler of the public listener.
func (g *Gateway) PublicHandler() http.Handler { return g.public }

// AdminHandler is the handler of the admin listener.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

// Provider is the SAML service provider, for tests and the demo.
func (g *Gateway) Provider() *samlsp.Provider { return g.provider }

// Refresher keeps URL tenants' metadata fresh, for tests and operators.
func (g *Gateway) Refresher() *metadata.Refresher { return g.refresher }

// Config is the configuration in force.
func (g *Gateway) Config() *config.Config { return g.state.Load().cfg }
