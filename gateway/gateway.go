// Package gateway assembles the running gateway from a validated
// configuration: it loads every tenant's IdP metadata, builds the SAML
// service provider and the proxy, and serves the public and admin
// listeners until its context ends, then drains in-flight requests.
package gateway

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sso-gateway/sso-gateway/clientip"
	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/correlation"
	"github.com/sso-gateway/sso-gateway/httpguard"
	"github.com/sso-gateway/sso-gateway/metadata"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/replay"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Server limits. Bodies and responses that the upstream takes part in are
// unbounded in time (multi-GB uploads and downloads); headers are not, nor
// are SAML request bodies (limits.go) or the gateway's own answers
// (exchange.go).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 128 << 10
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
	client *clientip.Resolver
	// logins bounds the requests to the SAML endpoints in flight, per
	// client and in all, in three pools (limits.go). A reload starts a new
	// count; requests admitted under the old one release their slot there.
	logins *loginPools
	// loads is where each tenant's metadata comes from, and its problems,
	// by tenant ID.
	loads map[string]*tenantLoad
	// hosts are the host names the gateway serves.
	hosts hostSet
}

// Build assembles a gateway from cfg, which must have no global problems
// (config.Global). A tenant problem, in cfg or found while loading the
// tenant's metadata file, leaves that tenant not ready, logged and listed
// by /readyz and /tenants, and the others serve. Metadata URLs are fetched
// in the background; Build waits a little for them
// (Deps.InitialFetchWait), and a tenant whose URL does not answer is not
// ready but does not stop the others. ctx bounds the life of the
// background refreshes.
func Build(ctx context.Context, cfg *config.Config, d Deps) (*Gateway, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		return nil, errors.New("gateway: a Prometheus registry is required")
	}
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.InitialFetchWait <= 0 {
		d.InitialFetchWait = 20 * time.Second
	}
	po := providerOptions(cfg, d, samlsp.NewMetrics(d.Registry))
	var g *Gateway
	po.TenantProblem = func(id string) (string, bool) { return g.tenantProblem(id) }
	var store *replay.Redis
	if cfg.ReplayCache.RedisURL != "" {
		s, err := replay.NewRedis(replay.RedisOptions{URL: cfg.ReplayCache.RedisURL, Clock: d.Clock})
		if err != nil {
			return nil, &config.Problem{Path: "replay_cache", Msg: err.Error()}
		}
		store = s
		po.ReplayCache = store
		// Down at start-up is not fatal: sessions keep working, and
		// logins fail closed until Redis is back.
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := store.Ping(pingCtx); err != nil {
			d.Logger.Warn("replay store unreachable: logins will fail until it answers", slog.String("error", err.Error()))
		}
		cancel()
	}
	provider, err := samlsp.New(po)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	refresher, err := metadata.NewRefresher(ctx, metadata.RefresherOptions{
		Client:  d.MetadataClient,
		Clock:   d.Clock,
		Logger:  d.Logger,
		Metrics: metadata.NewMetrics(d.Registry),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g = &Gateway{
		log:          d.Logger,
		clock:        d.Clock,
		deps:         d,
		provider:     provider,
		refresher:    refresher,
		proxyMetrics: proxy.NewMetrics(d.Registry),
		metrics:      newMetrics(d.Registry),
		files:        newFileCache(),
		bodyTimeouts: newBodyTimeouts(d.Registry),

		loginBodyTimeout: loginBodyTimeout,
		ownWriteTimeout:  ownWriteTimeout,
	}
	d.Registry.MustRegister(&tenantCollector{g: g})
	d.Registry.MustRegister(replayCollector{store: store})
	g.public = g.guardExchanges(correlation.Middleware(http.HandlerFunc(g.serve)))
	logWarnings(ctx, d.Logger, cfg)
	if err := g.apply(ctx, cfg); err != nil {
		return nil, err
	}
	g.metrics.lastSuccess.Set(float64(d.Clock.Now().Unix()))
	g.metrics.lastOK.Set(1)
	waitCtx, cancel := context.WithTimeout(ctx, d.InitialFetchWait)
	defer cancel()
	refresher.WaitFirst(waitCtx)
	g.admin = g.adminHandler(d.Registry, d.Version)
	return g, nil
}

// serve finds the client's address and routes the request under the
// configuration in force. The SAML endpoints parse XML and verify
// signatures for anyone who asks, so their request bodies must arrive in
// time, and they are limited in concurrency per client and in all
// (serveSAML).
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	info := st.client.Resolve(r)
	r = clientip.WithInfo(r, info)
	host, ok := canonicalHost(r.Host)
	if !ok {
		g.badHost(w, r)
		return
	}
	r.Host = host
	if !st.hosts.serves(host) {
		g.otherHost(w, r, st)
		return
	}
	if samlsp.OwnPath(r) {
		g.serveSAML(w, r, st, info)
		return
	}
	st.proxy.ServeHTTP(w, r)
}

