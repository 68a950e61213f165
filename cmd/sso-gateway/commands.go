package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/demo"
	"github.com/sso-gateway/sso-gateway/gateway"
	"github.com/sso-gateway/sso-gateway/internal/buildinfo"
	"github.com/sso-gateway/sso-gateway/internal/gctune"
	"github.com/sso-gateway/sso-gateway/internal/logging"
)

// serve runs the gateway until ctx ends. Its last log line, once every
// request has drained, is "stopped". Only a global problem stops it: a
// tenant problem is logged, and the other tenants serve.
func serve(ctx context.Context, path string, _, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err := config.Global(err); err != nil {
		config.WriteProblems(stderr, path, err)
		return errReported
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
	gw, err := gateway.Build(ctx, cfg, gateway.Deps{
		Logger:   log,
		Registry: prometheus.NewRegistry(),
		Version:  version,
	})
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return errReported
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

// checkCommand validates the config and loads every tenant's IdP
// metadata. It is strict: every problem, global or a tenant's, fails it,
// so that a pipeline catches a broken metadata file before it is
// deployed. Warnings (a normalised public_url; with -previous, an Entra
// set-up value that would change) are printed and do not fail it.
func checkCommand() (*flag.FlagSet, runner) {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	path := configFlag(fs)
	previous := fs.String("previous", "", "the configuration in force now: warn of every tenant whose Identifier, Reply URL or Logout URL the new one changes (each breaks the tenant's logins until its Entra app is updated)")
	return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		if err := needConfig(fs, *path); err != nil {
			return err
		}
		cfg, err := config.Load(*path, os.LookupEnv)
		if cfg != nil {
			err = errors.Join(err,
				gateway.CheckMetadata(ctx, cfg, nil, time.Now()),
				gateway.CheckReplayStore(ctx, cfg))
			warnings := cfg.Warnings
			if *previous != "" {
				// Only its public_url and tenants matter: its files may
				// be elsewhere, or gone.
				old, oerr := config.Load(*previous, os.LookupEnv)
				if old == nil || old.PublicURL == nil {
					return fmt.Errorf("-previous %s: %w", *previous, config.Global(oerr))
				}
				for _, c := range gateway.IdentifierChanges(old, cfg) {
					warnings = append(warnings, &config.Problem{Path: "tenants", Tenant: c.Tenant, Msg: c.String() + ": update the enterprise application in Entra ID at the same time, or its logins fail (AADSTS700016, AADSTS50011)"})
				}
			}
			config.WriteWarnings(stderr, *path, warnings)
		}
		if err != nil {
			config.WriteProblems(stderr, *path, err)
			return errReported
		}
		fmt.Fprintf(stdout, "%s: OK (%d tenants)\n", *path, len(cfg.Tenants))
		return nil
	}
}

// tenantsCommand prints, for each tenant, what to type into Entra ID and
// the state of its IdP metadata and signing certificates, for people or,
// with -json, for scripts. It fails when a tenant is not ready.
func tenantsCommand() (*flag.FlagSet, runner) {
	fs := flag.NewFlagSet("tenants", flag.ContinueOnError)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print a JSON array, one object per tenant (lists are [] when empty, never null)")
	return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		if err := needConfig(fs, *path); err != nil {
			return err
		}
		cfg, err := config.Load(*path, os.LookupEnv)
		if err := config.Global(err); err != nil {
			config.WriteProblems(stderr, *path, err)
			return errReported
		}
		config.WriteWarnings(stderr, *path, cfg.Warnings)
		now := time.Now()
		reports := gateway.LoadTenantReports(ctx, cfg, nil, now)
		if *asJSON {
			if err := gateway.WriteTenantReportsJSON(stdout, reports); err != nil {
				return err
			}
		} else {
			gateway.WriteTenantReports(stdout, reports, now)
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
}

func demoCommand() (*flag.FlagSet, runner) {
	var o demo.Options
	fs := demo.FlagSet(&o)
	return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
		if fs.NArg() > 0 {
			return fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
		}
		o.LogTo = stderr
		return demo.Run(ctx, o, stdout)
	}
}

func versionCommand() (*flag.FlagSet, runner) {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	return fs, func(_ context.Context, stdout, _ io.Writer) error {
		if fs.NArg() > 0 {
			return fmt.Errorf("version: unexpected argument %q", fs.Arg(0))
		}
		fmt.Fprintln(stdout, versionLine(buildinfo.Read()))
		return nil
	}
}

// versionLine is what "sso-gateway version" prints: the version, then the
// revision and Go version, e.g.
// "sso-gateway v0.0.0-20261128165039-d7ffe7e5e94e (revision d7ffe7e…, go1.27.3)".
func versionLine(info buildinfo.Info) string {
	if version != "" {
		info.Version = version
	}
	revision := info.Revision
	if revision == "" {
		revision = "unknown"
	}
	return fmt.Sprintf("sso-gateway %s (revision %s, %s)", info.Version, revision, info.GoVersion)
}
