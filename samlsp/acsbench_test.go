package samlsp

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/replay"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// acsBenchConcurrency is how many logins are in flight at once in the
// parallel ACS benchmarks: the load the issue measured (16 concurrent
// posters).
const acsBenchConcurrency = 16

// acsBenchPool is how many distinct responses the parallel benchmarks sign
// before the clock starts and then post in turn. Each post of a response
// is a new ID to the replay cache (generationCache), whose work (one
// insert, or one SET NX) is unchanged; a pool of b.N responses would spend
// minutes signing and hold tens of megabytes live, which the gateway does
// not.
const acsBenchPool = 512

// generationCache lets the parallel benchmarks post each response of
// their pool more than once: it puts the number of times it has seen an
// assertion ID in front of the ID it hands to the real cache.
type generationCache struct {
	cache crewsaml.AssertionReplayCache
	mu    sync.Mutex
	seen  map[string]int
}

func (c *generationCache) Consume(id string, expiresAt time.Time) error {
	c.mu.Lock()
	n := c.seen[id]
	c.seen[id] = n + 1
	c.mu.Unlock()
	return c.cache.Consume(strconv.Itoa(n)+" "+id, expiresAt)
}

// BenchmarkACSParallel measures logins as the gateway meets them: 16 at
// once, each a distinct Entra-shaped response (signed assertion, the
// default claims and 20 groups, as in the load test; or 150, the
// most Entra sends), with the in-memory replay cache or a real Redis. It
// reports logins/s and the process CPU time per login (user and system,
// every goroutine and the garbage collector included; redis-server's own
// CPU is not), the two login targets.
func BenchmarkACSParallel(b *testing.B) {
	// One server for every run of the Redis case (b.Run calls it with
	// growing b.N, and cleans up after each call).
	redisURL := redistest.Start(b).URL()
	for _, bc := range []struct {
		name   string
		redis  bool
		groups int
	}{
		{"replay=memory/groups=20", false, 20},
		{"replay=redis/groups=20", true, 20},
		{"replay=memory/groups=150", false, entraMaxGroups},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var cache crewsaml.AssertionReplayCache
			if bc.redis {
				r, err := replay.NewRedis(replay.RedisOptions{URL: redisURL})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = r.Close() })
				cache = r
			}
			benchmarkACSParallel(b, cache, bc.groups)
		})
	}
}

// benchmarkACSParallel runs BenchmarkACSParallel with cache (nil: the
// in-memory one) and users in groups groups.
func benchmarkACSParallel(b *testing.B, cache crewsaml.AssertionReplayCache, groups int) {
	f := newFixture(b)
	if cache == nil {
		cache = f.p.replay // the in-memory cache New made
	}
	p, err := New(Options{
		Secure: true, SessionKeys: f.keys, SessionLifetime: 8 * time.Hour, Clock: f.clock,
		ReplayCache: &generationCache{cache: cache, seen: map[string]int{}},
		Metrics:     NewMetrics(prometheus.NewRegistry()),
		// The audit line is part of every login's cost.
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ts, err := p.NewTenants([]TenantOptions{tenantOptions(f, acme)})
	if err != nil {
		b.Fatal(err)
	}
	p.SetTenants(ts)
	f.p = p
	ids := randomGUIDs(b, groups)
	bodies := make([]string, acsBenchPool)
	for i := range bodies {
		user := "user" + strconv.Itoa(i) + "@acme.example"
		resp := f.response(acme, func(r *samltest.Response) {
			r.NameID = user
			r.Attributes = samltest.DefaultAttributes(f.idps[acme].TenantID, user, "User "+strconv.Itoa(i), ids...)
		})
		bodies[i] = f.idps[acme].PostForm(b, resp, "").Encode()
	}
	handler := f.p
	var next atomic.Int64
	b.SetParallelism(max(1, acsBenchConcurrency/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1) - 1
			req := httptest.NewRequest(http.MethodPost, LoginPath+acme, strings.NewReader(bodies[n%acsBenchPool]))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusSeeOther {
				b.Errorf("login %d: got status %d, want 303: %s", n, rec.Code, rec.Body)
				return
			}
		}
	})
	b.StopTimer()
	cpu := cpuTime(b) - before
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/login")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
