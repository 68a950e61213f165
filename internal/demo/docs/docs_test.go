package docs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// newServer starts a Service on a fresh, seeded directory.
func newServer(t *testing.T) (dir string, srv *httptest.Server) {
	t.Helper()
	dir = t.TempDir()
	s, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv = httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return dir, srv
}

// client does not follow redirects, so tests see the status the service sent.
func client(srv *httptest.Server) *http.Client {
	return &http.Client{
		Transport: srv.Client().Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: time.Minute,
	}
}

// do sends one request and returns the response with its whole body.
func do(t *testing.T, srv *httptest.Server, method, path string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client(srv).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, b
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: got status %q, want %q (body %q)", resp.Request.Method, resp.Request.URL.Path,
			http.StatusText(resp.StatusCode)+" "+strconv.Itoa(resp.StatusCode),
			http.StatusText(want)+" "+strconv.Itoa(want), body)
	}
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode JSON %q: %v", body, err)
	}
	return v
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tempFiles lists in-flight upload files left in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestNew(t *testing.T) {
	t.Parallel()
	seeded := []string{"Engagement Letter.txt", "Matter 2024-117 Brief.txt", "Q3 Board Minutes.md"}
	tests := []struct {
		name      string
		dir       func(t *testing.T) string
		wantErr   bool
		wantIs    error
		wantFiles []string
	}{
		{name: "no dir", dir: func(*testing.T) string { return "" }, wantErr: true},
		{
			name:    "missing dir",
			dir:     func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			wantErr: true,
			wantIs:  fs.ErrNotExist,
		},
		{
			name: "file, not dir",
			dir: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: true,
		},
		{name: "empty dir is seeded", dir: func(t *testing.T) string { return t.TempDir() }, wantFiles: seeded},
		{
			name: "non-empty dir is left alone",
			dir: func(t *testing.T) string {
				d := t.TempDir()
				if err := os.WriteFile(filepath.Join(d, "mine.txt"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				return d
			},
			wantFiles: []string{"mine.txt"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tt.dir(t)
			s, err := New(Options{Dir: dir})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q): got nil error, want one", dir)
				}
				if !strings.HasPrefix(err.Error(), "docs: ") {
					t.Errorf("got error %q, want prefix %q", err, "docs: ")
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("got error %q, want errors.Is %q", err, tt.wantIs)
				}
				return
			}
			if err != nil || s == nil {
				t.Fatalf("New(%q): %v", dir, err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantFiles) {
				t.Errorf("got files %q, want %q", got, tt.wantFiles)
			}
		})
	}
}

func TestIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  http.Header
		setup   func(t *testing.T, dir string)
		want    []string
		notWant []string
	}{
		{
			name: "identity headers and documents",
			header: http.Header{
				"X-Remote-User":     {"alice"},
				"X-Remote-Email":    {"alice@acme.example"},
				"X-Remote-Name":     {"<script>alert(1)</script>"},
				"X-Remote-Groups":   {"staff,legal"},
				"X-Remote-Tenant":   {"acme"},
				"X-Remote-Extra":    {"seen"},
				"X-Forwarded-Host":  {"docs.acme.example"},
				"X-Forwarded-Proto": {"https"},
				"X-Correlation-Id":  {"corr-123"},
				"Authorization":     {"Bearer secret"},
			},
			want: []string{
				"<title>Demo Document Service</title>",
				`id="remote-user">alice</dd>`,
				`id="remote-email">alice@acme.example</dd>`,
				`id="remote-name">&lt;script&gt;alert(1)&lt;/script&gt;</dd>`,
				`id="remote-groups">staff,legal</dd>`,
				`<ul id="remote-group-list"><li>staff</li><li>legal</li></ul>`,
				`id="remote-tenant">acme</dd>`,
				"<code>X-Remote-Extra</code></th><td><code>seen</code>",
				"<code>X-Forwarded-Host</code></th><td><code>docs.acme.example</code>",
				"<code>X-Forwarded-Proto</code></th><td><code>https</code>",
				"<code>X-Correlation-Id</code></th><td><code>corr-123</code>",
				`<ul id="documents">`,
				`<a href="/documents/Engagement%20Letter.txt">Engagement Letter.txt</a>`,
				`<a href="/documents/Q3%20Board%20Minutes.md">Q3 Board Minutes.md</a>`,
				`<a href="/documents/Matter%202024-117%20Brief.txt">Matter 2024-117 Brief.txt</a>`,
				`href="/auth/api/v1/saml/logout">Sign out</a>`,
				`<form id="upload" method="post" action="/documents" enctype="multipart/form-data">`,
				"served by the upstream",
			},
			notWant: []string{"<script>", "Bearer secret", "No identity headers received."},
		},
		{
			// The gateway quotes a group whose name holds a comma: it
			// is one group, not a name and an ID.
			name:   "quoted groups",
			header: http.Header{"X-Remote-Groups": {`"Finance,00000000-0000-0000-0000-00000000ad01","say \"hi\""," padded ",0b6e2b7c`}},
			want: []string{
				`<ul id="remote-group-list"><li>Finance,00000000-0000-0000-0000-00000000ad01</li><li>say &#34;hi&#34;</li><li> padded </li><li>0b6e2b7c</li></ul>`,
			},
			notWant: []string{"<li>00000000-0000-0000-0000-00000000ad01</li>", "remote-groups-invalid"},
		},
		{
			name:   "groups that are no list",
			header: http.Header{"X-Remote-Groups": {`"unterminated`}},
			want:   []string{`<span id="remote-groups-invalid">not a valid list</span>`},
		},
		{
			name: "no identity headers",
			want: []string{
				`id="remote-user"></dd>`,
				`id="remote-email"></dd>`,
				`id="remote-name"></dd>`,
				`id="remote-groups"></dd>`,
				`<ul id="remote-group-list"></ul>`,
				`id="remote-tenant"></dd>`,
				"No identity headers received.",
			},
		},
		{
			name: "hostile file names are escaped; dirs and temp files hidden",
			setup: func(t *testing.T, dir string) {
				for _, name := range []string{"<img src=x onerror=alert(1)>.txt", tempPrefix + "inflight", "a?b#c.txt"} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Mkdir(filepath.Join(dir, "Subfolder"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{
				"&lt;img src=x onerror=alert(1)&gt;.txt</a>",
				`<a href="/documents/a%3Fb%23c.txt">a?b#c.txt</a>`,
			},
			notWant: []string{"<img", tempPrefix, "Subfolder"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, srv := newServer(t)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			resp, body := do(t, srv, http.MethodGet, "/", nil, tt.header)
			wantStatus(t, resp, body, http.StatusOK)
			if got, want := resp.Header.Get("Content-Type"), "text/html; charset=utf-8"; got != want {
				t.Errorf("Content-Type: got %q, want %q", got, want)
			}
			page := string(body)
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("page: got %q, want it to contain %q", page, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(page, w) {
					t.Errorf("page: got %q, want it not to contain %q", page, w)
				}
			}
		})
	}
}

func TestWhoami(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	host := srv.Listener.Addr().String()
	tests := []struct {
		name   string
		uri    string
		header http.Header
		want   map[string]string
	}{
		{
			name: "escaped query kept verbatim",
			uri:  "/api/whoami?a=1&b=%2F",
			header: http.Header{
				"X-Remote-User":     {"alice"},
				"X-Remote-Groups":   {"staff,legal"},
				"X-Forwarded-For":   {"203.0.113.7"},
				"X-Forwarded-Proto": {"https"},
				"X-Correlation-Id":  {"corr-1"},
				"Cookie":            {"app=1; other=2"},
				"Authorization":     {"Bearer not-echoed"},
			},
			want: map[string]string{
				"X-Remote-User":     "alice",
				"X-Remote-Groups":   "staff,legal",
				"X-Forwarded-For":   "203.0.113.7",
				"X-Forwarded-Proto": "https",
				"X-Correlation-Id":  "corr-1",
				"cookie":            "app=1; other=2",
				"method":            "GET",
				"path":              "/api/whoami",
				"raw_query":         "a=1&b=%2F",
				"request_uri":       "/api/whoami?a=1&b=%2F",
				"host":              host,
			},
		},
		{
			name: "no query, no identity",
			uri:  "/api/whoami",
			want: map[string]string{
				"cookie": "", "method": "GET", "path": "/api/whoami",
				"raw_query": "", "request_uri": "/api/whoami", "host": host,
			},
		},
		{
			name: "duplicates joined, underscore spelling shown",
			uri:  "/api/whoami?q=%E2%9C%93&flag",
			header: http.Header{
				"X-Remote-User": {"alice", "mallory"},
				"X_remote_user": {"smuggled"},
			},
			want: map[string]string{
				"X-Remote-User": "alice, mallory",
				"X_remote_user": "smuggled",
				"cookie":        "", "method": "GET", "path": "/api/whoami",
				"raw_query": "q=%E2%9C%93&flag", "request_uri": "/api/whoami?q=%E2%9C%93&flag", "host": host,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, tt.uri, nil, tt.header)
			wantStatus(t, resp, body, http.StatusOK)
			got := decodeJSON[map[string]string](t, body)
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s: got %q, want %q", k, got[k], want)
				}
			}
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected key %q: got %q, want it absent", k, got[k])
				}
			}
		})
	}
}

