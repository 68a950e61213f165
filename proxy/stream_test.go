package proxy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/demo/docs"
)

// streamSize is the body size of TestStreaming: 256 MiB, or 64 MiB with
// -short.
func streamSize() int64 {
	if testing.Short() {
		return 64 << 20
	}
	return 256 << 20
}

// onlyReader hides every method but Read, so that neither net/http nor the
// gateway can size, seek or splice the body: it must be streamed.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func sha256Of(tb testing.TB, r io.Reader) (string, int64) {
	tb.Helper()
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, make([]byte, 256<<10))
	if err != nil {
		tb.Fatalf("hash: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// allocated runs f and reports the bytes the whole process allocated on the
// heap meanwhile. A proxy that buffered a body would allocate at least its
// size; one that streams allocates a few fixed buffers.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// allocLimit is the heap allocation allowed per transfer: generous (a
// streaming transfer allocates well under 1 MiB, even under -race), yet a
// fraction of the smallest body.
const allocLimit = 16 << 20

// TestStreaming pushes large generated bodies up through the gateway and
// pulls one down, checking digests at both ends and that memory use does
// not grow with the body. It is not parallel, so that the allocation
// figures are this test's alone.
func TestStreaming(t *testing.T) {
	n := streamSize()
	digests := map[int64]string{}
	digest := func(size int64) string {
		if _, ok := digests[size]; !ok {
			digests[size], _ = sha256Of(t, docs.LargeReader(size))
		}
		return digests[size]
	}
	up := newDocs(t)
	g := newGateway(t, up.URL)
	cookie := http.Header{"Cookie": {sessionCookie}}

	uploads := []struct {
		name          string
		size          int64
		contentLength int64 // -1: chunked
	}{
		{"sized", n, n},
		// Chunked framing is the point here, not size.
		{"chunked", 64 << 20, -1},
	}
	for _, tt := range uploads {
		t.Run("upload "+tt.name, func(t *testing.T) {
			want := digest(tt.size)
			doc := "/documents/upload-" + tt.name + ".bin"
			var resp *http.Response
			var body []byte
			start := time.Now()
			alloc := allocated(func() {
				req, err := http.NewRequest(http.MethodPut, g.srv.URL+doc, onlyReader{docs.LargeReader(tt.size)})
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = tt.contentLength
				req.Header.Set("Cookie", sessionCookie)
				req.Header.Set("Accept", "application/json")
				resp, err = g.client().Do(req)
				if err != nil {
					t.Fatalf("PUT: %v", err)
				}
				defer resp.Body.Close()
				body, _ = io.ReadAll(resp.Body)
			})
			t.Logf("PUT %d MiB in %s, %d KiB allocated", tt.size>>20, time.Since(start).Round(time.Millisecond), alloc>>10)
			wantStatus(t, resp, body, http.StatusCreated)
			if alloc > allocLimit {
				t.Errorf("heap allocated during a %d MiB upload: got %d MiB, want under %d MiB (not buffered)", tt.size>>20, alloc>>20, allocLimit>>20)
			}
			resp, body = g.do(t, http.MethodGet, doc+"/sha256", cookie, nil)
			wantStatus(t, resp, body, http.StatusOK)
			got := decodeJSON[struct {
				Size   int64  `json:"size"`
				SHA256 string `json:"sha256"`
			}](t, body)
			if got.SHA256 != want || got.Size != tt.size {
				t.Errorf("stored document: got %d bytes, sha256 %q, want %d bytes, sha256 %q", got.Size, got.SHA256, tt.size, want)
			}
		})
	}

	t.Run("download", func(t *testing.T) {
		want := digest(n)
		var (
			got, contentLength string
			read               int64
		)
		start := time.Now()
		alloc := allocated(func() {
			req, err := http.NewRequest(http.MethodGet, g.srv.URL+"/large?bytes="+strconv.FormatInt(n, 10), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Cookie", sessionCookie)
			resp, err := g.client().Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /large: got status %q, want 200", resp.Status)
			}
			contentLength = resp.Header.Get("Content-Length")
			got, read = sha256Of(t, resp.Body)
		})
		t.Logf("GET %d MiB in %s, %d KiB allocated", n>>20, time.Since(start).Round(time.Millisecond), alloc>>10)
		if got != want || read != n {
			t.Errorf("download: got %d bytes, sha256 %q, want %d bytes, sha256 %q", read, got, n, want)
		}
		if want := strconv.FormatInt(n, 10); contentLength != want {
			t.Errorf("Content-Length: got %q, want %q", contentLength, want)
		}
		if alloc > allocLimit {
			t.Errorf("heap allocated during a %d MiB download: got %d MiB, want under %d MiB (not buffered)", n>>20, alloc>>20, allocLimit>>20)
		}
	})
}

// TestStreamingIsIncremental proves streaming without measuring memory: the
// upstream must see the start of a request body before the client has sent
// the rest, and the client must see the start of a response before the
// upstream has written the rest. A gateway that buffered whole bodies
// would deadlock here, which the test reports as a timeout.
func TestStreamingIsIncremental(t *testing.T) {
	t.Parallel()
	const chunk = 64 << 10
	wait := func(t *testing.T, ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s: the gateway is buffering", what)
		}
	}

	t.Run("request body", func(t *testing.T) {
		t.Parallel()
		firstSeen := make(chan struct{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			buf := make([]byte, chunk)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			close(firstSeen)
			rest, _ := io.Copy(io.Discard, r.Body)
			_, _ = fmt.Fprint(w, chunk+rest)
		}))
		t.Cleanup(up.Close)
		g := newGateway(t, up.URL)
		pr, pw := io.Pipe()
		var buffered atomic.Bool
		go func() {
			block := make([]byte, chunk)
			if _, err := pw.Write(block); err != nil {
				return
			}
			select {
			case <-firstSeen:
			case <-time.After(20 * time.Second):
				buffered.Store(true)
				pw.CloseWithError(fmt.Errorf("upstream never saw the first %d bytes", chunk))
				return
			}
			for range 3 {
				if _, err := pw.Write(block); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, g.srv.URL+"/upload", pr)
		req.Header.Set("Cookie", sessionCookie)
		resp, err := g.client().Do(req)
		if buffered.Load() {
			t.Fatalf("upstream never saw the first %d bytes while the client held the rest: the gateway is buffering", chunk)
		}
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		wantStatus(t, resp, body, http.StatusOK)
		if got, want := string(body), strconv.Itoa(4*chunk); got != want {
			t.Errorf("upstream received: got %q bytes, want %q", got, want)
		}
	})

	for _, sized := range []bool{false, true} {
		name := "response body, chunked"
		if sized {
			name = "response body, with Content-Length"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clientGotFirst := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if sized {
					w.Header().Set("Content-Length", strconv.Itoa(4*chunk))
				}
				block := make([]byte, chunk)
				_, _ = w.Write(block)
				http.NewResponseController(w).Flush()
				select {
				case <-clientGotFirst:
				case <-r.Context().Done():
					return
				}
				for range 3 {
					_, _ = w.Write(block)
				}
			}))
			t.Cleanup(up.Close)
			g := newGateway(t, up.URL)
			req, _ := http.NewRequest(http.MethodGet, g.srv.URL+"/download", nil)
			req.Header.Set("Cookie", sessionCookie)
			resp, err := g.client().Do(req)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			defer resp.Body.Close()
			first := make(chan struct{})
			var n int64
			go func() {
				// The gateway may write the first block in smaller pieces;
				// a few KiB prove it did not wait for the whole body.
				if m, err := io.ReadFull(resp.Body, make([]byte, 4<<10)); err == nil {
					n += int64(m)
					close(first)
				}
			}()
			wait(t, first, "the first response bytes")
			close(clientGotFirst)
			rest, err := io.Copy(io.Discard, resp.Body)
			if err != nil {
				t.Fatalf("read rest: %v", err)
			}
			if got, want := n+rest, int64(4*chunk); got != want {
				t.Errorf("response bytes: got %d, want %d", got, want)
			}
		})
	}
}
