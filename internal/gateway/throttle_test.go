package gateway

import (
	"net/netip"
	"sync"
	"testing"
)

func TestThrottleLimits(t *testing.T) {
	t.Parallel()
	a, b, c := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("2001:db8::1")
	l := newThrottle(throttleOptions{PerClient: 2, Total: 3})
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
	acquire(a, scopeClient) // a's third
	acquire(b, "")
	acquire(c, scopeTotal) // the fourth in all
	releases[0]()
	releases[0]() // releasing twice frees one slot, not two
	acquire(c, "")
	acquire(b, scopeTotal)
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

// One IPv6 host with a /64 is one client, however many of its addresses it
// uses; another /64 is another client; an IPv4-mapped address is the IPv4
// address.
func TestThrottleClientPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		v6bits     int
		held, next string
		wantRefuse bool
	}{
		{"same /64", 0, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"another /64", 0, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"IPv4-mapped is IPv4", 0, "198.51.100.7", "::ffff:198.51.100.7", true},
		{"IPv4 addresses one by one", 0, "198.51.100.7", "198.51.100.8", false},
		{"zone ignored", 0, "fe80::1%eth0", "fe80::2%eth1", true},
		{"a /48", 48, "2001:db8:1:2::1", "2001:db8:1:ff::1", true},
		{"beyond the /48", 48, "2001:db8:1:2::1", "2001:db8:2:2::1", false},
		{"a /128", 128, "2001:db8::1", "2001:db8::2", false},
		{"unknown clients share", 0, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newThrottle(throttleOptions{PerClient: 1, Total: 10, IPv6Prefix: tt.v6bits})
			addr := func(s string) netip.Addr {
				if s == "" {
					return netip.Addr{}
				}
				return netip.MustParseAddr(s)
			}
			if _, refused := l.Acquire(addr(tt.held)); refused != "" {
				t.Fatalf("first request refused: %q", refused)
			}
			_, refused := l.Acquire(addr(tt.next))
			if want := map[bool]string{true: scopeClient}[tt.wantRefuse]; refused != want {
				t.Errorf("%s after %s: got refusal %q, want %q", tt.next, tt.held, refused, want)
			}
		})
	}
}

func TestThrottleConcurrent(t *testing.T) {
	t.Parallel()
	l := newThrottle(throttleOptions{PerClient: 5, Total: 20})
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
