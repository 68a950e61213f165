package cluster

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// switchServer is an HTTP server on a fixed 127.0.0.1 port that a test can
// take down (closed listener and connections: "connection refused") and
// bring back on the same port, and whose handler reads a mode the test
// switches.
type switchServer struct {
	name    string
	addr    string
	handler http.Handler
	mode    atomic.Value // string; what the handler does, see each handler

	mu  sync.Mutex
	srv *http.Server // nil while down
}

// newSwitchServer starts h on a free port of 127.0.0.1, in mode "ok", and
// closes it when t ends.
func newSwitchServer(t testing.TB, name string, h func(s *switchServer) http.Handler) *switchServer {
	t.Helper()
	s := &switchServer{name: name}
	s.mode.Store("ok")
	s.handler = h(s)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.down)
	return s
}

func (s *switchServer) url() string { return "http://" + s.addr }

func (s *switchServer) setMode(m string) { s.mode.Store(m) }
func (s *switchServer) getMode() string  { return s.mode.Load().(string) }

func (s *switchServer) serve(l net.Listener) {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// down closes the listener and every connection, so that connecting is
// refused and requests in flight break off.
func (s *switchServer) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same port. Another process could take the port
// meanwhile; that fails the test with a clear message.
func (s *switchServer) up(t testing.TB) {
	t.Helper()
	var l net.Listener
	err := poll(t.Context(), 5*time.Second, 50*time.Millisecond, func() (err error) {
		l, err = net.Listen("tcp", s.addr)
		return err
	})
	if err != nil {
		t.Fatalf("%s: listen again on %s: %v", s.name, s.addr, err)
	}
	s.serve(l)
}

// upstreamReply is what the upstream answers to every proxied request, so
// that the test sees what the gateway forwarded.
type upstreamReply struct {
	User   string `json:"user"`   // X-Remote-User
	Tenant string `json:"tenant"` // X-Remote-Tenant
	Path   string `json:"path"`   // the path as the upstream received it
	Cookie string `json:"cookie"` // the Cookie header, which must hold no gateway cookie
}

// upstreamHandler is the document service: modes "ok" and "slow" (sleep
// longer than the gateway's upstream_timeout before answering). Every path
// answers an upstreamReply as JSON, except /download (and under any
// prefix, .../download), which streams downloadSize bytes of
// downloadByte(i) over about downloadTime.
func upstreamHandler(s *switchServer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.getMode() == "slow" {
			select {
			case <-time.After(3 * upstreamTimeout):
			case <-r.Context().Done():
				return
			}
		}
		if len(r.URL.Path) >= len("/download") && r.URL.Path[len(r.URL.Path)-len("/download"):] == "/download" {
			serveDownload(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "docs")
		_ = json.NewEncoder(w).Encode(upstreamReply{
			User:   r.Header.Get("X-Remote-User"),
			Tenant: r.Header.Get("X-Remote-Tenant"),
			Path:   r.URL.Path,
			Cookie: r.Header.Get("Cookie"),
		})
	})
}

// The download: 2 MiB in 64 chunks of 32 KiB, one every downloadTime/64.
const (
	downloadSize   = 2 << 20
	downloadChunks = 64
	downloadTime   = 3 * time.Second
)

// downloadByte is byte i of the download: not constant, so that a lost or
// repeated chunk changes the checksum.
func downloadByte(i int) byte { return byte(i*7 + i>>11) }

// downloadSum is the SHA-256 of the whole download.
func downloadSum() [32]byte {
	b := make([]byte, downloadSize)
	for i := range b {
		b[i] = downloadByte(i)
	}
	return sha256.Sum256(b)
}

func serveDownload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(downloadSize))
	rc := http.NewResponseController(w)
	chunk := make([]byte, downloadSize/downloadChunks)
	tick := time.NewTicker(downloadTime / downloadChunks)
	defer tick.Stop()
	for c := range downloadChunks {
		for i := range chunk {
			chunk[i] = downloadByte(c*len(chunk) + i)
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		_ = rc.Flush()
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		}
	}
}

// metadataHandler serves one IdP's metadata at every path, in modes "ok",
// "error" (500) and "hang" (no answer until the client gives up or the
// mode changes). served counts the documents sent.
func metadataHandler(doc []byte, served *atomic.Int64) func(s *switchServer) http.Handler {
	return func(s *switchServer) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for s.getMode() == "hang" {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			if s.getMode() == "error" {
				http.Error(w, "the IdP is having a bad day", http.StatusInternalServerError)
				return
			}
			served.Add(1)
			w.Header().Set("Content-Type", "application/samlmetadata+xml")
			_, _ = w.Write(doc)
		})
	}
}

var errNotYet = errors.New("not yet")
