package inflight_test

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/sso-gateway/sso-gateway/inflight"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	a, b, c := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::1")
	l := inflight.New(2, 3)
	var releases []func()
	acquire := func(addr netip.Addr, want string) {
		t.Helper()
		release, refused := l.Acquire(addr)
		if refused != want {
			t.Fatalf("Acquire(%v): refused %q, want %q", addr, refused, want)
		}
		if release != nil {
			releases = append(releases, release)
		}
	}
	acquire(a, "")
	acquire(a, "")
	acquire(a, inflight.ScopeClient) // a's third
	acquire(b, "")
	acquire(c, inflight.ScopeTotal) // the fourth in all
	releases[0]()
	releases[0]() // releasing twice frees one slot, not two
	acquire(c, "")
	acquire(b, inflight.ScopeTotal)
	if got := l.InFlight(); got != 3 {
		t.Errorf("InFlight: got %d, want 3", got)
	}
	for _, r := range releases {
		r()
	}
	if got := l.InFlight(); got != 0 {
		t.Errorf("InFlight after releasing all: got %d, want 0", got)
	}
	// Everything is free again.
	acquire(a, "")
	acquire(a, "")
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	l := inflight.New(5, 20)
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")}
	var mu sync.Mutex
	max := map[netip.Addr]int{}
	cur := map[netip.Addr]int{}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr := addrs[i%len(addrs)]
			release, refused := l.Acquire(addr)
			if refused != "" {
				return
			}
			mu.Lock()
			cur[addr]++
			if cur[addr] > max[addr] {
				max[addr] = cur[addr]
			}
			mu.Unlock()
			mu.Lock()
			cur[addr]--
			mu.Unlock()
			release()
		}()
	}
	wg.Wait()
	for a, m := range max {
		if m > 5 {
			t.Errorf("%v had %d in flight, limit 5", a, m)
		}
	}
	if l.InFlight() != 0 {
		t.Errorf("InFlight: got %d after all released", l.InFlight())
	}
}