func TestPutGetRoundTrip(t *testing.T) {
	t.Parallel()
	big, err := io.ReadAll(io.LimitReader(LargeReader(3<<20+17), 3<<20+17))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  string
		body []byte
	}{
		{name: "small", doc: "Contract.txt", body: []byte("hello, world\n")},
		{name: "empty", doc: "empty.txt", body: nil},
		{name: "unicode name", doc: "Ünïcode Brief ✓.txt", body: []byte("ünïcode")},
		{name: "reserved URL chars", doc: `a?b#c%d;e "quoted".txt`, body: []byte("x")},
		{name: "overwrites seeded doc", doc: "Engagement Letter.txt", body: []byte("replaced")},
		{name: "multi-block", doc: "big.bin", body: big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, srv := newServer(t)
			wantSum := sha256Hex(tt.body)

			resp, body := do(t, srv, http.MethodPut, documentPath(tt.doc), bytes.NewReader(tt.body), nil)
			wantStatus(t, resp, body, http.StatusCreated)
			up := decodeJSON[stored](t, body)
			if want := (stored{Name: tt.doc, Size: int64(len(tt.body)), SHA256: wantSum}); up != want {
				t.Errorf("PUT response: got %q, want %q", fmt.Sprint(up), fmt.Sprint(want))
			}
			if got, want := resp.Header.Get("Location"), documentPath(tt.doc); got != want {
				t.Errorf("Location: got %q, want %q", got, want)
			}

			resp, body = do(t, srv, http.MethodGet, documentPath(tt.doc), nil, nil)
			wantStatus(t, resp, body, http.StatusOK)
			if !bytes.Equal(body, tt.body) {
				t.Errorf("GET body: got %d bytes (sha256 %q), want %d bytes (sha256 %q)",
					len(body), sha256Hex(body), len(tt.body), wantSum)
			}
			if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(len(tt.body)); got != want {
				t.Errorf("Content-Length: got %q, want %q", got, want)
			}
			disp, params, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
			if err != nil {
				t.Fatalf("Content-Disposition %q: %v", resp.Header.Get("Content-Disposition"), err)
			}
			if disp != "attachment" || params["filename"] != tt.doc {
				t.Errorf("Content-Disposition: got %q filename %q, want %q filename %q",
					disp, params["filename"], "attachment", tt.doc)
			}

			resp, body = do(t, srv, http.MethodGet, documentPath(tt.doc)+"/sha256", nil, nil)
			wantStatus(t, resp, body, http.StatusOK)
			if got := decodeJSON[stored](t, body); got.SHA256 != wantSum {
				t.Errorf("sha256 endpoint: got %q, want %q", got.SHA256, wantSum)
			}
			if left := tempFiles(t, dir); len(left) > 0 {
				t.Errorf("temp files: got %q, want none", left)
			}
		})
	}
}

