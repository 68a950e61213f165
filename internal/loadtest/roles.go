package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"time"
)

// The servers the benchmark runs in processes of their own, as hidden
// subcommands of cmd/loadtest: the upstream, and the bare reverse proxy that
// is the ceiling for a net/http proxy. Each listens on a free port of
// 127.0.0.1 and writes its address to -addr-file once it accepts
// connections.
const (
	roleUpstream  = "upstream"
	roleBareProxy = "bareproxy"
	// roleYes answers 200 with no body to anything: the trivial
	// forward-auth endpoint the gateway's verify is held against.
	roleYes = "yes"
	// roleReplay answers 200 with no body and the header fields of
	// -headers (a JSON object of field → values) to anything: the
	// gateway's own forward-auth answer, given by a handler that does no
	// work. It tells what the answer costs to send (1 KiB of identity
	// with 20 groups) from what the gateway spends deciding it.
	roleReplay = "replay"
)

// Upstream paths and sizes.
const (
	// bodySize is the size of the page every proxying row fetches.
	bodySize = 1024
	// streamPath answers GET with ?bytes=N bytes, and reads and discards
	// the body of any other method, answering with its length.
	streamPath = "/stream"
	// pagePath is the page the proxying rows fetch; any path but
	// streamPath answers the same.
	pagePath = "/documents/report.html?view=1"
	// upstreamMark is a response header of the upstream's, to tell its
	// answers from a proxy's own.
	upstreamMark = "X-Loadtest-Upstream"
)

// runRole runs the server named by args[0] until ctx ends.
func runRole(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	addrFile := fs.String("addr-file", "", "write the listening address here once listening")
	upstream := fs.String("upstream", "", "the upstream URL (bareproxy)")
	headers := fs.String("headers", "", "a JSON file of the header fields to answer with (replay)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	var h http.Handler
	switch args[0] {
	case roleUpstream:
		h = newUpstream()
	case roleBareProxy:
		u, err := url.Parse(*upstream)
		if err != nil || u.Host == "" {
			return fmt.Errorf("bareproxy: -upstream %q is not a URL", *upstream)
		}
		h = newBareProxy(u)
	case roleYes:
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	case roleReplay:
		b, err := os.ReadFile(*headers)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		var answer http.Header
		if err := json.Unmarshal(b, &answer); err != nil {
			return fmt.Errorf("replay: %s: %w", *headers, err)
		}
		h = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			// Set, as a handler building the answer would: net/http
			// writes what the handler set, and copies it at WriteHeader.
			wh := w.Header()
			for k, v := range answer {
				wh[k] = v
			}
			w.WriteHeader(http.StatusOK)
		})
	default:
		return fmt.Errorf("unknown role %q", args[0])
	}
	return serve(ctx, h, *addrFile)
}

// serve serves h on a free port of 127.0.0.1 until ctx ends.
func serve(ctx context.Context, h http.Handler, addrFile string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if addrFile != "" {
		// Written in one step, so that the parent never reads half.
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(l.Addr().String()), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newUpstream returns the upstream: a 1 KiB page for any GET, N bytes for
// GET /stream?bytes=N, and for any other method the length of the body it
// read and discarded.
func newUpstream() http.Handler {
	page := make([]byte, bodySize)
	for i := range page {
		page[i] = 'a' + byte(i%26)
	}
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(upstreamMark, "1")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			buf := make([]byte, 256<<10)
			n, err := io.CopyBuffer(io.Discard, r.Body, buf)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		if r.URL.Path == streamPath {
			n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
			if err != nil || n < 0 {
				http.Error(w, "bytes: want a length", http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			for n > 0 {
				k := min(n, int64(len(chunk)))
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(page)))
		_, _ = w.Write(page)
	})
}

// newBareProxy returns httputil.ReverseProxy as its documentation shows it,
// with the default transport but for the idle pool: DefaultTransport keeps
// two idle connections per host, so under load most requests would open a
// new upstream connection; 512, as the gateway keeps, never churns.
func newBareProxy(upstream *url.URL) http.Handler {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 512
	return &httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(upstream) },
		Transport: tr,
	}
}
