package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a server that answers the 1 KiB page and counts the request
// heads it receives.
type recorder struct {
	mu    sync.Mutex
	heads map[string]int // "Host|path|User-Agent|Accept|Cookie" -> count
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.Join([]string{r.Method, r.Host, r.URL.RequestURI(), r.UserAgent(), r.Header.Get("Accept"), strings.Join(r.Header.Values("Cookie"), "|")}, " ")
	rec.mu.Lock()
	rec.heads[key]++
	rec.mu.Unlock()
	_, _ = w.Write(make([]byte, bodySize))
}

func (rec *recorder) counts() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[string]int{}
	for k, v := range rec.heads {
		out[k] = v
	}
	return out
}

// testConns is the clients' concurrency in these tests.
const testConns = 4

// clients returns the load clients to test: the Go client, and wrk when it
// is installed (CI installs it; elsewhere the benchmark falls back to the
// Go client, as this test does).
func clients(t *testing.T) []loadClient {
	cs := []loadClient{&goClient{connections: testConns}}
	if bin, err := exec.LookPath("wrk"); err == nil {
		cs = append(cs, &wrkClient{bin: bin, version: "wrk", threads: 2, connections: testConns, dir: t.TempDir()})
	}
	return cs
}

// TestClients checks that each load client sends the target's request
// head, rotates through every cookie (and sends none when there are
// none), and counts what it did.
func TestClients(t *testing.T) {
	for _, c := range clients(t) {
		for _, cookies := range [][]string{nil, {"a=1", "a=2; b=3", "a=3", "a=4", "a=5"}} {
			t.Run(fmt.Sprintf("%s/%d cookies", c.name(), len(cookies)), func(t *testing.T) {
				rec := &recorder{heads: map[string]int{}}
				srv := httptest.NewServer(rec)
				defer srv.Close()
				tg := target{addr: strings.TrimPrefix(srv.URL, "http://"), host: "docs.loadtest.example", path: pagePath, cookies: cookies}
				res, err := c.run(context.Background(), tg, time.Second)
				if err != nil {
					t.Fatalf("run: got error %q, want success", err)
				}
				if err := checkLoad(res); err != nil {
					t.Errorf("checkLoad: got %q, want success (%+v)", err, res)
				}
				if res.P50 <= 0 || res.P99 < res.P50 || res.Duration < time.Second/2 {
					t.Errorf("got p50 %v, p99 %v, duration %v; want 0 < p50 ≤ p99 and about a second", res.P50, res.P99, res.Duration)
				}
				got := rec.counts()
				seen := keys(got)
				total := 0
				for _, n := range got {
					total += n
				}
				// The client may stop with requests the server answered
				// but the client did not count, one per connection.
				if int64(total) < res.Requests || int64(total) > res.Requests+testConns {
					t.Errorf("the server got %d requests, the client counted %d", total, res.Requests)
				}
				for _, cookie := range tg.requestCookies() {
					head := strings.Join([]string{http.MethodGet, tg.host, tg.path, userAgent, accept, cookie}, " ")
					if got[head] == 0 {
						t.Errorf("no request %q; got %q", head, seen)
					}
					delete(got, head)
				}
				if len(got) > 0 {
					t.Errorf("unexpected requests: %v", keys(got))
				}
			})
		}
	}
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 5}, {99, 10}, {10, 1}, {100, 10}, {0, 1}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("percentile(%v): got %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of none: got %v, want 0", got)
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v): got %v, want %v", tc.xs, got, tc.want)
		}
	}
}

func TestCheckLoad(t *testing.T) {
	t.Parallel()
	ok := loadResult{Requests: 1000, Bytes: 1000 * (bodySize + 200)}
	for _, tc := range []struct {
		name    string
		res     loadResult
		wantErr bool
	}{
		{"fine", ok, false},
		{"nothing", loadResult{}, true},
		{"a rare socket error", loadResult{Requests: 1000, Bytes: ok.Bytes, Errors: 1}, false},
		{"socket errors", loadResult{Requests: 1000, Bytes: ok.Bytes, Errors: 2}, true},
		{"error statuses", loadResult{Requests: 1000, Bytes: ok.Bytes, StatusErrors: 3}, true},
		{"redirects to sign in", loadResult{Requests: 1000, Bytes: 1000 * 400}, true},
	} {
		if err := checkLoad(tc.res); (err != nil) != tc.wantErr {
			t.Errorf("%s: got error %v, want error %t", tc.name, err, tc.wantErr)
		}
	}
}
