// Package docs is the demo document service: the unmodified "legacy
// backend" that `sso-gateway demo` runs behind the gateway, and that the
// integration tests use as their upstream.
//
// # Security
//
// The service trusts the X-Remote-* identity headers blindly, exactly as a
// real backend fronted by the gateway does. It performs no authentication of
// its own, so anyone who can reach it directly can claim to be anyone. It must
// only ever be reachable through the gateway: bind it to loopback or a
// private network, and never expose its listener.
//
// # Routes
//
//	GET  /                         HTML page: identity headers, documents, upload form
//	GET  /api/whoami               JSON echo of identity headers and the request line
//	GET  /documents/{name}         download (Range supported)
//	GET  /documents/{name}/sha256  streaming SHA-256 of a document
//	POST /documents                multipart/form-data upload (one file)
//	PUT  /documents/{name}         raw body upload
//	GET  /large?bytes=N            N deterministic pseudo-random bytes (see [LargeReader])
//	*    /dav/                     WebDAV over the document directory
//	GET  /ws                       websocket: greets with {"hello": user}, then echoes
//	GET  /slow?delay=2s            answers "done" after delay, unless cancelled first
//	GET  /healthz                  "ok"
//
// Uploads and downloads are streamed, so memory use does not grow with file
// size: tests push multi-gigabyte bodies through the gateway.
package docs

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/webdav"
)

// Options configures a [Service].
type Options struct {
	// Dir is the directory that holds the documents. It must exist. When it
	// is empty, New seeds it with a few sample documents so the demo page
	// has something to show.
	Dir string

	// Logger receives request failures and upload events. Nil discards them.
	Logger *slog.Logger
}

// Service is the demo document service. It is an [http.Handler]; build one
// with [New]. It is safe for concurrent use.
type Service struct {
	dir      string // absolute form of Options.Dir
	log      *slog.Logger
	page     *template.Template
	upgrader websocket.Upgrader
	mux      *http.ServeMux
}

var _ http.Handler = (*Service)(nil)

// maxSlowDelay bounds /slow so a typo cannot park a goroutine for days.
const maxSlowDelay = 10 * time.Minute

// New checks opts.Dir, seeds it with sample documents if it is empty, and
// returns a ready Service.
func New(opts Options) (*Service, error) {
	if opts.Dir == "" {
		return nil, errors.New("docs: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("docs: resolve dir %q: %w", opts.Dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("docs: document dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("docs: document dir %q is not a directory", dir)
	}
	page, err := template.New("page").Parse(pageHTML)
	if err != nil {
		return nil, fmt.Errorf("docs: parse page template: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		dir:      dir,
		log:      log,
		page:     page,
		upgrader: websocket.Upgrader{CheckOrigin: sameOrigin},
	}
	if err := s.seed(); err != nil {
		return nil, err
	}
	s.mux = s.routes()
	return s, nil
}

// ServeHTTP routes r to the service's handlers.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Service) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", s.handle(s.index))
	mux.HandleFunc("GET /api/whoami", s.whoami)
	mux.Handle("GET /documents/{name}", s.handle(s.download))
	mux.Handle("GET /documents/{name}/sha256", s.handle(s.digest))
	mux.Handle("POST /documents", s.handle(s.uploadMultipart))
	mux.Handle("PUT /documents/{name}", s.handle(s.uploadRaw))
	mux.Handle("GET /large", s.handle(s.large))
	mux.HandleFunc("GET /ws", s.websocket)
	mux.Handle("GET /slow", s.handle(s.slow))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})

	dav := &webdav.Handler{
		Prefix:     "/dav",
		FileSystem: webdav.Dir(s.dir),
		LockSystem: webdav.NewMemLS(),
		Logger: func(r *http.Request, err error) {
			if err != nil {
				s.log.Warn("docs: webdav request failed", "method", r.Method, "path", r.URL.Path, "error", err)
			}
		},
	}
	mux.Handle("/dav/", dav)
	// WebDAV clients (Windows, macOS Finder) often PROPFIND the mount point
	// without its trailing slash and do not follow the 301 the mux would send.
	mux.Handle("/dav", dav)
	return mux
}

// slow sleeps for ?delay= (default 1s) before answering, so tests can
// exercise the gateway's upstream timeouts. It gives up as soon as the
// request context ends, so a cancelled request does not hold a goroutine.
func (s *Service) slow(w http.ResponseWriter, r *http.Request) error {
	delay := time.Second
	if v := r.URL.Query().Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxSlowDelay {
			return &httpError{
				code: http.StatusBadRequest,
				msg:  fmt.Sprintf("delay must be a duration from 0s to %s", maxSlowDelay),
				err:  err,
			}
		}
		delay = d
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		// The client or the gateway gave up; nobody is left to answer.
		s.log.Debug("docs: slow request cancelled", slog.Float64("delay_seconds", delay.Seconds()), "error", context.Cause(r.Context()))
		return nil
	case <-t.C:
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "done")
	return nil
}
