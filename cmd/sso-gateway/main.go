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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
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
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "sso-gateway:", err)
		}
		os.Exit(1)
	}
}

// errReported means the problems were already printed.
var errReported = errors.New("reported")

// runner runs a command once its flags are parsed.
type runner func(ctx context.Context, stdout, stderr io.Writer) error

// command is a subcommand: its synopsis, and its flags bound to the runner
// that uses them.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	flags   func() (*flag.FlagSet, runner)
}

// commands are the subcommands, in the order help lists them. "serve" is
// also what runs when the first argument is a flag.
func commands() []command {
	return []command{
		{"serve", "-config FILE", `Serve until SIGINT or SIGTERM; SIGHUP or a change to a configuration file reloads it. "serve" may be left out.`, configCommand("serve", serve)},
		{"check", "-config FILE [-previous FILE]", "Validate the config and load every IdP's metadata; print every problem, global and tenant, and exit 1 if there is any.", checkCommand},
		{"tenants", "-config FILE [-json]", "Print what to type into Entra ID for each tenant, and its state.", tenantsCommand},
		{"demo", "[flags]", "Run a demo IdP, document service and gateway on 127.0.0.1.", demoCommand},
		{"version", "", "Print the version, the VCS revision and the Go version.", versionCommand},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := "serve"
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "help" || a == "-h" || a == "-help" || a == "--help":
			return help(args[1:], stdout, stderr)
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	cmd, ok := lookup(name)
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", name)
	}
	fs, do := cmd.flags()
	fs.SetOutput(stderr) // parse errors
	fs.Usage = func() {} // printed below, to the right stream
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmd.usage(stdout)
			return nil
		}
		cmd.usage(stderr)
		return err
	}
	return do(ctx, stdout, stderr)
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// help prints the usage of every command, or of the one named.
func help(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stdout)
		return nil
	}
	cmd, ok := lookup(args[0])
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	cmd.usage(stdout)
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: sso-gateway COMMAND [flags]\n")
	for _, c := range commands() {
		fmt.Fprintln(w)
		c.usage(w)
	}
}

func (c command) usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n  %s\n", strings.TrimSpace("sso-gateway "+c.name+" "+c.args), c.summary)
	fs, _ := c.flags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// configCommand is a command whose one flag is -config FILE.
func configCommand(name string, do func(ctx context.Context, path string, stdout, stderr io.Writer) error) func() (*flag.FlagSet, runner) {
	return func() (*flag.FlagSet, runner) {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		path := configFlag(fs)
		return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
			if err := needConfig(fs, *path); err != nil {
				return err
			}
			return do(ctx, *path, stdout, stderr)
		}
	}
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "path to the YAML config file (required)")
}

func needConfig(fs *flag.FlagSet, path string) error {
	if path == "" || fs.NArg() > 0 {
		return errors.New("-config FILE is required")
	}
	return nil
}
