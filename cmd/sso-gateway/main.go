// Command sso-gateway is a multi-tenant SAML single sign-on reverse proxy:
// it signs users in with each customer's Microsoft Entra ID and forwards
// their requests to an unmodified backend with verified identity headers.
//
// Usage:
//
//	sso-gateway [serve] -config FILE  serve
//	sso-gateway check -config FILE    validate the config and every IdP's metadata
//	sso-gateway tenants -config FILE  Entra set-up values and state of each tenant
//	sso-gateway demo [flags]          run a demo IdP, document service and gateway
//	sso-gateway version
//	sso-gateway help [COMMAND]        this, with every command's flags
//
// This file is wiring only: internal/gateway does serve, check and
// tenants, internal/demo the demo, and internal/cli parses the flags and
// prints the help.
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/buildinfo"
	"github.com/sso-gateway/sso-gateway/internal/cli"
	"github.com/sso-gateway/sso-gateway/internal/demo"
	"github.com/sso-gateway/sso-gateway/internal/gateway"
)

// version, when set with -ldflags "-X main.version=...", overrides the
// version the Go toolchain stamps into the binary. It is not needed: a plain
// "go build" in a git checkout records the version and revision.
var version string

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
		if !errors.Is(err, cli.ErrReported) {
			fmt.Fprintln(os.Stderr, "sso-gateway:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Run(ctx, "sso-gateway", commands(), args, stdout, stderr)
}

// commands are the subcommands, in the order help lists them. "serve" is
// also what runs when the first argument is a flag.
func commands() []cli.Command {
	return []cli.Command{
		{Name: "serve", Args: "-config FILE", Summary: `Serve until SIGINT or SIGTERM; SIGHUP or a change to a configuration file reloads it. "serve" may be left out.`,
			Flags: cli.WithConfig("serve", func(*flag.FlagSet) cli.ConfigRunner {
				return func(ctx context.Context, path string, _, stderr io.Writer) error {
					return gateway.Run(ctx, path, stderr, version)
				}
			})},
		{Name: "check", Args: "-config FILE [-previous FILE]", Summary: "Validate the config and load every IdP's metadata; print every problem, global and tenant, and exit 1 if there is any.",
			Flags: cli.WithConfig("check", func(fs *flag.FlagSet) cli.ConfigRunner {
				previous := fs.String("previous", "", "the configuration in force now: warn of every tenant whose Identifier, Reply URL or Logout URL the new one changes (each breaks the tenant's logins until its Entra app is updated)")
				return func(ctx context.Context, path string, stdout, stderr io.Writer) error {
					return gateway.Check(ctx, path, *previous, stdout, stderr)
				}
			})},
		{Name: "tenants", Args: "-config FILE [-json]", Summary: "Print what to type into Entra ID for each tenant, and its state.",
			Flags: cli.WithConfig("tenants", func(fs *flag.FlagSet) cli.ConfigRunner {
				asJSON := fs.Bool("json", false, "print a JSON array, one object per tenant (lists are [] when empty, never null)")
				return func(ctx context.Context, path string, stdout, stderr io.Writer) error {
					return gateway.Tenants(ctx, path, *asJSON, stdout, stderr)
				}
			})},
		{Name: "demo", Args: "[flags]", Summary: "Run a demo IdP, document service and gateway on 127.0.0.1.", Flags: func() (*flag.FlagSet, cli.Runner) {
			o := demo.Options{Build: buildDemoGateway}
			fs := demo.FlagSet(&o)
			return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
				if err := cli.NoArgs(fs); err != nil {
					return err
				}
				o.LogTo = stderr
				return demo.Run(ctx, o, stdout)
			}
		}},
		{Name: "version", Summary: "Print the version, the VCS revision and the Go version.", Flags: func() (*flag.FlagSet, cli.Runner) {
			fs := flag.NewFlagSet("version", flag.ContinueOnError)
			return fs, func(_ context.Context, stdout, _ io.Writer) error {
				if err := cli.NoArgs(fs); err != nil {
					return err
				}
				info := buildinfo.Read()
				if version != "" {
					info.Version = version
				}
				fmt.Fprintln(stdout, info.Line())
				return nil
			}
		}},
	}
}

// buildDemoGateway assembles the demo's gateway, which the demo cannot
// import itself.
func buildDemoGateway(ctx context.Context, cfg *config.Config, log *slog.Logger) (demo.Gateway, error) {
	return gateway.Build(ctx, cfg, gateway.Deps{Logger: log, Registry: prometheus.NewRegistry(), Version: version})
}
