package metadata_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

// waitLong guards waits for something that happens at once when the code
// is right, so that a broken build fails instead of hanging.
const waitLong = 30 * time.Second

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// recordingTransport remembers the last request's context deadline and the
// last response's ContentLength.
type recordingTransport struct {
	next http.RoundTripper

	mu            sync.Mutex
	deadline      time.Time
	hasDeadline   bool
	contentLength int64
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	d, ok := req.Context().Deadline()
	resp, err := rt.next.RoundTrip(req)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.deadline, rt.hasDeadline = d, ok
	if resp != nil {
		rt.contentLength = resp.ContentLength
	}
	return resp, err
}

func TestFetchConditional(t *testing.T) {
	t.Parallel()
	const (
		etag    = `"v2"`
		lastMod = "Mon, 02 Jan 2006 15:04:05 GMT"
		oldETag = `"v1"`
		oldMod  = "Sun, 01 Jan 2006 00:00:00 GMT"
	)
	doc := []byte("<EntityDescriptor/>")
	tests := []struct {
		name       string
		prev       metadata.Validators
		wantINM    string
		wantIMS    string
		notChanged bool // the server answers 304 when asked about etag
		wantErr    error
		want       metadata.Validators
	}{
		{
			name: "first fetch asks unconditionally",
			want: metadata.Validators{ETag: etag, LastModified: lastMod},
		},
		{
			name: "ETag sent as If-None-Match; 304",
			prev: metadata.Validators{ETag: etag}, wantINM: etag,
			notChanged: true, wantErr: metadata.ErrNotModified,
			want: metadata.Validators{ETag: etag},
		},
		{
			name: "Last-Modified sent as If-Modified-Since; 304",
			prev: metadata.Validators{LastModified: lastMod}, wantIMS: lastMod,
			notChanged: true, wantErr: metadata.ErrNotModified,
			want: metadata.Validators{LastModified: lastMod},
		},
		{
			name: "both sent; 304 keeps them",
			prev: metadata.Validators{ETag: etag, LastModified: lastMod}, wantINM: etag, wantIMS: lastMod,
			notChanged: true, wantErr: metadata.ErrNotModified,
			want: metadata.Validators{ETag: etag, LastModified: lastMod},
		},
		{
			name: "stale validators; 200 brings new ones",
			prev: metadata.Validators{ETag: oldETag, LastModified: oldMod}, wantINM: oldETag, wantIMS: oldMod,
			want: metadata.Validators{ETag: etag, LastModified: lastMod},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			headers := make(chan http.Header, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				headers <- r.Header.Clone()
				w.Header().Set("ETag", etag)
				w.Header().Set("Last-Modified", lastMod)
				if tt.notChanged {
					w.WriteHeader(http.StatusNotModified)
					return
				}
				_, _ = w.Write(doc)
			}))
			t.Cleanup(srv.Close)
			data, v, err := metadata.Fetch(t.Context(), srv.Client(), mustURL(t, srv.URL), tt.prev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			got := <-headers
			if inm := got.Get("If-None-Match"); inm != tt.wantINM {
				t.Errorf("If-None-Match: got %q, want %q", inm, tt.wantINM)
			}
			if ims := got.Get("If-Modified-Since"); ims != tt.wantIMS {
				t.Errorf("If-Modified-Since: got %q, want %q", ims, tt.wantIMS)
			}
			if accept := got.Get("Accept"); !strings.Contains(accept, "application/samlmetadata+xml") {
				t.Errorf("Accept: got %q, want it to contain %q", accept, "application/samlmetadata+xml")
			}
			if v != tt.want {
				t.Errorf("validators: got %q, want %q", v, tt.want)
			}
			wantData := doc
			if tt.wantErr != nil {
				wantData = nil
			}
			if !bytes.Equal(data, wantData) {
				t.Errorf("data: got %q, want %q", data, wantData)
			}
		})
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("x"), metadata.MaxSize+1)
	tests := []struct {
		name string
		h    http.HandlerFunc
		// wantLength is the response's ContentLength as the client saw
		// it, to prove which case is tested (-1: none sent); 0: any.
		wantLength int64
		unusable   bool
		want       string // "" accepts
	}{
		{
			name: "500",
			h:    func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) },
			want: "HTTP status 500 Internal Server Error",
		},
		{
			name: "404",
			h:    http.NotFound,
			want: "HTTP status 404 Not Found",
		},
		{
			name: "over MaxSize with Content-Length",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				_, _ = w.Write(big)
			},
			wantLength: int64(len(big)),
			unusable:   true,
			want:       strconv.Itoa(len(big)) + " bytes",
		},
		{
			name: "over MaxSize without Content-Length",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.(http.Flusher).Flush() // headers go out without a length
				_, _ = w.Write(big)
			},
			wantLength: -1,
			unusable:   true,
			want:       "larger than " + strconv.Itoa(metadata.MaxSize) + " bytes",
		},
		{
			name: "exactly MaxSize without Content-Length",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.(http.Flusher).Flush()
				_, _ = w.Write(big[:metadata.MaxSize])
			},
			wantLength: -1,
		},
		{
			name: "body shorter than its Content-Length",
			h: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", "1000")
				_, _ = w.Write([]byte("<EntityDescriptor"))
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler) // close the connection mid-body
			},
			want: "unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tt.h)
			t.Cleanup(srv.Close)
			rt := &recordingTransport{next: srv.Client().Transport}
			data, _, err := metadata.Fetch(t.Context(), &http.Client{Transport: rt}, mustURL(t, srv.URL), metadata.Validators{})
			rt.mu.Lock()
			length := rt.contentLength
			rt.mu.Unlock()
			if tt.wantLength != 0 && length != tt.wantLength {
				t.Fatalf("the client saw Content-Length %d, want %d; the case does not test what it says", length, tt.wantLength)
			}
			if tt.want == "" {
				if err != nil || len(data) != metadata.MaxSize {
					t.Fatalf("got %d bytes and %v, want %d bytes", len(data), err, metadata.MaxSize)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %d bytes, want an error containing %q", len(data), tt.want)
			}
			if data != nil {
				t.Errorf("got %d bytes with the error, want none", len(data))
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fetch IdP metadata: ") {
				t.Errorf("got %q, want %q containing %q", err, "fetch IdP metadata: ...", tt.want)
			}
			if errors.Is(err, metadata.ErrNotModified) {
				t.Errorf("got %q, want an error other than ErrNotModified", err)
			}
			if got := errors.Is(err, metadata.ErrUnusable); got != tt.unusable {
				t.Errorf("errors.Is(err, ErrUnusable): got %v, want %v", got, tt.unusable)
			}
		})
	}
}

func TestFetchUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := mustURL(t, srv.URL)
	srv.Close() // nothing listens there now
	_, _, err := metadata.Fetch(t.Context(), http.DefaultClient, u, metadata.Validators{})
	if err == nil || !strings.HasPrefix(err.Error(), "fetch IdP metadata: ") {
		t.Errorf("got %v, want a fetch error", err)
	}
}

// TestFetchContext: a fetch ends when its context does, and never waits
// longer than FetchTimeout whatever the caller's deadline.
func TestFetchContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// ctx returns the caller's context, and cancels it once the
		// request has reached the server.
		ctx  func(t *testing.T, arrived <-chan struct{}) context.Context
		want error
	}{
		{
			name: "cancelled while waiting for the server",
			ctx: func(t *testing.T, arrived <-chan struct{}) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				go func() {
					<-arrived
					cancel()
				}()
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "deadline passes while waiting for the server",
			ctx: func(t *testing.T, _ <-chan struct{}) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-r.Context().Done() // never answers
			}))
			t.Cleanup(srv.Close)
			done := make(chan error, 1)
			go func() {
				_, _, err := metadata.Fetch(tt.ctx(t, arrived), srv.Client(), mustURL(t, srv.URL), metadata.Validators{})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
			case <-time.After(waitLong):
				t.Fatal("Fetch did not return after its context ended")
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		parent time.Duration // the caller's deadline; 0: none
		want   time.Duration // the fetch's deadline
	}{
		{"no deadline: FetchTimeout", 0, metadata.FetchTimeout},
		{"a longer deadline: FetchTimeout", time.Hour, metadata.FetchTimeout},
		{"a shorter deadline: the caller's", 5 * time.Second, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }))
			t.Cleanup(srv.Close)
			rt := &recordingTransport{next: srv.Client().Transport}
			ctx := t.Context()
			before := time.Now()
			if tt.parent > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.parent)
				defer cancel()
			}
			if _, _, err := metadata.Fetch(ctx, &http.Client{Transport: rt}, mustURL(t, srv.URL), metadata.Validators{}); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			rt.mu.Lock()
			deadline, ok := rt.deadline, rt.hasDeadline
			rt.mu.Unlock()
			if !ok {
				t.Fatalf("the request had no deadline, want one %s away", tt.want)
			}
			if deadline.Before(before.Add(tt.want)) || deadline.After(after.Add(tt.want)) {
				t.Errorf("deadline: got %s after the call, want %s", deadline.Sub(before), tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"https://login.microsoftonline.com/x/federationmetadata/2007-06/federationmetadata.xml?appid=1",
			"https://login.microsoftonline.com/x/federationmetadata/2007-06/federationmetadata.xml?appid=REDACTED"},
		{"https://idp.example/md?token=s3cret&sig=abc", "https://idp.example/md?sig=REDACTED&token=REDACTED"},
		{"https://user:pass@idp.example/md", "https://user:xxxxx@idp.example/md"},
		{"https://idp.example/md#frag", "https://idp.example/md"},
		{"https://idp.example/md?%zz", "https://idp.example/md?REDACTED"},
		{"https://idp.example/md", "https://idp.example/md"},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := metadata.Redact(u); got != c.want {
			t.Errorf("Redact(%q): got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestFetchErrorRedacted: the error of a fetch that fails, which reaches
// logs, /readyz and /tenants, does not carry the URL's query.
func TestFetchErrorRedacted(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://127.0.0.1:1/md.xml?token=s3cret-value")
	_, _, err := metadata.Fetch(t.Context(), http.DefaultClient, u, metadata.Validators{})
	if err == nil || strings.Contains(err.Error(), "s3cret-value") || !strings.Contains(err.Error(), "token=REDACTED") {
		t.Errorf("got %v, want an error naming the URL without its token", err)
	}
}
