package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// goClient is the load generator used when wrk is not installed: one
// goroutine per connection, each with a transport of its own that keeps
// its one connection alive, sending requests back to back as wrk does.
type goClient struct {
	connections int
}

var _ loadClient = (*goClient)(nil)

func (c *goClient) name() string {
	return fmt.Sprintf("built-in Go client (%d connections)", c.connections)
}

// goWorker is what one connection measured.
type goWorker struct {
	requests, bytes, errors, statusErrors int64
	latencies                             []time.Duration
}

func (c *goClient) run(ctx context.Context, t target, d time.Duration) (loadResult, error) {
	cookies := t.requestCookies()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	workers := make([]goWorker, c.connections)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			workers[w] = c.worker(ctx, t, cookies, w*7919)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var res loadResult
	var all []time.Duration
	for _, w := range workers {
		res.Requests += w.requests
		res.Bytes += w.bytes
		res.Errors += w.errors
		res.StatusErrors += w.statusErrors
		all = append(all, w.latencies...)
	}
	res.Duration = elapsed
	res.P50, res.P99 = percentile(all, 50), percentile(all, 99)
	return res, nil
}

// worker sends requests on one connection until ctx ends, starting at
// cookies[offset % len].
func (c *goClient) worker(ctx context.Context, t target, cookies []string, offset int) goWorker {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	var w goWorker
	for i := offset; ctx.Err() == nil; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+t.addr+t.path, nil)
		if err != nil {
			w.errors++
			return w
		}
		req.Host = t.host
		req.Header.Set("User-Agent", userAgent)
		req.Header.Set("Accept", accept)
		if cookie := cookies[i%len(cookies)]; cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		begin := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				w.errors++
			}
			continue
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			if ctx.Err() == nil {
				w.errors++
			}
			continue
		}
		w.requests++
		w.bytes += n
		w.latencies = append(w.latencies, time.Since(begin))
		if resp.StatusCode != http.StatusOK {
			w.statusErrors++
		}
	}
	return w
}

// percentile returns the p-th percentile (nearest rank) of ds, which it
// sorts; 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(p/100*float64(len(ds))+0.5) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}
