// Package gateway assembles the running gateway from a validated
// configuration: it loads every tenant's IdP metadata, builds the SAML
// service provider and the proxy, and serves the public and admin
// listeners until its context ends, then drains in-flight requests.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/correlation"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Server limits. Bodies are unbounded in time (multi-GB uploads and
// downloads); headers are not.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 128 << 10
)

// Deps are the gateway's dependencies, injected so that tests control them.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Clock is the time source for SAML validation and sessions; nil means
	// the real clock.
	Clock clockwork.Clock
	// MetadataClient fetches idp_metadata_url; nil means a client with
	// the environment's proxy settings.
	MetadataClient *http.Client
	// UpstreamTransport overrides the upstream transport, for tests.
	UpstreamTransport http.RoundTripper
	// Version is reported by sso_gateway_build_info.
	Version string
}

// Gateway is an assembled gateway.
type Gateway struct {
	cfg      *config.Config
	log      *slog.Logger
	provider *samlsp.Provider
	public   http.Handler
	admin    http.Handler
	draining atomic.Bool
}

// Build assembles a gateway from cfg. Every problem (for example each
// tenant whose metadata cannot be loaded) is returned, joined, as
// *config.Problem values with key paths.
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
	metadata, err := LoadMetadata(ctx, cfg, d.MetadataClient, d.Clock.Now())
	if err != nil {
		return nil, err
	}

	keys := make([]samlsp.SessionKey, len(cfg.Session.Keys))
	for i, k := range cfg.Session.Keys {
		keys[i] = samlsp.SessionKey{Hash: k.Hash, Block: k.Block}
	}
	provider, err := samlsp.New(samlsp.Options{
		Secure:          cfg.ExternalSecure(),
		SessionKeys:     keys,
		SessionLifetime: cfg.Session.Lifetime,
		Clock:           d.Clock,
		Logger:          d.Logger,
		Metrics:         samlsp.NewMetrics(d.Registry),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	tenants, err := provider.NewTenants(TenantOptions(cfg, metadata))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	provider.SetTenants(tenants)

	px, err := proxy.New(proxy.Options{
		Upstream:        cfg.Upstream,
		UpstreamHost:    cfg.UpstreamHost,
		PublicScheme:    cfg.PublicURL.Scheme,
		UpstreamTimeout: cfg.UpstreamTimeout,
		SAML:            provider,
		Auth:            provider,
		Transport:       d.UpstreamTransport,
		Logger:          d.Logger,
		Metrics:         proxy.NewMetrics(d.Registry),
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{
		cfg:      cfg,
		log:      d.Logger,
		provider: provider,
		public:   correlation.Middleware(px),
	}
	g.admin = g.adminHandler(d.Registry, d.Version)
	return g, nil
}

// TenantOptions derives each tenant's service provider settings from the
// configuration: entity ID and ACS URL under public_url, the shared SP key
// pair, and the tenant's policy.
func TenantOptions(cfg *config.Config, metadata []*samlsp.IDPMetadata) []samlsp.TenantOptions {
	out := make([]samlsp.TenantOptions, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		entityID, acs, md := samlsp.TenantURLs(cfg.PublicURL, t.ID)
		out[i] = samlsp.TenantOptions{
			ID:                t.ID,
			EntityID:          entityID,
			ACSURL:            acs,
			MetadataURL:       md,
			IDP:               metadata[i],
			SPKey:             cfg.SP.Key,
			SPCert:            cfg.SP.Certificate,
			NameIDFormat:      t.NameIDFormat,
			AllowIDPInitiated: t.AllowIDPInitiated,
			AllowSHA1:         t.AllowSHA1,
			AllowedGroups:     t.AllowedGroups,
			EmailDomains:      t.EmailDomains,
			DefaultRelayState: t.DefaultRelayState,
		}
	}
	return out
}

// LoadMetadata loads every tenant's IdP metadata, from its file or URL, and
// checks it. Tenants whose source did not validate are skipped (their
// problem is already reported by config). Problems carry key paths.
func LoadMetadata(ctx context.Context, cfg *config.Config, client *http.Client, now time.Time) ([]*samlsp.IDPMetadata, error) {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	out := make([]*samlsp.IDPMetadata, len(cfg.Tenants))
	var problems []error
	for i, t := range cfg.Tenants {
		var (
			md   *samlsp.IDPMetadata
			err  error
			path string
		)
		switch {
		case t.MetadataFile != "":
			path = fmt.Sprintf("tenants[%d].idp_metadata_file", i)
			md, err = samlsp.ReadMetadataFile(t.MetadataFile, now)
		case t.MetadataURL != nil:
			path = fmt.Sprintf("tenants[%d].idp_metadata_url", i)
			md, err = samlsp.FetchMetadata(ctx, client, t.MetadataURL, now)
		default:
			continue
		}
		if err != nil {
			problems = append(problems, &config.Problem{Path: path, Msg: err.Error()})
			continue
		}
		out[i] = md
	}
	return out, errors.Join(problems...)
}

// PublicHandler is the handler of the public listener.
func (g *Gateway) PublicHandler() http.Handler { return g.public }

// AdminHandler is the handler of the admin listener.
func (g *Gateway) AdminHandler() http.Handler { return g.admin }

// Provider is the SAML service provider, for tests and the demo.
func (g *Gateway) Provider() *samlsp.Provider { return g.provider }

// Serve listens on the configured addresses and serves until ctx ends, then
// shuts down gracefully.
func (g *Gateway) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	public, err := lc.Listen(ctx, "tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen: %w", err)
	}
	admin, err := lc.Listen(ctx, "tcp", g.cfg.AdminListen)
	if err != nil {
		public.Close()
		return fmt.Errorf("gateway: admin listen: %w", err)
	}
	return g.ServeListeners(ctx, public, admin)
}

// ServeListeners serves on the given listeners until ctx ends. Shutdown
// first marks the gateway not ready, then drains in-flight requests for up
// to shutdown_timeout with a fresh context.
func (g *Gateway) ServeListeners(ctx context.Context, public, admin net.Listener) error {
	errorLog := slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)
	publicSrv := &http.Server{
		Handler:           g.public,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errorLog,
	}
	if g.cfg.TLS != nil {
		publicSrv.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{*g.cfg.TLS},
			MinVersion:   tls.VersionTLS12,
		}
		public = tls.NewListener(public, publicSrv.TLSConfig)
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
		g.log.Info("shutting down", slog.Duration("drain", g.cfg.ShutdownTimeout))
		// A fresh context: ctx is already done, and in-flight requests
		// deserve the whole drain period.
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
		defer cancel()
		err := publicSrv.Shutdown(shutdownCtx)
		if err2 := adminSrv.Shutdown(shutdownCtx); err == nil {
			err = err2
		}
		return err
	})
	return eg.Wait()
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve %s: %w", ln.Addr(), err)
	}
	return nil
}
