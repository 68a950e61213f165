package replay_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	"github.com/redis/go-redis/v9"

	"github.com/sso-gateway/sso-gateway/internal/replay"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
)

// hangBound only catches a hang; the tests assert no performance.
const hangBound = 10 * time.Second

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newStore returns a store on url, closed when the test ends.
func newStore(t *testing.T, o replay.RedisOptions) *replay.Redis {
	t.Helper()
	r, err := replay.NewRedis(o)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// inspector returns a plain go-redis client for reading what the store
// wrote.
func inspector(t *testing.T, s *redistest.Server) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func keyFor(prefix, id string) string {
	sum := sha256.Sum256([]byte(id))
	return prefix + hex.EncodeToString(sum[:])
}

func TestConsume(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	a := newStore(t, replay.RedisOptions{URL: s.URL()})
	b := newStore(t, replay.RedisOptions{URL: s.URL()}) // another replica
	exp := time.Now().Add(time.Minute)

	tests := []struct {
		name  string
		store *replay.Redis
		id    string
		want  error
	}{
		{"first use", a, "_id1", nil},
		{"replay at the same replica", a, "_id1", crewsaml.ErrAssertionReplayed},
		{"replay at another replica", b, "_id1", crewsaml.ErrAssertionReplayed},
		{"another id", a, "_id2", nil},
		{"another id at another replica", b, "_id3", nil},
		{"that id replayed at the first replica", a, "_id3", crewsaml.ErrAssertionReplayed},
		{"ids differing in case", a, "_ID1", nil},
		{"empty id", a, "", nil},
		{"empty id again", b, "", crewsaml.ErrAssertionReplayed},
		{"long id", a, strings.Repeat("x", 1<<16), nil},
	}
	// Sequential: each case depends on the ones before.
	for _, tt := range tests {
		err := tt.store.Consume(tt.id, exp)
		if tt.want == nil && err != nil {
			t.Errorf("%s: got error %v, want none", tt.name, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: got error %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestKeyAndTTL(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	in := inspector(t, s)
	clock := clockwork.NewFakeClockAt(t0)

	tests := []struct {
		name      string
		prefix    string
		margin    time.Duration
		expiresAt time.Time
		wantTTL   time.Duration
	}{
		{"default prefix and margin", "", 0, t0.Add(3 * time.Minute), 3*time.Minute + replay.DefaultMargin},
		{"own prefix and margin", "test:", 30 * time.Second, t0.Add(90 * time.Second), 2 * time.Minute},
		{"expired: margin only", "", 0, t0.Add(-time.Hour), replay.DefaultMargin},
		{"expired, tiny margin: one second", "", time.Millisecond, t0.Add(-time.Hour), time.Second},
		{"far future does not overflow", "", 0, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Duration(1<<63 - 1)},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newStore(t, replay.RedisOptions{URL: s.URL(), KeyPrefix: tt.prefix, Margin: tt.margin, Clock: clock})
			id := fmt.Sprintf("_ttl%d", i)
			if err := r.Consume(id, tt.expiresAt); err != nil {
				t.Fatalf("Consume: %v", err)
			}
			prefix := tt.prefix
			if prefix == "" {
				prefix = replay.DefaultKeyPrefix
			}
			key := keyFor(prefix, id)
			got, err := in.PTTL(context.Background(), key).Result()
			if err != nil {
				t.Fatalf("PTTL %s: %v", key, err)
			}
			// Redis counts down in real time between SET and PTTL; the
			// fake clock does not move.
			tolerance := min(2*time.Second, tt.wantTTL/2)
			if got > tt.wantTTL || got < tt.wantTTL-tolerance {
				t.Fatalf("PTTL %s: got %v, want %v (within %v below)", key, got, tt.wantTTL, tolerance)
			}
			if v, err := in.Get(context.Background(), key).Result(); err != nil || v != "1" {
				t.Fatalf("GET %s: got %q, %v, want %q", key, v, err, "1")
			}
		})
	}
}

func TestConcurrentConsume(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	const n = 50
	stores := []*replay.Redis{
		newStore(t, replay.RedisOptions{URL: s.URL()}),
		newStore(t, replay.RedisOptions{URL: s.URL()}),
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = stores[i%len(stores)].Consume("_race", time.Now().Add(time.Minute))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, crewsaml.ErrAssertionReplayed):
			t.Errorf("goroutine %d: got error %v, want none or ErrAssertionReplayed", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("got %d successful Consumes, want 1", ok)
	}
}

// consumeTimed is Consume failing the test if it hangs.
func consumeTimed(t *testing.T, r *replay.Redis, id string) error {
	t.Helper()
	start := time.Now()
	err := r.Consume(id, time.Now().Add(time.Minute))
	d := time.Since(start)
	if d > hangBound {
		t.Fatalf("Consume(%q) took %v; want it to give up within %v", id, d, hangBound)
	}
	if errors.Is(err, replay.ErrUnavailable) {
		t.Logf("Consume(%q) gave up after %v: %v", id, d.Round(time.Millisecond), err)
	}
	return err
}

// wantUnavailable fails the test unless err is an ErrUnavailable that does
// not quote secret.
func wantUnavailable(t *testing.T, what string, err error, secret string) {
	t.Helper()
	if !errors.Is(err, replay.ErrUnavailable) || errors.Is(err, crewsaml.ErrAssertionReplayed) {
		t.Fatalf("%s: got error %v, want one matching ErrUnavailable only", what, err)
	}
	if secret != "" && strings.Contains(err.Error(), secret) {
		t.Fatalf("%s: got error %q, which quotes the password", what, err)
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55word"
	tests := []struct {
		name     string
		password string
	}{
		{"no password", ""},
		{"password", password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := redistest.StartWith(t, redistest.Options{Password: tt.password})
			r := newStore(t, replay.RedisOptions{URL: s.URL(), OpTimeout: time.Second})
			if err := consumeTimed(t, r, "_before"); err != nil {
				t.Fatalf("Consume before the outage: %v", err)
			}
			if err := r.Ping(context.Background()); err != nil {
				t.Fatalf("Ping before the outage: %v", err)
			}

			s.Stop()
			for i := range 3 { // the pooled connection, then fresh dials
				err := consumeTimed(t, r, fmt.Sprintf("_during%d", i))
				wantUnavailable(t, fmt.Sprintf("Consume %d during the outage", i), err, tt.password)
			}
			wantUnavailable(t, "Ping during the outage", r.Ping(context.Background()), tt.password)

			s.Restart(t)
			if err := consumeTimed(t, r, "_after"); err != nil {
				t.Fatalf("first Consume after the restart: %v", err)
			}
			if err := consumeTimed(t, r, "_after"); !errors.Is(err, crewsaml.ErrAssertionReplayed) {
				t.Fatalf("replay after the restart: got error %v, want ErrAssertionReplayed", err)
			}
			if err := r.Ping(context.Background()); err != nil {
				t.Fatalf("Ping after the restart: %v", err)
			}
		})
	}
}

// TestUnresponsive covers a server that accepts connections but never
// answers (hung, or a network that drops packets): the op timeout ends
// the call.
func TestUnresponsive(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	r := newStore(t, replay.RedisOptions{URL: "redis://" + l.Addr().String() + "/0", OpTimeout: 300 * time.Millisecond})
	wantUnavailable(t, "Consume", consumeTimed(t, r, "_hung"), "")
	wantUnavailable(t, "Ping", r.Ping(context.Background()), "")
}

func TestStartsWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.Stop()
	r := newStore(t, replay.RedisOptions{URL: s.URL(), OpTimeout: time.Second})
	wantUnavailable(t, "Consume while down", consumeTimed(t, r, "_down"), "")
	s.Restart(t)
	if err := consumeTimed(t, r, "_up"); err != nil {
		t.Fatalf("Consume once up: %v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	const password, wrong = "s3cret-Pa55word", "wr0ng-Pa55word"
	s := redistest.StartWith(t, redistest.Options{Password: password})
	tests := []struct {
		name, url, secret string
	}{
		{"wrong password", "redis://:" + wrong + "@" + s.Addr() + "/0", wrong},
		{"wrong user", "redis://nobody:" + password + "@" + s.Addr() + "/0", password},
		{"no password", "redis://" + s.Addr() + "/0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newStore(t, replay.RedisOptions{URL: tt.url, OpTimeout: time.Second})
			wantUnavailable(t, "Consume", consumeTimed(t, r, "_creds"), tt.secret)
			wantUnavailable(t, "Ping", r.Ping(context.Background()), tt.secret)
		})
	}
}

func TestReadOnlyReplica(t *testing.T) {
	t.Parallel()
	primary, replica := redistest.Start(t), redistest.Start(t)
	in := inspector(t, replica)
	host, port, _ := strings.Cut(primary.Addr(), ":")
	if err := in.ReplicaOf(context.Background(), host, port).Err(); err != nil {
		t.Fatalf("REPLICAOF: %v", err)
	}
	r := newStore(t, replay.RedisOptions{URL: replica.URL()})
	wantUnavailable(t, "Consume at a replica", consumeTimed(t, r, "_ro"), "")
}

func TestClosed(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	r, err := replay.NewRedis(replay.RedisOptions{URL: s.URL()})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantUnavailable(t, "Consume after Close", consumeTimed(t, r, "_closed"), "")
}

func TestNewRedisRejects(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Pa55word"
	tests := []struct {
		name string
		o    replay.RedisOptions
		want string // in the error
	}{
		{"empty", replay.RedisOptions{}, "empty"},
		{"http", replay.RedisOptions{URL: "http://x"}, "scheme"},
		{"http with password", replay.RedisOptions{URL: "http://u:" + secret + "@x"}, "scheme"},
		{"garbage", replay.RedisOptions{URL: "garbage"}, "scheme"},
		{"unix socket", replay.RedisOptions{URL: "unix:///run/redis.sock"}, "scheme"},
		{"control character", replay.RedisOptions{URL: "redis://:" + secret + "@host\x7f/0"}, "does not parse"},
		{"bad port", replay.RedisOptions{URL: "redis://" + secret + ":" + secret + "@host:" + secret + "/0"}, "does not parse"},
		{"password before a slash", replay.RedisOptions{URL: "redis://u:" + secret + "/x@host/0"}, "does not parse"},
		{"no host", replay.RedisOptions{URL: "redis://:" + secret + "@/0"}, "no host"},
		{"bad db", replay.RedisOptions{URL: "redis://:" + secret + "@host/zero"}, "database"},
		{"unknown parameter", replay.RedisOptions{URL: "redis://:" + secret + "@host/0?bogus=1"}, "bogus"},
		{"password parameter", replay.RedisOptions{URL: "redis://host/0?password=" + secret}, "password"},
		{"bad parameter value", replay.RedisOptions{URL: "redis://:" + secret + "@host/0?max_retries=many"}, "max_retries"},
		{"password as user name", replay.RedisOptions{URL: "redis://" + secret + "@host/zero"}, "database"},
		{"negative timeout", replay.RedisOptions{URL: "redis://host/0", OpTimeout: -time.Second}, "timeout"},
		{"negative margin", replay.RedisOptions{URL: "redis://host/0", Margin: -time.Second}, "margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := replay.NewRedis(tt.o)
			if err == nil {
				_ = r.Close()
				t.Fatalf("NewRedis(%q): got no error, want one", tt.o.URL)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to mention %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "replay: ") {
				t.Errorf("got error %q, want prefix %q", err, "replay: ")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("got error %q, which quotes the password", err)
			}
		})
	}
}

func TestNewRedisAccepts(t *testing.T) {
	t.Parallel()
	// Nothing listens on these; NewRedis must not care.
	for _, url := range []string{
		"redis://127.0.0.1:1/0",
		"redis://user:pass@127.0.0.1:1/3",
		"rediss://:pass@127.0.0.1:1",
		"redis://127.0.0.1:1/0?dial_timeout=1h&max_retries=10",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			r := newStore(t, replay.RedisOptions{URL: url, OpTimeout: 200 * time.Millisecond})
			// The URL's long dial timeout and retries are overridden.
			wantUnavailable(t, "Consume", consumeTimed(t, r, "_none"), "pass")
		})
	}
}

