// Command sso-gateway is a multi-tenant SAML single sign-on reverse proxy:
// it signs users in with each customer's Microsoft Entra ID and forwards
// their requests to an unmodified backend with verified identity headers.
//
// Usage:
//
//	sso-gateway -config FILE          serve
//	sso-gateway check -config FILE    validate the config and every IdP's metadata
//	sso-gateway tenants -config FILE  Entra set-up values and state of each tenant
//	sso-gateway demo [flags]          run a demo IdP, document service and gateway
//	sso-gateway version
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
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal starts a graceful shutdown; restoring the
		// default disposition lets a second one end the process at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "sso-gateway:", err)
		}
		os.Exit(1)
	}
}

// errReported means the problems were already printed.
var errReported = errors.New("reported")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		return serve(ctx, args, stderr)
	case "check":
		return check(ctx, args, stdout, stderr)
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	case "tenants":
		return tenants(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "sso-gateway", version)
		return nil
	case "help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", cmd)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage:
  sso-gateway -config FILE          serve
  sso-gateway check -config FILE    validate the config and load every IdP's metadata
  sso-gateway tenants -config FILE  what to type into Entra ID for each tenant, and its state
  sso-gateway demo [flags]          run a demo IdP, document service and gateway on 127.0.0.1
  sso-gateway version
`)
}

func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path to the YAML config file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *path == "" || fs.NArg() > 0 {
		return "", errors.New("-config FILE is required")
	}
	return *path, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	path, err := configFlag("sso-gateway", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err := config.Global(err); err != nil {
		// Tenant problems do not stop the start: the gateway logs them,
		// and serves every other tenant.
		printProblems(stderr, path, err)
		return errReported
	}
	log := newLogger(stderr, cfg.Log)
	gw, err := gateway.Build(ctx, cfg, gateway.Deps{
		Logger:   log,
		Registry: prometheus.NewRegistry(),
		Version:  version,
	})
	if err != nil {
		printProblems(stderr, path, err)
		return errReported
	}
	// SIGHUP and changes to the configuration files reload it; a broken
	// configuration is logged and the running one keeps serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		if err := gw.Watch(ctx, hup); err != nil {
			log.Error("configuration watch stopped", slog.String("error", err.Error()))
		}
	}()
	return gw.Serve(ctx)
}

// check validates the config and loads every tenant's IdP metadata,
// reporting every problem with its key path.
func check(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, err := configFlag("check", args, stderr)
	if err != nil {
		return err
	}
	cfg, cfgErr := config.Load(path, os.LookupEnv)
	problems := config.Problems(cfgErr)
	if cfg != nil {
		problems = append(problems, config.Problems(gateway.CheckMetadata(ctx, cfg, nil, time.Now()))...)
		problems = append(problems, config.Problems(gateway.CheckReplayStore(ctx, cfg))...)
	}
	if len(problems) > 0 {
		printProblems(stderr, path, errorsOf(problems))
		return errReported
	}
	fmt.Fprintf(stdout, "%s: OK (%d tenants)\n", path, len(cfg.Tenants))
	return nil
}

// tenants prints, for each tenant, what to type into Entra ID and the state
// of its IdP metadata and signing certificates.
func tenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	path, err := configFlag("tenants", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		printProblems(stderr, path, err)
		return errReported
	}
	now := time.Now()
	reports := gateway.LoadTenantReports(ctx, cfg, nil, now)
	gateway.WriteTenantReports(stdout, reports, now)
	for _, r := range reports {
		if !r.Ready {
			return fmt.Errorf("%d of %d tenants are not ready", notReady(reports), len(reports))
		}
	}
	return nil
}

func notReady(rs []gateway.TenantReport) int {
	n := 0
	for _, r := range rs {
		if !r.Ready {
			n++
		}
	}
	return n
}

func errorsOf(ps []*config.Problem) error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

func printProblems(w io.Writer, path string, err error) {
	problems := config.Problems(err)
	fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := demo.Options{}
	fs.StringVar(&o.Listen, "listen", demo.DefaultListen, "gateway address")
	fs.StringVar(&o.AdminListen, "admin-listen", demo.DefaultAdminListen, "metrics and health address")
	fs.StringVar(&o.IdPListen, "idp-listen", demo.DefaultIdPListen, "demo IdP address")
	fs.StringVar(&o.UpstreamListen, "upstream-listen", demo.DefaultUpstreamListen, "demo document service address")
	fs.StringVar(&o.Password, "password", "", "B.Simon's password (default: random, printed)")
	fs.StringVar(&o.Dir, "dir", "", "folder for the generated config, keys and documents (default: temporary)")
	verbose := fs.Bool("v", false, "log to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *verbose {
		o.Logger = newLogger(stderr, config.Log{Format: "text"})
	}
	return demo.Run(ctx, o, stdout)
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
