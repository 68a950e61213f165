// Package cli runs the subcommands of sso-gateway: it picks the command
// from the arguments, parses its flags and prints the help, so that
// cmd/sso-gateway only names the commands and wires them to the packages
// that do the work.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrReported means the problems were already printed: the caller exits 1
// without printing the error again.
var ErrReported = errors.New("reported")

// Runner runs a command once its flags are parsed.
type Runner func(ctx context.Context, stdout, stderr io.Writer) error

// Command is a subcommand: its synopsis, and its flags bound to the
// runner that uses them.
type Command struct {
	Name    string
	Args    string // the synopsis after the name
	Summary string
	Flags   func() (*flag.FlagSet, Runner)
}

// Run runs the command args name, with its flags. The first command is
// the default, which also runs when the first argument is a flag; "help",
// -h and --help print the usage of every command or of the one named.
func Run(ctx context.Context, prog string, cmds []Command, args []string, stdout, stderr io.Writer) error {
	name := cmds[0].Name
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "help" || a == "-h" || a == "-help" || a == "--help":
			return help(prog, cmds, args[1:], stdout, stderr)
		case !strings.HasPrefix(a, "-"):
			name, args = a, args[1:]
		}
	}
	cmd, ok := lookup(cmds, name)
	if !ok {
		usage(prog, cmds, stderr)
		return fmt.Errorf("unknown command %q", name)
	}
	fs, do := cmd.Flags()
	fs.SetOutput(stderr) // parse errors
	fs.Usage = func() {} // printed below, to the right stream
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmd.usage(prog, stdout)
			return nil
		}
		cmd.usage(prog, stderr)
		return err
	}
	return do(ctx, stdout, stderr)
}

func lookup(cmds []Command, name string) (Command, bool) {
	for _, c := range cmds {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// help prints the usage of every command, or of the one named.
func help(prog string, cmds []Command, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(prog, cmds, stdout)
		return nil
	}
	cmd, ok := lookup(cmds, args[0])
	if !ok {
		usage(prog, cmds, stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	cmd.usage(prog, stdout)
	return nil
}

func usage(prog string, cmds []Command, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s COMMAND [flags]\n", prog)
	for _, c := range cmds {
		fmt.Fprintln(w)
		c.usage(prog, w)
	}
}

func (c Command) usage(prog string, w io.Writer) {
	fmt.Fprintf(w, "%s\n  %s\n", strings.TrimSpace(prog+" "+c.Name+" "+c.Args), c.Summary)
	fs, _ := c.Flags()
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// NoArgs refuses arguments left after the flags.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// ConfigFlag adds the -config FILE flag that most commands need.
func ConfigFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "path to the YAML config file (required)")
}

// NeedConfig refuses a missing -config, or arguments after the flags.
func NeedConfig(fs *flag.FlagSet, path string) error {
	if path == "" || fs.NArg() > 0 {
		return errors.New("-config FILE is required")
	}
	return nil
}

// ConfigRunner runs a command that reads the configuration file at path.
type ConfigRunner func(ctx context.Context, path string, stdout, stderr io.Writer) error

// WithConfig is the Flags of a command whose flags are -config FILE,
// which it requires, and whatever bind adds; bind returns the runner.
func WithConfig(name string, bind func(fs *flag.FlagSet) ConfigRunner) func() (*flag.FlagSet, Runner) {
	return func() (*flag.FlagSet, Runner) {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		path := ConfigFlag(fs)
		do := bind(fs)
		return fs, func(ctx context.Context, stdout, stderr io.Writer) error {
			if err := NeedConfig(fs, *path); err != nil {
				return err
			}
			return do(ctx, *path, stdout, stderr)
		}
	}
}