// multipartBody builds a form with the given parts; a part with a filename
// is a file field.
func multipartBody(t *testing.T, parts []formPart) (contentType string, body *bytes.Buffer) {
	t.Helper()
	body = new(bytes.Buffer)
	mw := multipart.NewWriter(body)
	for _, p := range parts {
		h := make(textproto.MIMEHeader)
		disp := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != "" {
			disp += fmt.Sprintf(`; filename=%q`, p.filename)
			h.Set("Content-Type", "application/octet-stream")
		}
		h.Set("Content-Disposition", disp)
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p.content); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), body
}

type formPart struct {
	field, filename string
	content         []byte
}

func TestMultipartUpload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		parts        []formPart
		contentType  string // overrides the multipart type when set
		accept       string
		wantStatus   int
		wantLocation string
		wantDoc      string // document expected on disk afterwards
		wantContent  []byte
		wantAbsent   []string // relative to dir
	}{
		{
			name: "json client",
			parts: []formPart{
				{field: "comment", content: []byte("ignored")},
				{field: "file", filename: "Report Q3.txt", content: []byte("quarterly")},
			},
			accept:       "application/json",
			wantStatus:   http.StatusCreated,
			wantLocation: "/documents/Report%20Q3.txt",
			wantDoc:      "Report Q3.txt",
			wantContent:  []byte("quarterly"),
		},
		{
			name:         "browser gets see-other",
			parts:        []formPart{{field: "file", filename: "memo.md", content: []byte("# memo")}},
			accept:       "text/html,application/xhtml+xml,*/*;q=0.8",
			wantStatus:   http.StatusSeeOther,
			wantLocation: "/",
			wantDoc:      "memo.md",
			wantContent:  []byte("# memo"),
		},
		{
			name:         "path in filename reduced to its base",
			parts:        []formPart{{field: "file", filename: "../escape.txt", content: []byte("contained")}},
			accept:       "application/json",
			wantStatus:   http.StatusCreated,
			wantLocation: "/documents/escape.txt",
			wantDoc:      "escape.txt",
			wantContent:  []byte("contained"),
			wantAbsent:   []string{"../escape.txt"},
		},
		{
			name:       "hidden filename rejected",
			parts:      []formPart{{field: "file", filename: ".htaccess", content: []byte("x")}},
			wantStatus: http.StatusBadRequest,
			wantAbsent: []string{".htaccess"},
		},
		{
			name:       "no file part",
			parts:      []formPart{{field: "comment", content: []byte("just text")}},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "two files rejected, neither stored",
			parts: []formPart{
				{field: "file", filename: "one.txt", content: []byte("1")},
				{field: "file", filename: "two.txt", content: []byte("2")},
			},
			wantStatus: http.StatusBadRequest,
			wantAbsent: []string{"one.txt", "two.txt"},
		},
		{
			name:        "not multipart",
			contentType: "text/plain",
			wantStatus:  http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir, srv := newServer(t)
			ct, body := multipartBody(t, tt.parts)
			if tt.contentType != "" {
				ct = tt.contentType
			}
			header := http.Header{"Content-Type": {ct}}
			if tt.accept != "" {
				header.Set("Accept", tt.accept)
			}
			resp, respBody := do(t, srv, http.MethodPost, "/documents", body, header)
			wantStatus(t, resp, respBody, tt.wantStatus)
			if got := resp.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location: got %q, want %q", got, tt.wantLocation)
			}
			if tt.wantStatus == http.StatusCreated {
				up := decodeJSON[stored](t, respBody)
				want := stored{Name: tt.wantDoc, Size: int64(len(tt.wantContent)), SHA256: sha256Hex(tt.wantContent)}
				if up != want {
					t.Errorf("response: got %q, want %q", fmt.Sprint(up), fmt.Sprint(want))
				}
			}
			if tt.wantDoc != "" {
				resp, got := do(t, srv, http.MethodGet, documentPath(tt.wantDoc), nil, nil)
				wantStatus(t, resp, got, http.StatusOK)
				if !bytes.Equal(got, tt.wantContent) {
					t.Errorf("download: got %q, want %q", got, tt.wantContent)
				}
			}
			for _, rel := range tt.wantAbsent {
				if _, err := os.Stat(filepath.Join(dir, rel)); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("stat %q: got %q, want %q", rel, fmt.Sprint(err), fs.ErrNotExist)
				}
			}
			if left := tempFiles(t, dir); len(left) > 0 {
				t.Errorf("temp files: got %q, want none", left)
			}
		})
	}
}

