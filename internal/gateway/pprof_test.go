package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fetch sends a request to addr (a listener's host:port) with the public
// Host, as a browser or an operator's port-forward would, and returns the
// status and body.
func fetch(t *testing.T, method, addr, path, body string, cookies ...*http.Cookie) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = testPublicHost
	if body != "" {
		req.Header.Set("Content-Type", "text/plain")
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// gunzipped returns b decompressed, or fails the test: pprof serves
// profiles (proto format) gzipped.
func gunzipped(t *testing.T, what string, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: not a gzipped profile: %v (%q)", what, err, truncate(b))
	}
	out, err := io.ReadAll(zr)
	if err != nil || len(out) == 0 {
		t.Fatalf("%s: got %d bytes, error %v, want a profile", what, len(out), err)
	}
	return out
}

func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// TestProfilerOnAdminListener: the admin listener serves Go's profiler:
// the index, the command line, symbols, a CPU profile, an execution trace
// and every named profile; nothing else under /debug/pprof/.
func TestProfilerOnAdminListener(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.NotFoundHandler(), "")
	admin := startServing(t, tg.gw).admin

	t.Run("index", func(t *testing.T) {
		code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/", "")
		if code != http.StatusOK || !bytes.Contains(body, []byte("Types of profiles available")) {
			t.Errorf("got %d %q, want 200 and the index", code, truncate(body))
		}
	})
	t.Run("cmdline", func(t *testing.T) {
		code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/cmdline", "")
		if code != http.StatusOK || !bytes.Contains(body, []byte(".test")) {
			t.Errorf("got %d %q, want 200 and the test binary's command line", code, truncate(body))
		}
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run("symbol "+method, func(t *testing.T) {
			code, body := fetch(t, method, admin, "/debug/pprof/symbol", "")
			if code != http.StatusOK || !bytes.HasPrefix(body, []byte("num_symbols: 1")) {
				t.Errorf("got %d %q, want 200 and num_symbols: 1", code, truncate(body))
			}
		})
	}
	t.Run("CPU profile", func(t *testing.T) {
		code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/profile?seconds=1", "")
		if code != http.StatusOK {
			t.Fatalf("got %d %q, want 200", code, truncate(body))
		}
		gunzipped(t, "profile", body)
	})
	t.Run("trace", func(t *testing.T) {
		code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/trace?seconds=1", "")
		if code != http.StatusOK || !bytes.HasPrefix(body, []byte("go 1.")) {
			t.Errorf("got %d %q, want 200 and an execution trace", code, truncate(body))
		}
	})
	for name, text := range map[string]string{ // the profile as text (debug=1) starts with text
		"allocs": "heap profile:", "block": "--- contention:", "goroutine": "goroutine profile:",
		"heap": "heap profile:", "mutex": "--- mutex:", "threadcreate": "threadcreate profile:",
	} {
		t.Run(name, func(t *testing.T) {
			code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/"+name, "")
			if code != http.StatusOK {
				t.Fatalf("got %d %q, want 200", code, truncate(body))
			}
			gunzipped(t, name, body)
			code, body = fetch(t, http.MethodGet, admin, "/debug/pprof/"+name+"?debug=1", "")
			if code != http.StatusOK || !bytes.HasPrefix(body, []byte(text)) {
				t.Errorf("debug=1: got %d %q, want 200 and %q", code, truncate(body), text)
			}
		})
	}
	t.Run("unknown profile", func(t *testing.T) {
		if code, body := fetch(t, http.MethodGet, admin, "/debug/pprof/nonesuch", ""); code != http.StatusNotFound {
			t.Errorf("got %d %q, want 404", code, truncate(body))
		}
	})
}

// TestProfilerNotOnPublicListener: the public listener never serves the
// profiler, nor anything net/http/pprof and expvar put on
// http.DefaultServeMux: without a session those paths are refused like
// any other, with one they are the upstream's.
func TestProfilerNotOnPublicListener(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path)
	}), "")
	public := startServing(t, tg.gw).public
	session := tg.signIn(t)
	paths := []string{
		"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/symbol",
		"/debug/pprof/trace?seconds=1", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=2", "/debug/vars",
	}
	// What the profiler's and expvar's answers hold; the 401 names the
	// path it was asked for.
	markers := []string{"\x1f\x8b", "Types of profiles", "goroutine profile:", "num_symbols", "memstats", ".test", "go 1."}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			code, body := fetch(t, http.MethodGet, public, path, "")
			if code != http.StatusUnauthorized {
				t.Errorf("without a session: got %d %q, want 401", code, truncate(body))
			}
			for _, m := range markers {
				if bytes.Contains(body, []byte(m)) {
					t.Errorf("without a session: got %q, which holds %q", truncate(body), m)
				}
			}
			code, body = fetch(t, http.MethodGet, public, path, "", session)
			want := "upstream " + strings.Split(path, "?")[0]
			if code != http.StatusOK || string(body) != want {
				t.Errorf("with a session: got %d %q, want 200 %q", code, truncate(body), want)
			}
		})
	}
}