func providerOptions(cfg *config.Config, d Deps, m *samlsp.Metrics) samlsp.Options {
	keys := make([]samlsp.SessionKey, len(cfg.Session.Keys))
	for i, k := range cfg.Session.Keys {
		keys[i] = samlsp.SessionKey{Hash: k.Hash, Block: k.Block}
	}
	cacheEntries := cfg.Session.CacheEntries
	if cacheEntries == 0 {
		cacheEntries = -1 // off
	}
	return samlsp.Options{
		Secure:              cfg.ExternalSecure(),
		PublicHost:          samlsp.HostName(cfg.PublicURL.Host),
		SessionKeys:         keys,
		SessionLifetime:     cfg.Session.Lifetime,
		SessionCacheEntries: cacheEntries,
		SessionCacheBytes:   int64(cfg.Session.CacheMiB) << 20,
		Clock:               d.Clock,
		Logger:              d.Logger,
		Metrics:             m,

		DebugAssertionTenant: cfg.Log.DebugAssertionTenant,
	}
}

// apply builds everything cfg describes and swaps it in, or changes
// nothing and returns every problem. Tenant problems are not problems of
// the configuration: such a tenant keeps what it had, or is not ready, and
// the rest applies.
func (g *Gateway) apply(ctx context.Context, cfg *config.Config) error {
	now := g.clock.Now()
	prev := g.state.Load()
	loads := loadTenants(cfg, now, g.files, prev)
	files := make([]*metadata.IDP, len(loads))
	for i := range loads {
		files[i] = loads[i].md
	}
	tenants, err := g.provider.NewTenants(TenantOptions(cfg, files))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	px, err := proxy.New(proxy.Options{
		Upstream:        cfg.Upstream,
		UpstreamHost:    cfg.UpstreamHost,
		PublicScheme:    cfg.PublicURL.Scheme,
		UpstreamTimeout: cfg.UpstreamTimeout,
		SAML:            g.provider,
		Auth:            g.provider,
		Transport:       upstreamTransport(g.deps.UpstreamTransport, cfg.UpstreamTimeout),
		Logger:          g.log,
		Metrics:         g.proxyMetrics,
		AccessLog:       cfg.Log.Access,
	})
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if err := g.provider.Reconfigure(providerOptions(cfg, g.deps, nil)); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}

	// Hand URL tenants to the refresher: unchanged ones get their current
	// metadata at once, new ones start fetching. Then the new table goes
	// live, so an unchanged tenant is never without metadata.
	var targets []metadata.Target
	byID := make(map[string]*tenantLoad, len(loads))
	for i, t := range cfg.Tenants {
		l := &loads[i]
		byID[t.ID] = l
		if l.target == nil {
			continue
		}
		tenant, _ := tenants.Get(t.ID)
		target := *l.target
		target.Apply = tenant.SetIDP
		targets = append(targets, target)
	}
	g.refresher.Sync(targets)
	g.provider.SetTenants(tenants)
	g.state.Store(&state{
		cfg:    cfg,
		proxy:  px,
		client: clientip.New(cfg.TrustedProxies),
		logins: newLoginPools(cfg.Limits),
		loads:  byID,
		hosts:  newHostSet(cfg),
	})
	if prev != nil {
		// Requests in flight keep their connections; idle ones to the
		// upstream would otherwise linger until their timeout.
		prev.proxy.CloseIdleConnections()
	}
	g.files.keep(cfg)
	g.logTenantProblems(ctx, cfg, byID)
	return nil
}

// logWarnings logs the warnings of a configuration about to apply.
func logWarnings(ctx context.Context, log *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.LogAttrs(ctx, slog.LevelWarn, "configuration warning", slog.String("warning", w.Error()))
	}
}