func TestBadNamesRejected(t *testing.T) {
	t.Parallel()
	dir, srv := newServer(t)
	tests := []struct {
		name string
		path string // after /documents/
		want int
	}{
		{name: "escaped slash traversal", path: "..%2Fescape.txt", want: http.StatusBadRequest},
		{name: "escaped dot-dot", path: "%2E%2E", want: http.StatusBadRequest},
		{name: "escaped absolute", path: "%2Fetc%2Fpasswd", want: http.StatusBadRequest},
		{name: "backslash", path: "..%5Cescape.txt", want: http.StatusBadRequest},
		{name: "NUL", path: "a%00b.txt", want: http.StatusBadRequest},
		{name: "newline", path: "a%0Ab.txt", want: http.StatusBadRequest},
		{name: "leading dot", path: ".hidden", want: http.StatusBadRequest},
		{name: "temp file", path: tempPrefix + "x", want: http.StatusBadRequest},
		{name: "embedded dot-dot", path: "a..b", want: http.StatusBadRequest},
		{name: "too long", path: strings.Repeat("n", maxNameLen+1), want: http.StatusBadRequest},
		{name: "invalid UTF-8", path: "%FF.txt", want: http.StatusBadRequest},
		// The mux cleans literal dot segments and redirects (307, keeping
		// the method) before any handler runs, so these never reach the
		// disk either.
		{name: "literal traversal", path: "../escape.txt", want: http.StatusTemporaryRedirect},
		{name: "literal dot-dot", path: "..", want: http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []struct{ method, suffix string }{
				{http.MethodPut, ""},
				{http.MethodGet, ""},
				{http.MethodGet, "/sha256"},
			} {
				resp, body := do(t, srv, c.method, "/documents/"+tt.path+c.suffix, strings.NewReader("pwned"), nil)
				if resp.StatusCode != tt.want {
					t.Errorf("%s %s: got status %q, want %q (body %q)", c.method, tt.path+c.suffix,
						strconv.Itoa(resp.StatusCode), strconv.Itoa(tt.want), body)
				}
			}
		})
	}
	t.Cleanup(func() {
		for _, p := range []string{filepath.Join(dir, "..", "escape.txt"), "/escape.txt", filepath.Join(dir, "escape.txt")} {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %q: got %q, want %q", p, fmt.Sprint(err), fs.ErrNotExist)
			}
		}
	})
}

func TestDownloadNotFound(t *testing.T) {
	t.Parallel()
	dir, srv := newServer(t)
	if err := os.Mkdir(filepath.Join(dir, "Folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/documents/missing.txt", "/documents/Folder", "/documents/missing.txt/sha256", "/documents/Folder/sha256"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, path, nil, nil)
			wantStatus(t, resp, body, http.StatusNotFound)
		})
	}
}

