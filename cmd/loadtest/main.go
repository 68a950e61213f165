// Command loadtest is the gateway's load benchmark: it builds and starts
// the real sso-gateway, the upstream behind it and the servers it is
// compared with (a bare httputil.ReverseProxy; nginx and Apache with
// mod_auth_mellon when installed), all on 127.0.0.1, drives them with the
// same client in one run, and prints throughput, latency, CPU per request,
// logins per second and streaming throughput side by side, with their
// ratios. See README.md, "Performance".
//
//	go run ./cmd/loadtest          # the full run (about 10 minutes)
//	go run ./cmd/loadtest -short   # a few seconds per row, for CI
//	go run ./cmd/loadtest -h       # every flag
//
// The logic is in internal/loadtest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sso-gateway/sso-gateway/internal/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal stops the run, which kills what it started;
		// restoring the default lets a second one end it at once.
		<-ctx.Done()
		stop()
	}()
	err := loadtest.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, loadtest.ErrUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