// logTenantProblems logs every tenant problem of a configuration just
// applied, saying what the tenant does meanwhile.
func (g *Gateway) logTenantProblems(ctx context.Context, cfg *config.Config, loads map[string]*tenantLoad) {
	for _, t := range cfg.Tenants {
		l := loads[t.ID]
		if len(l.problems) == 0 {
			continue
		}
		msg := "tenant problem: the tenant is not ready until it is fixed; every other tenant serves"
		if l.kept {
			msg = "tenant problem: the tenant keeps its last good IdP metadata until it is fixed"
		}
		for _, p := range l.problems {
			g.log.LogAttrs(ctx, slog.LevelError, msg, slog.String("tenant", t.ID), slog.String("problem", p.Error()))
		}
	}
}

// TenantOptions derives each tenant's service provider settings from the
// configuration: its URLs under TenantBase, the shared SP key pair, and the
// tenant's policy. files holds the metadata of file tenants, by index; URL
// tenants start without metadata.
func TenantOptions(cfg *config.Config, files []*metadata.IDP) []samlsp.TenantOptions {
	out := make([]samlsp.TenantOptions, len(cfg.Tenants))
	var previous []*rsa.PrivateKey
	if cfg.SP.PreviousKey != nil {
		previous = []*rsa.PrivateKey{cfg.SP.PreviousKey}
	}
	for i, t := range cfg.Tenants {
		out[i] = samlsp.TenantOptions{
			ID:                t.ID,
			URLs:              samlsp.TenantURLs(TenantBase(cfg, t), t.ID),
			Hosts:             t.Hosts,
			IDP:               files[i],
			SPKey:             cfg.SP.Key,
			SPCert:            cfg.SP.Certificate,
			SPPreviousKeys:    previous,
			NameIDFormat:      t.NameIDFormat,
			AllowIDPInitiated: t.AllowIDPInitiated,
			AllowSHA1:         t.AllowSHA1,
			AllowedGroups:     t.AllowedGroups,
			EmailDomains:      t.EmailDomains,
			DefaultRelayState: t.DefaultRelayState,
			SessionAttributes: t.SessionAttributes,
			Headers:           t.Headers,
			EntraTenantID:     t.EntraTenantID,
		}
	}
	return out
}

// TenantBase is the origin of a tenant's SAML URLs (Identifier, Reply URL,
// Logout URL, SP metadata): public_url, whatever the tenant's hosts, so that
// adding hosts to a tenant never changes what its Entra application is
// configured with. Only saml_urls_on_host moves them to the first host.
func TenantBase(cfg *config.Config, t config.Tenant) *url.URL {
	if !t.SAMLURLsOnHost || len(t.Hosts) == 0 {
		return cfg.PublicURL
	}
	return hostBase(cfg, t.Hosts[0])
}

// SignOnBase is the origin a tenant's users sign in at, its Sign on URL:
// the tenant's first host, or public_url for a tenant without hosts.
func SignOnBase(cfg *config.Config, t config.Tenant) *url.URL {
	if len(t.Hosts) == 0 {
		return cfg.PublicURL
	}
	return hostBase(cfg, t.Hosts[0])
}

// hostBase is public_url with host in place of its host name (the port
// stays: one listener serves every host).
func hostBase(cfg *config.Config, host string) *url.URL {
	u := *cfg.PublicURL
	u.Host = host
	if port := cfg.PublicURL.Port(); port != "" {
		u.Host = net.JoinHostPort(host, port)
	}
	return &u
}

// CheckReplayStore asks the shared replay store, if cfg has one, whether
// it answers, as `sso-gateway check` does.
func CheckReplayStore(ctx context.Context, cfg *config.Config) error {
	if cfg.ReplayCache.RedisURL == "" {
		return nil
	}
	store, err := replay.NewRedis(replay.RedisOptions{URL: cfg.ReplayCache.RedisURL})
	if err != nil {
		return &config.Problem{Path: "replay_cache", Msg: err.Error()}
	}
	defer store.Close()
	if err := store.Ping(ctx); err != nil {
		return &config.Problem{Path: "replay_cache", Msg: "Redis does not answer, so logins would fail: " + err.Error()}
	}
	return nil
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

// Serve listens on the configured addresses and serves until ctx ends, then
// shuts down gracefully. An address that cannot be listened on is a
// *ListenError naming its configuration key. Like ServeListeners, its last
// log line is "stopped".
func (g *Gateway) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	cfg := g.Config()
	public, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return g.stopped(&ListenError{Addr: cfg.Listen, Change: configKey("listen", cfg.Path), Err: err})
	}
	admin, err := lc.Listen(ctx, "tcp", cfg.AdminListen)
	if err != nil {
		public.Close()
		return g.stopped(&ListenError{Addr: cfg.AdminListen, Change: configKey("admin_listen", cfg.Path), Err: err})
	}
	return g.ServeListeners(ctx, public, admin)
}

