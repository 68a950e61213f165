package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/httpguard"
)

// Serve listens on the configured addresses and serves until ctx ends, then
// shuts down gracefully. An address that cannot be listened on is a
// *config.ListenError naming its configuration key. Like ServeListeners, its last
// log line is "stopped".
func (g *Gateway) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	cfg := g.Config()
	public, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return g.stopped(&config.ListenError{Addr: cfg.Listen, Change: config.Key("listen", cfg.Path), Err: err})
	}
	admin, err := lc.Listen(ctx, "tcp", cfg.AdminListen)
	if err != nil {
		public.Close()
		return g.stopped(&config.ListenError{Addr: cfg.AdminListen, Change: config.Key("admin_listen", cfg.Path), Err: err})
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
		return g.shutdown(ctx, publicSrv, adminSrv)
	})
	return g.stopped(eg.Wait())
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Server limits. Bodies and responses that the upstream takes part in are
// unbounded in time (multi-GB uploads and downloads); headers are not, nor
// are SAML request bodies (limits.go) or the gateway's own answers
// (exchange.go).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 128 << 10
)
