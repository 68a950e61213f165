package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/cli"
	"github.com/sso-gateway/sso-gateway/internal/gctune"
	"github.com/sso-gateway/sso-gateway/internal/logging"
)

// The commands of cmd/sso-gateway that run the gateway or judge its
// configuration. Each prints the configuration's problems itself and then
// returns cli.ErrReported.

// Run is "sso-gateway serve": it runs the gateway from the configuration
// at path until ctx ends, logging to stderr. Its last log line, once every
// request has drained, is "stopped". Only a global problem stops it: a
// tenant problem is logged, and the other tenants serve. version, if set,
// overrides the version the toolchain stamped into the binary.
func Run(ctx context.Context, path string, stderr io.Writer, version string) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err := config.Global(err); err != nil {
		config.WriteProblems(stderr, path, err)
		return cli.ErrReported
	}
	// The access log's lines wait up to DefaultFlushInterval to be
	// written in batches; every other line goes out at once, after them.
	// Close writes what waits once everything has drained, and whatever
	// comes later at once.
	out := logging.NewOutput(stderr, logging.DefaultFlushInterval)
	defer out.Close()
	log := logging.New(out, cfg.Log.Level, cfg.Log.Format)
	gc := gctune.Apply(gctune.Options{GOGC: cfg.GC.GOGC, MemoryLimitRatio: cfg.GC.MemoryLimitRatio})
	log.LogAttrs(ctx, slog.LevelInfo, "garbage collector", gc.LogAttrs()...)
	gw, err := Build(ctx, cfg, Deps{
		Logger:   log,
		Registry: prometheus.NewRegistry(),
		Version:  version,
	})
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return cli.ErrReported
	}
	// SIGHUP and changes to the configuration files reload it; a broken
	// configuration is logged and the running one keeps serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		if err := gw.Watch(watchCtx, hup); err != nil {
			log.Error("configuration watch stopped", slog.String("error", err.Error()))
		}
	}()
	err = gw.Serve(ctx)
	// The watch ends with ctx, long before the drain does; when a listener
	// failed instead, stop it here, so nothing is logged after "stopped".
	stopWatch()
	<-watched
	return err
}

// Check is "sso-gateway check": it validates the configuration at path
// and loads every tenant's IdP metadata. It is strict: every problem,
// global or a tenant's, fails it, so that a pipeline catches a broken
// metadata file before it is deployed. Warnings (a normalised public_url;
// with previous, the configuration in force now, an Entra set-up value
// that would change) are printed and do not fail it.
func Check(ctx context.Context, path, previous string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if cfg != nil {
		err = errors.Join(err,
			CheckMetadata(ctx, cfg, nil, time.Now()),
			CheckReplayStore(ctx, cfg))
		warnings := cfg.Warnings
		if previous != "" {
			// Only its public_url and tenants matter: its files may be
			// elsewhere, or gone.
			old, oerr := config.Load(previous, os.LookupEnv)
			if old == nil || old.PublicURL == nil {
				return fmt.Errorf("-previous %s: %w", previous, config.Global(oerr))
			}
			for _, c := range IdentifierChanges(old, cfg) {
				warnings = append(warnings, &config.Problem{Path: "tenants", Tenant: c.Tenant, Msg: c.String() + ": update the enterprise application in Entra ID at the same time, or its logins fail (AADSTS700016, AADSTS50011)"})
			}
		}
		config.WriteWarnings(stderr, path, warnings)
	}
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return cli.ErrReported
	}
	fmt.Fprintf(stdout, "%s: OK (%d tenants)\n", path, len(cfg.Tenants))
	return nil
}

// Tenants is "sso-gateway tenants": it prints, for each tenant, what to
// type into Entra ID and the state of its IdP metadata and signing
// certificates, for people or, asJSON, for scripts. It fails when a
// tenant is not ready.
func Tenants(ctx context.Context, path string, asJSON bool, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err := config.Global(err); err != nil {
		config.WriteProblems(stderr, path, err)
		return cli.ErrReported
	}
	config.WriteWarnings(stderr, path, cfg.Warnings)
	now := time.Now()
	reports := LoadTenantReports(ctx, cfg, nil, now)
	if asJSON {
		if err := WriteTenantReportsJSON(stdout, reports); err != nil {
			return err
		}
	} else {
		WriteTenantReports(stdout, reports, now)
	}
	notReady := 0
	for _, r := range reports {
		if !r.Ready {
			notReady++
		}
	}
	if notReady > 0 {
		return fmt.Errorf("%d of %d tenants are not ready", notReady, len(reports))
	}
	return nil
}