// TestConsumeIsOneCommand: a login costs Redis one round trip, the SET NX,
// once the store has a connection: no PING, HELLO, CLIENT or other
// command rides along, and no new connection is opened.
func TestConsumeIsOneCommand(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	r := newStore(t, replay.RedisOptions{URL: s.URL()})
	in := inspector(t, s)
	// The first call connects, which costs its own commands.
	if err := r.Consume("_warm", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := commandStats(t, in)
	const n = 100
	for i := range n {
		if err := r.Consume(fmt.Sprintf("_id%d", i), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	after := commandStats(t, in)
	for cmd, calls := range after {
		want := before[cmd]
		switch cmd {
		case "set":
			want += n
		case "info", "connections": // the inspector's own, and its connection
			continue
		}
		if calls != want {
			t.Errorf("%s: got %d more calls, want %d", cmd, calls-before[cmd], want-before[cmd])
		}
	}
	if got := after["connections"] - before["connections"]; got > 1 {
		t.Errorf("got %d new connections, want none but the inspector's", got)
	}
}

// commandStats returns how many times Redis ran each command, by name
// (INFO commandstats), and under "connections" how many connections it
// has accepted.
func commandStats(t *testing.T, in *redis.Client) map[string]int {
	t.Helper()
	info, err := in.Info(context.Background(), "commandstats", "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, _ := strings.Cut(rest, ":")
			calls, _, _ := strings.Cut(strings.TrimPrefix(fields, "calls="), ",")
			n, err := strconv.Atoi(calls)
			if err != nil {
				t.Fatalf("INFO line %q: %v", line, err)
			}
			out[name] = n
		}
		if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("INFO line %q: %v", line, err)
			}
			out["connections"] = n
		}
	}
	if len(out) < 2 {
		t.Fatalf("INFO commandstats: nothing read from %q", info)
	}
	return out
}

// BenchmarkConsume measures one Consume against a real redis-server, 16
// at once as in a login burst: the round trip a login adds with the
// replay store.
func BenchmarkConsume(b *testing.B) {
	s := redistest.Start(b)
	r, err := replay.NewRedis(replay.RedisOptions{URL: s.URL()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close() })
	var n atomic.Int64
	exp := time.Now().Add(time.Minute)
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Consume(fmt.Sprintf("_bench%d", n.Add(1)), exp); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