func TestInterruptedUploadLeavesNothing(t *testing.T) {
	t.Parallel()
	dir, srv := newServer(t)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Promise 1 MiB, send 5 bytes, hang up.
	fmt.Fprintf(conn, "PUT /documents/partial.txt HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nshort", 1<<20)
	conn.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, statErr := os.Stat(filepath.Join(dir, "partial.txt"))
		left := tempFiles(t, dir)
		if len(left) == 0 && errors.Is(statErr, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after interrupted upload: got temp files %q and partial.txt stat %q, want neither", left, fmt.Sprint(statErr))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRange(t *testing.T) {
	t.Parallel()
	dir, srv := newServer(t)
	const doc = "Engagement Letter.txt"
	content, err := os.ReadFile(filepath.Join(dir, doc))
	if err != nil {
		t.Fatal(err)
	}
	size := len(content)
	tests := []struct {
		rng, wantRange string
		want           []byte
	}{
		{rng: "bytes=0-9", wantRange: fmt.Sprintf("bytes 0-9/%d", size), want: content[:10]},
		{rng: "bytes=5-", wantRange: fmt.Sprintf("bytes 5-%d/%d", size-1, size), want: content[5:]},
		{rng: "bytes=-4", wantRange: fmt.Sprintf("bytes %d-%d/%d", size-4, size-1, size), want: content[size-4:]},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, documentPath(doc), nil, http.Header{"Range": {tt.rng}})
			wantStatus(t, resp, body, http.StatusPartialContent)
			if got := resp.Header.Get("Content-Range"); got != tt.wantRange {
				t.Errorf("Content-Range: got %q, want %q", got, tt.wantRange)
			}
			if !bytes.Equal(body, tt.want) {
				t.Errorf("body: got %q, want %q", body, tt.want)
			}
		})
	}
}

func TestLarge(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	for _, n := range []int64{0, 1, largeBlock - 1, largeBlock, 3*largeBlock + 17, 5 << 20} {
		t.Run(strconv.FormatInt(n, 10), func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, fmt.Sprintf("/large?bytes=%d", n), nil, nil)
			wantStatus(t, resp, body, http.StatusOK)
			if got, want := resp.Header.Get("Content-Length"), strconv.FormatInt(n, 10); got != want {
				t.Errorf("Content-Length: got %q, want %q", got, want)
			}
			want, err := io.ReadAll(LargeReader(n))
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(want)) != n {
				t.Fatalf("LargeReader(%d): got %q bytes, want %q", n, strconv.Itoa(len(want)), strconv.FormatInt(n, 10))
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body: got %d bytes sha256 %q, want %d bytes sha256 %q", len(body), sha256Hex(body), n, sha256Hex(want))
			}
		})
	}

	t.Run("range", func(t *testing.T) {
		t.Parallel()
		const off, n = 3*largeBlock - 50, 100 // straddles a block boundary
		resp, body := do(t, srv, http.MethodGet, "/large?bytes=1000000", nil,
			http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}})
		wantStatus(t, resp, body, http.StatusPartialContent)
		full, err := io.ReadAll(LargeReader(1000000))
		if err != nil {
			t.Fatal(err)
		}
		if want := full[off : off+n]; !bytes.Equal(body, want) {
			t.Errorf("range body: got %q, want %q", hex.EncodeToString(body), hex.EncodeToString(want))
		}
	})

	t.Run("cap", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, srv, http.MethodHead, fmt.Sprintf("/large?bytes=%d", int64(MaxLargeBytes)), nil, nil)
		wantStatus(t, resp, body, http.StatusOK)
		if got, want := resp.Header.Get("Content-Length"), strconv.FormatInt(MaxLargeBytes, 10); got != want {
			t.Errorf("Content-Length: got %q, want %q", got, want)
		}
	})

	for _, q := range []string{"", "bytes=", "bytes=-1", "bytes=abc", fmt.Sprintf("bytes=%d", int64(MaxLargeBytes)+1)} {
		t.Run("bad "+q, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, "/large?"+q, nil, nil)
			wantStatus(t, resp, body, http.StatusBadRequest)
		})
	}
}

