// Package gateway assembles the running gateway from a validated
// configuration: it loads every tenant's IdP metadata, builds the SAML
// service provider and the proxy, and serves the public and admin
// listeners until its context ends, then drains in-flight requests.
package gateway

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
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
	"github.com/sso-gateway/sso-gateway/inflight"
	"github.com/sso-gateway/sso-gateway/metadata"
	"github.com/sso-gateway/sso-gateway/page"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/replay"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Server limits. Bodies are unbounded in time (multi-GB uploads and
// downloads); headers are not.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 128 << 10
	// loginReadTimeout bounds reading a request to the SAML endpoints,
	// body included: an ACS post is at most 256 KiB, and a client
	// trickling it holds one of its few login slots meanwhile.
	loginReadTimeout = 30 * time.Second
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
	// loginReadTimeout is loginReadTimeout; tests shorten it.
	loginReadTimeout time.Duration

	reloadMu sync.Mutex // one reload at a time
	files    *fileCache
	state    atomic.Pointer[state]
}

// state is what one configuration produced.
type state struct {
	cfg    *config.Config
	proxy  http.Handler
	client *clientip.Resolver
	// logins bounds the requests to the SAML endpoints in flight, per
	// client and in all. A reload starts a new count; requests admitted
	// under the old one release their slot there.
	logins *inflight.Limiter
	// fileLoaded is when each file tenant's metadata was read.
	fileLoaded map[string]time.Time
}

// Build assembles a gateway from cfg. Every problem (for example each
// tenant whose metadata file is unusable) is returned, joined, as
// *config.Problem values with key paths. Metadata URLs are fetched in the
// background; Build waits a little for them (Deps.InitialFetchWait), and a
// tenant whose URL does not answer is not ready but does not stop the
// others. ctx bounds the life of the background refreshes.
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
	g := &Gateway{
		log:          d.Logger,
		clock:        d.Clock,
		deps:         d,
		provider:     provider,
		refresher:    refresher,
		proxyMetrics: proxy.NewMetrics(d.Registry),
		metrics:      newMetrics(d.Registry),
		files:        newFileCache(),

		loginReadTimeout: loginReadTimeout,
	}
	d.Registry.MustRegister(&tenantCollector{g: g})
	d.Registry.MustRegister(replayCollector{store: store})
	g.public = correlation.Middleware(http.HandlerFunc(g.serve))
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
// signatures for anyone who asks, so they are limited in concurrency per
// client and in all, and their request bodies must arrive in time.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	info := st.client.Resolve(r)
	r = clientip.WithInfo(r, info)
	if samlsp.OwnPath(r) {
		release, refused := st.logins.Acquire(info.Client)
		if refused != "" {
			g.metrics.throttled.WithLabelValues(refused).Inc()
			g.log.LogAttrs(r.Context(), slog.LevelWarn, "sign-in request refused: too many in flight",
				slog.String("scope", refused), slog.String("client_ip", info.String()),
				slog.String("path", r.URL.Path), slog.String("correlation_id", correlation.FromContext(r.Context())))
			w.Header().Set("Retry-After", "2")
			page.Write(w, r, page.Errorf(http.StatusTooManyRequests,
				"Too many sign-ins are in progress from your network. Please try again in a moment.",
				fmt.Errorf("gateway: login concurrency limit (%s)", refused)))
			return
		}
		defer release()
		// A socket deadline, so real time whatever the injected clock
		// says. A test recorder does not support it; the limit above
		// holds regardless.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.loginReadTimeout))
	}
	st.proxy.ServeHTTP(w, r)
}

func providerOptions(cfg *config.Config, d Deps, m *samlsp.Metrics) samlsp.Options {
	keys := make([]samlsp.SessionKey, len(cfg.Session.Keys))
	for i, k := range cfg.Session.Keys {
		keys[i] = samlsp.SessionKey{Hash: k.Hash, Block: k.Block}
	}
	return samlsp.Options{
		Secure:          cfg.ExternalSecure(),
		SessionKeys:     keys,
		SessionLifetime: cfg.Session.Lifetime,
		Clock:           d.Clock,
		Logger:          d.Logger,
		Metrics:         m,

		DebugAssertionTenant: cfg.Log.DebugAssertionTenant,
	}
}

// apply builds everything cfg describes and swaps it in, or changes
// nothing and returns every problem.
func (g *Gateway) apply(ctx context.Context, cfg *config.Config) error {
	now := g.clock.Now()
	files, err := loadFiles(cfg, now, g.files)
	if err != nil {
		return err
	}
	opts := TenantOptions(cfg, files)
	tenants, err := g.provider.NewTenants(opts)
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
		Transport:       g.deps.UpstreamTransport,
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
	fileLoaded := map[string]time.Time{}
	for _, t := range cfg.Tenants {
		tenant, _ := tenants.Get(t.ID)
		if t.MetadataURL == nil {
			fileLoaded[t.ID] = now
			continue
		}
		targets = append(targets, metadata.Target{
			Tenant:   t.ID,
			URL:      t.MetadataURL,
			Signers:  t.MetadataSigners,
			Interval: t.MetadataRefresh,
			Apply:    tenant.SetIDP,
		})
	}
	g.refresher.Sync(targets)
	g.provider.SetTenants(tenants)
	g.state.Store(&state{
		cfg:        cfg,
		proxy:      px,
		client:     clientip.New(cfg.TrustedProxies),
		logins:     inflight.New(cfg.Limits.LoginConcurrencyPerClient, cfg.Limits.LoginConcurrency),
		fileLoaded: fileLoaded,
	})
	g.files.keep(cfg)
	return nil
}

