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
	"github.com/sso-gateway/sso-gateway/internal/logging"
)

// serve runs the gateway until ctx ends. Its last log line, once every
// request has drained, is "stopped".
func serve(ctx context.Context, path string, _, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return errReported
	}
	log := logging.New(stderr, cfg.Log.Level, cfg.Log.Format)
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

// check validates the config and loads every tenant's IdP metadata,
// reporting every problem with its key path.
func check(ctx context.Context, path string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if cfg != nil {
		err = errors.Join(err,
			gateway.CheckMetadata(ctx, cfg, nil, time.Now()),
			gateway.CheckReplayStore(ctx, cfg))
	}
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: OK (%d tenants)\n", path, len(cfg.Tenants))
	return nil
}

// tenants prints, for each tenant, what to type into Entra ID and the state
// of its IdP metadata and signing certificates.
func tenants(ctx context.Context, path string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		config.WriteProblems(stderr, path, err)
		return errReported
	}
	now := time.Now()
	reports := gateway.LoadTenantReports(ctx, cfg, nil, now)
	gateway.WriteTenantReports(stdout, reports, now)
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
