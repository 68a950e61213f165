// Package loadtest is the in-repo load benchmark (cmd/loadtest): it runs
// the real sso-gateway binary and the servers it is compared with, each in
// a process of its own on 127.0.0.1, drives them with the same client and
// concurrency in one run, and reports throughput, latency and CPU per
// request side by side with their ratios, never lone absolute numbers: the
// machine it runs on is shared, and only what is measured together can be
// compared.
//
// Rows: the upstream direct, a bare httputil.ReverseProxy, nginx and
// Apache with mod_auth_mellon (when installed), and the gateway with a
// 20-group session, a 150-group session and thousands of sessions in
// rotation; logins per second with the in-memory and the Redis replay
// cache and with mellon; a large download and upload through the gateway,
// nginx and the bare proxy, with the proxy's peak memory.
package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Row IDs, for -rows, in the order they run and are reported.
const (
	rowDirect          = "direct"
	rowBare            = "bare"
	rowBare150         = "bare-150"
	rowNginx           = "nginx"
	rowMellon          = "mellon"
	rowMellon150       = "mellon-150"
	rowGateway         = "gateway"
	rowGateway150      = "gateway-150"
	rowGatewayRotation = "gateway-rotation"
	rowAuthTrivial     = "auth-trivial"
	rowAuthReplay      = "auth-replay"
	rowAuthGateway     = "auth-gateway"

	rowLoginMemory = "login-memory"
	rowLoginRedis  = "login-redis"
	rowLoginMellon = "login-mellon"

	rowDownloadGateway = "download-gateway"
	rowDownloadNginx   = "download-nginx"
	rowDownloadBare    = "download-bare"
	rowUploadGateway   = "upload-gateway"
	rowUploadNginx     = "upload-nginx"
	rowUploadBare      = "upload-bare"
)

// sections group the rows; -rows takes section names too.
var sections = []struct {
	name string
	rows []string
}{
	{"proxy", []string{rowDirect, rowBare, rowBare150, rowNginx, rowMellon, rowMellon150, rowGateway, rowGateway150, rowGatewayRotation, rowAuthTrivial, rowAuthReplay, rowAuthGateway}},
	{"logins", []string{rowLoginMemory, rowLoginRedis, rowLoginMellon}},
	{"streams", []string{rowDownloadGateway, rowDownloadNginx, rowDownloadBare, rowUploadGateway, rowUploadNginx, rowUploadBare}},
}

// Options say what to run and how long; Defaults fills in the zero ones.
type Options struct {
	// Short runs every row briefly, with fewer sessions and logins and
	// smaller streams: for CI, so that the tool cannot rot.
	Short bool
	// Duration is how long each proxying row is measured in each round,
	// after Warmup.
	Duration, Warmup time.Duration
	// Rounds is how many times the proxying and login rows run,
	// interleaved; each row reports its medians.
	Rounds int
	// Connections is the client's concurrency; Threads is wrk's -t.
	Connections, Threads int
	// Rows are the row IDs to run; nil runs every one.
	Rows map[string]bool
	// Sessions is how many distinct sessions the rotation row uses.
	Sessions int
	// Logins is how many logins each login row posts.
	Logins int
	// StreamBytes is the size of each download and upload.
	StreamBytes int64
	// JSON prints the report as JSON instead of tables, and Markdown as
	// the Markdown tables of the README.
	JSON, Markdown bool
	// GatewayBin is the sso-gateway binary; "" builds ./cmd/sso-gateway.
	GatewayBin string
	// Client is "wrk", "go", or "" for wrk when it is installed.
	Client string
	// Keep leaves the temporary folder (configurations, logs) in place.
	Keep bool
}

// Defaults returns o with its zero fields set: the reference
// settings (wrk -t2 -c32), and durations and sizes of a full run or, with
// Short, of a CI run.
func (o Options) Defaults() Options {
	full := Options{
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Rounds: 3,
		Sessions: 5000, Logins: 4000, StreamBytes: 1 << 30,
	}
	if o.Short {
		full = Options{
			Duration: 2 * time.Second, Warmup: time.Second, Rounds: 1,
			Sessions: 500, Logins: 500, StreamBytes: 64 << 20,
		}
	}
	if o.Duration == 0 {
		o.Duration = full.Duration
	}
	if o.Warmup == 0 {
		o.Warmup = full.Warmup
	}
	if o.Rounds == 0 {
		o.Rounds = full.Rounds
	}
	if o.Sessions == 0 {
		o.Sessions = full.Sessions
	}
	if o.Logins == 0 {
		o.Logins = full.Logins
	}
	if o.StreamBytes == 0 {
		o.StreamBytes = full.StreamBytes
	}
	if o.Connections == 0 {
		o.Connections = 32
	}
	if o.Threads == 0 {
		o.Threads = 2
	}
	return o
}

