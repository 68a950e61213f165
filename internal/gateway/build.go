package gateway

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/replay"
	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

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
	g.public = g.router()
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
		SignedIdentity:      cfg.IdentityJWT != nil,
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
	signer, err := g.identitySigner(cfg)
	if err != nil {
		return err
	}
	var asserter proxy.Asserter
	if signer != nil {
		asserter = signer
	}
	hosts := newHostSet(cfg)
	px, err := proxy.New(proxy.Options{
		Upstream:        cfg.Upstream,
		UpstreamHost:    cfg.UpstreamHost,
		PublicScheme:    cfg.PublicURL.Scheme,
		UpstreamTimeout: cfg.UpstreamTimeout,
		Auth:            g.provider,
		Transport:       upstreamTransport(g.deps.UpstreamTransport, cfg.UpstreamTimeout),
		Logger:          g.log,
		Metrics:         g.proxyMetrics,
		Assertion:       asserter,
		AccessLog:       cfg.Log.Access,
		CanonicalHost:   hosts.canonical,
		Clock:           g.clock,
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
		client: reqinfo.NewResolver(cfg.TrustedProxies),
		logins: newLoginPools(cfg.Limits),
		loads:  byID,
		hosts:  hosts,
		jwt:    signer,
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