func TestLargeReaderSeek(t *testing.T) {
	t.Parallel()
	const n = 4*largeBlock + 3
	full, err := io.ReadAll(LargeReader(n))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(full[:largeBlock], full[largeBlock:2*largeBlock]) {
		t.Fatalf("blocks 0 and 1 are identical, want distinct pseudo-random blocks")
	}
	tests := []struct {
		name   string
		offset int64
		whence int
		want   int64
	}{
		{"start", 10, io.SeekStart, 10},
		{"block boundary", largeBlock, io.SeekStart, largeBlock},
		{"end", -7, io.SeekEnd, n - 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := LargeReader(n)
			pos, err := r.Seek(tt.offset, tt.whence)
			if err != nil || pos != tt.want {
				t.Fatalf("Seek: got %q (err %v), want %q", strconv.FormatInt(pos, 10), err, strconv.FormatInt(tt.want, 10))
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, full[pos:]) {
				t.Errorf("after Seek: got %d bytes, want %d matching the sequential read", len(got), n-pos)
			}
		})
	}
}

func TestWebDAV(t *testing.T) {
	t.Parallel()
	dir, srv := newServer(t)
	// Steps share the directory, so they run in order.
	steps := []struct {
		name, method, path string
		header             http.Header
		body               string
		want               int
		wantBody           string
	}{
		{name: "propfind root", method: "PROPFIND", path: "/dav/", header: http.Header{"Depth": {"1"}}, want: http.StatusMultiStatus, wantBody: "Engagement%20Letter.txt"},
		{name: "propfind mount point", method: "PROPFIND", path: "/dav", header: http.Header{"Depth": {"0"}}, want: http.StatusMultiStatus},
		{name: "mkcol", method: "MKCOL", path: "/dav/Matters", want: http.StatusCreated},
		{name: "mkcol again", method: "MKCOL", path: "/dav/Matters", want: http.StatusMethodNotAllowed},
		{name: "put", method: http.MethodPut, path: "/dav/Matters/note.txt", body: "note", want: http.StatusCreated},
		{name: "copy", method: "COPY", path: "/dav/Q3%20Board%20Minutes.md", header: http.Header{"Destination": {srv.URL + "/dav/Matters/minutes.md"}}, want: http.StatusCreated},
		{name: "move", method: "MOVE", path: "/dav/Matters/note.txt", header: http.Header{"Destination": {srv.URL + "/dav/Matters/moved.txt"}}, want: http.StatusCreated},
		{name: "propfind folder", method: "PROPFIND", path: "/dav/Matters/", header: http.Header{"Depth": {"1"}}, want: http.StatusMultiStatus, wantBody: "moved.txt"},
		{name: "lock", method: "LOCK", path: "/dav/Matters/moved.txt", body: `<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>`, want: http.StatusOK, wantBody: "<D:locktoken>"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp, body := do(t, srv, st.method, st.path, strings.NewReader(st.body), st.header)
			wantStatus(t, resp, body, st.want)
			if st.wantBody != "" && !bytes.Contains(body, []byte(st.wantBody)) {
				t.Errorf("body: got %q, want it to contain %q", body, st.wantBody)
			}
		})
	}
	for _, rel := range []string{"Matters/moved.txt", "Matters/minutes.md"} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err != nil {
			t.Errorf("stat %q: got %q, want nil", rel, err.Error())
		}
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	host := srv.Listener.Addr().String()

	t.Run("hello and echo", func(t *testing.T) {
		t.Parallel()
		conn, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"X-Remote-User": {"alice"}})
		if err != nil {
			t.Fatalf("dial: %v (response %v)", err, resp)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		var hello map[string]string
		if err := conn.ReadJSON(&hello); err != nil {
			t.Fatalf("read hello: %v", err)
		}
		if got, want := hello["hello"], "alice"; got != want {
			t.Errorf("hello: got %q, want %q", got, want)
		}
		for _, m := range []struct {
			typ  int
			data []byte
		}{
			{websocket.TextMessage, []byte("ping")},
			{websocket.TextMessage, []byte{}},
			{websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
			{websocket.BinaryMessage, bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}, // 1 MiB, many frames
		} {
			if err := conn.WriteMessage(m.typ, m.data); err != nil {
				t.Fatalf("write: %v", err)
			}
			typ, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if typ != m.typ || !bytes.Equal(data, m.data) {
				t.Errorf("echo: got type %d, %d bytes sha256 %q; want type %d, %d bytes sha256 %q",
					typ, len(data), sha256Hex(data), m.typ, len(m.data), sha256Hex(m.data))
			}
		}
	})

	origins := []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{name: "no origin", header: http.Header{}, ok: true},
		{name: "same origin", header: http.Header{"Origin": {"http://" + host}}, ok: true},
		{name: "gateway origin", header: http.Header{"Origin": {"https://docs.acme.example"}, "X-Forwarded-Host": {"docs.acme.example"}}, ok: true},
		{name: "cross origin", header: http.Header{"Origin": {"https://evil.example"}}, ok: false},
		{name: "null origin", header: http.Header{"Origin": {"null"}}, ok: false},
	}
	for _, tt := range origins {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conn, resp, err := websocket.DefaultDialer.Dial(wsURL, tt.header)
			if conn != nil {
				conn.Close()
			}
			if tt.ok && err != nil {
				t.Fatalf("dial: got error %q, want success", err)
			}
			if !tt.ok {
				if err == nil {
					t.Fatalf("dial: got success, want %q", "403 Forbidden")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Errorf("dial: got %q, want %q", fmt.Sprint(resp), "403 Forbidden")
				}
			}
		})
	}
}