// stopped logs the gateway's last line, with the reason it stopped if it
// was not told to, and returns err.
func (g *Gateway) stopped(err error) error {
	if err != nil {
		g.log.Error("stopped", slog.String("error", err.Error()))
	} else {
		g.log.Info("stopped")
	}
	return err
}

// ServeListeners serves on the given listeners until ctx ends. Shutdown
// first marks the gateway not ready and keeps serving for shutdown_delay,
// so that load balancers take it out of rotation, then stops accepting and
// drains in-flight requests for up to shutdown_timeout with a fresh
// context. When everything has drained it logs "stopped", with the error
// if a listener failed or requests were cut off.
func (g *Gateway) ServeListeners(ctx context.Context, public, admin net.Listener) error {
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	publicSrv := &http.Server{
		Handler:           g.public,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
	if g.Config().TLS != nil {
		publicSrv.TLSConfig = &tls.Config{
			// Read at every handshake, so a reload renews the certificate.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				if c := g.Config().TLS; c != nil {
					return c, nil
				}
				return nil, errors.New("gateway: TLS was turned off by a reload; restart to serve plain HTTP")
			},
			MinVersion: tls.VersionTLS12,
		}
		public = tls.NewListener(public, publicSrv.TLSConfig)
	} else {
		// Plain HTTP means a load balancer in front: refuse any request
		// it might have framed differently from Go's parser.
		public = &httpguard.Listener{
			Listener: public,
			MaxHead:  maxHeaderBytes,
			OnReject: func(r httpguard.Rejection) {
				g.metrics.rejected.WithLabelValues(r.Reason).Inc()
				g.log.Info("request refused", slog.String("reason", r.Reason), slog.String("detail", r.Detail),
					slog.String("remote", r.Remote.String()))
			},
		}
	}
	adminSrv := &http.Server{
		Handler:           g.admin,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          errorLog,
	}
	g.log.Info("serving", slog.String("public", public.Addr().String()), slog.String("admin", admin.Addr().String()),
		slog.Int("tenants", len(g.provider.CurrentTenants().List())))

	eg, egCtx := errgroup.WithContext(ctx)
	eg.Go(func() error { return serve(publicSrv, public) })
	eg.Go(func() error { return serve(adminSrv, admin) })
	eg.Go(func() error {
		<-egCtx.Done()
		g.draining.Store(true)
		cfg := g.Config()
		drain := cfg.ShutdownTimeout
		g.log.Info("shutting down", slog.Float64("delay_seconds", cfg.ShutdownDelay.Seconds()), slog.Float64("drain_seconds", drain.Seconds()))
		if ctx.Err() != nil && cfg.ShutdownDelay > 0 {
			// Not ready, still serving: load balancers stop sending new
			// requests before the listener closes, so none is refused.
			// (Skipped when a listener failed: nothing is being served.)
			t := time.NewTimer(cfg.ShutdownDelay)
			<-t.C
		}
		// A fresh context: ctx is already done, and in-flight requests
		// deserve the whole drain period.
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		defer cancel()
		err := publicSrv.Shutdown(shutdownCtx)
		if err2 := adminSrv.Shutdown(shutdownCtx); err == nil {
			err = err2
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// Shutdown leaves what did not finish open; close it here, so
			// that the cut is the gateway's decision, logged, and not a
			// side effect of the process exiting.
			_ = publicSrv.Close()
			_ = adminSrv.Close()
			g.log.Warn("shutdown_timeout reached: requests still in flight were cut off", slog.Float64("drain_seconds", drain.Seconds()))
			return fmt.Errorf("gateway: requests still in flight after shutdown_timeout (%s) were cut off", drain)
		}
		return err
	})
	return g.stopped(eg.Wait())
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve %s: %w", ln.Addr(), err)
	}
	return nil
}