// TenantOptions derives each tenant's service provider settings from the
// configuration: its URLs under public_url, the shared SP key pair, and the
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

// TenantBase is the origin a tenant's users sign in at: public_url, or
// with the tenant's first host in place of public_url's host.
func TenantBase(cfg *config.Config, t config.Tenant) *url.URL {
	if len(t.Hosts) == 0 {
		return cfg.PublicURL
	}
	u := *cfg.PublicURL
	u.Host = t.Hosts[0]
	if port := cfg.PublicURL.Port(); port != "" {
		u.Host = net.JoinHostPort(t.Hosts[0], port)
	}
	return &u
}

// loadFiles reads the metadata of every file tenant, on every core: with
// thousands of tenants, parsing dominates start-up and reload. A document
// whose bytes (and pinned signers) are unchanged since cache saw them is
// not parsed again, only checked against the clock. Problems carry key
// paths. cache may be nil.
func loadFiles(cfg *config.Config, now time.Time, cache *fileCache) ([]*metadata.IDP, error) {
	out := make([]*metadata.IDP, len(cfg.Tenants))
	problems := make([]error, len(cfg.Tenants))
	var eg errgroup.Group
	eg.SetLimit(runtime.GOMAXPROCS(0))
	for i, t := range cfg.Tenants {
		if t.MetadataFile == "" {
			continue
		}
		eg.Go(func() error {
			md, err := cache.load(t.MetadataFile, t.MetadataSigners, now)
			if err != nil {
				problems[i] = &config.Problem{Path: fmt.Sprintf("tenants[%d].idp_metadata_file", i), Msg: err.Error()}
				return nil
			}
			if err := entraMismatch(md, t, i); err != nil {
				problems[i] = err
				return nil
			}
			out[i] = md
			return nil
		})
	}
	_ = eg.Wait()
	return out, errors.Join(problems...)
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

// entraMismatch reports metadata of another Entra directory than the
// tenant's entra_tenant_id: every login would fail the tenantid check.
func entraMismatch(md *metadata.IDP, t config.Tenant, i int) error {
	got := md.EntraTenantID()
	if t.EntraTenantID == "" || got == "" || got == t.EntraTenantID {
		return nil
	}
	return &config.Problem{Path: fmt.Sprintf("tenants[%d].entra_tenant_id", i), Msg: fmt.Sprintf(
		"is %s, but the IdP metadata is directory %s's (entity ID %s): one of them belongs to another organisation", t.EntraTenantID, got, md.Entity.EntityID)}
}

// fileCache remembers parsed metadata files by content, so that a reload
// re-parses only the files that changed.
type fileCache struct {
	mu      sync.Mutex
	entries map[string]fileEntry // by path
}

type fileEntry struct {
	sum [32]byte // of the file and the pinned signers
	md  *metadata.IDP
}

func newFileCache() *fileCache { return &fileCache{entries: map[string]fileEntry{}} }

func (c *fileCache) load(path string, signers []*x509.Certificate, now time.Time) (*metadata.IDP, error) {
	data, err := metadata.ReadBytes(path)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return metadata.Parse(data, now, signers)
	}
	h := sha256.New()
	h.Write(data)
	for _, s := range signers {
		h.Write(s.Raw)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	c.mu.Lock()
	e, ok := c.entries[path]
	c.mu.Unlock()
	if ok && e.sum == sum {
		if err := e.md.UsableAt(now); err != nil {
			return nil, err
		}
		return e.md, nil
	}
	md, err := metadata.Parse(data, now, signers)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.entries[path] = fileEntry{sum: sum, md: md}
	c.mu.Unlock()
	return md, nil
}

// keep drops the entries of files cfg no longer names.
func (c *fileCache) keep(cfg *config.Config) {
	named := map[string]bool{}
	for _, t := range cfg.Tenants {
		named[t.MetadataFile] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for path := range c.entries {
		if !named[path] {
			delete(c.entries, path)
		}
	}
}

// CheckMetadata loads every tenant's IdP metadata, from its file or URL,
// and checks it, as `sso-gateway check` does. Tenants whose source did not
// validate are skipped (config reports them). Problems carry key paths.
func CheckMetadata(ctx context.Context, cfg *config.Config, client *http.Client, now time.Time) error {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	_, err := loadFiles(cfg, now, nil)
	problems := []error{err}
	for i, t := range cfg.Tenants {
		if t.MetadataURL == nil {
			continue
		}
		data, _, err := metadata.Fetch(ctx, client, t.MetadataURL, metadata.Validators{})
		var md *metadata.IDP
		if err == nil {
			md, err = metadata.Parse(data, now, t.MetadataSigners)
		}
		if err != nil {
			problems = append(problems, &config.Problem{Path: fmt.Sprintf("tenants[%d].idp_metadata_url", i), Msg: err.Error()})
			continue
		}
		problems = append(problems, entraMismatch(md, t, i))
	}
	return errors.Join(problems...)
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