func TestSlow(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	tests := []struct {
		query    string
		want     int
		wantBody string
	}{
		{query: "delay=10ms", want: http.StatusOK, wantBody: "done"},
		{query: "delay=0s", want: http.StatusOK, wantBody: "done"},
		{query: "delay=soon", want: http.StatusBadRequest},
		{query: "delay=-1s", want: http.StatusBadRequest},
		{query: "delay=11m", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			resp, body := do(t, srv, http.MethodGet, "/slow?"+tt.query, nil, nil)
			wantStatus(t, resp, body, tt.want)
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body: got %q, want %q", body, tt.wantBody)
			}
		})
	}

	t.Run("cancellation", func(t *testing.T) {
		t.Parallel()
		s, err := New(Options{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?delay=1h", nil)
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			s.ServeHTTP(rec, req)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("handler still running 10s after its context was cancelled")
		}
		if got := rec.Body.String(); got == "done" {
			t.Errorf("body: got %q, want %q", got, "")
		}
	})
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	_, srv := newServer(t)
	resp, body := do(t, srv, http.MethodGet, "/healthz", nil, nil)
	wantStatus(t, resp, body, http.StatusOK)
	if got, want := string(body), "ok"; got != want {
		t.Errorf("body: got %q, want %q", got, want)
	}
}

// FuzzValidName checks that every accepted name names a visible file
// directly inside the document directory.
func FuzzValidName(f *testing.F) {
	for _, seed := range []string{"Engagement Letter.txt", "..", "../x", `a\b`, "a\x00b", ".hidden", "Ü.txt", "a..b", "\xff"} {
		f.Add(seed)
	}
	const base = "/srv/docs"
	f.Fuzz(func(t *testing.T, name string) {
		if !validName(name) {
			return
		}
		p := filepath.Join(base, name)
		if filepath.Dir(p) != base || filepath.Base(p) != name {
			t.Errorf("validName(%q) = true, but it resolves to %q: got %q, want a direct child of %q", name, p, p, base)
		}
		if strings.HasPrefix(name, ".") || strings.ContainsRune(name, 0) {
			t.Errorf("validName(%q) = true: got %q, want hidden and NUL names rejected", name, name)
		}
	})
}