// runs reports whether row is to run.
func (o Options) runs(row string) bool { return o.Rows == nil || o.Rows[row] }

// runsAny reports whether any of rows is to run.
func (o Options) runsAny(rows ...string) bool { return slices.ContainsFunc(rows, o.runs) }

// parseRows parses -rows: row IDs and section names, comma-separated;
// "" or "all" is every row (nil).
func parseRows(s string) (map[string]bool, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	rows := map[string]bool{}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, sec := range sections {
			if name == sec.name {
				for _, r := range sec.rows {
					rows[r] = true
				}
				found = true
			}
			if slices.Contains(sec.rows, name) {
				rows[name] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-rows: unknown row %q; rows are %s", name, rowNames())
		}
	}
	return rows, nil
}

// rowNames lists the sections and rows, for messages.
func rowNames() string {
	var parts []string
	for _, sec := range sections {
		parts = append(parts, sec.name+" ("+strings.Join(sec.rows, ", ")+")")
	}
	return strings.Join(parts, "; ")
}

// ErrUsage means the arguments were wrong; the message is already printed.
var ErrUsage = errors.New("usage")

// Main runs cmd/loadtest with args (without the program name): the
// benchmark, or one of the servers it starts in processes of its own.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == roleUpstream || args[0] == roleBareProxy || args[0] == roleYes || args[0] == roleReplay) {
		return runRole(ctx, args, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return Run(ctx, o, stdout, stderr)
}

// parseFlags parses the benchmark's flags.
func parseFlags(args []string, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: go run ./cmd/loadtest [flags]

Runs the gateway and the servers it is compared with on 127.0.0.1 and prints
their throughput, latency and CPU side by side. Run it from the repository
(it builds ./cmd/sso-gateway) on an otherwise idle machine.

Flags:
`)
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nRows: %s.\n", rowNames())
	}
	var o Options
	var rows string
	var streamMiB int64
	fs.BoolVar(&o.Short, "short", false, "a few seconds per row, 500 sessions and logins, 64 MiB streams (for CI)")
	fs.DurationVar(&o.Duration, "duration", 0, "measurement per proxying row and round (default 10s, or 2s with -short)")
	fs.DurationVar(&o.Warmup, "warmup", 0, "warm-up before each measurement (default 2s, or 1s with -short)")
	fs.IntVar(&o.Rounds, "rounds", 0, "rounds of the proxying and login rows, interleaved; medians are reported (default 3, or 1 with -short)")
	fs.IntVar(&o.Connections, "connections", 32, "concurrent connections of the client")
	fs.IntVar(&o.Threads, "threads", 2, "wrk threads")
	fs.StringVar(&rows, "rows", "all", "rows or sections to run, comma-separated")
	fs.IntVar(&o.Sessions, "sessions", 0, "distinct sessions in the rotation row (default 5000, or 500 with -short)")
	fs.IntVar(&o.Logins, "logins", 0, "logins per login row (default 4000, or 500 with -short)")
	fs.Int64Var(&streamMiB, "stream-mib", 0, "MiB per download and upload (default 1024, or 64 with -short)")
	fs.BoolVar(&o.JSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.Markdown, "markdown", false, "print the report as the README's Markdown tables")
	fs.StringVar(&o.GatewayBin, "gateway", "", "the sso-gateway binary to measure (default: go build ./cmd/sso-gateway)")
	fs.StringVar(&o.Client, "client", "", `"wrk" or "go" (default: wrk when installed, else the built-in Go client)`)
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary folder with the generated configurations and logs")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, ErrUsage
	}
	usage := func(format string, a ...any) (Options, error) {
		fmt.Fprintf(stderr, "loadtest: "+format+"\n", a...)
		return o, ErrUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.Rows, err = parseRows(rows); err != nil {
		return usage("%v", err)
	}
	if o.Client != "" && o.Client != "wrk" && o.Client != "go" {
		return usage(`-client: got %q, want "wrk" or "go"`, o.Client)
	}
	if o.Duration < 0 || o.Warmup < 0 || o.Rounds < 0 || o.Connections < 1 || o.Threads < 1 || o.Sessions < 0 || o.Logins < 0 || streamMiB < 0 {
		return usage("durations, counts and sizes must be positive")
	}
	if o.JSON && o.Markdown {
		return usage("-json and -markdown exclude each other")
	}
	if o.Threads > o.Connections {
		return usage("-threads (%d) must not exceed -connections (%d)", o.Threads, o.Connections)
	}
	o.StreamBytes = streamMiB << 20
	return o.Defaults(), nil
}
