// The login throttle: it bounds how many requests one client, and all clients
// together, may have in progress at once.
//
// The gateway's login endpoints parse XML and verify RSA signatures.
// Counting requests in flight, rather than requests per second, adapts by
// itself to the machine: fast requests free their slot at once, and only a
// client that piles up slow or many parallel requests is turned away. The
// caller decides what a request in flight is; the gateway counts only the
// work it does itself, after the request has arrived, so that a client
// cannot hold a slot by sending slowly.
//
// A client is an IPv4 address, or an IPv6 prefix (a /64 by default): one
// IPv6 host commonly has a whole /64 to itself, and would otherwise count
// as millions of clients.

package gateway

import (
	"net/netip"
	"sync"
)

// Scopes of a refusal, for the caller's metric.
const (
	scopeClient = "client" // the client has too many in flight
	scopeTotal  = "total"  // all clients together have
)

// defaultIPv6Prefix is the IPv6 prefix length that counts as one client
// when throttleOptions.IPv6Prefix is zero: the /64 that RFC 4291 subnets and
// RFC 7934 hand to each host.
const defaultIPv6Prefix = 64

// throttleOptions configure a throttle.
type throttleOptions struct {
	// PerClient is the most requests one client may have in flight.
	PerClient int
	// Total is the most requests all clients together may have in flight.
	Total int
	// IPv6Prefix is the length of the IPv6 prefix that counts as one
	// client, 1 to 128; zero means defaultIPv6Prefix. IPv4 addresses,
	// IPv4-mapped IPv6 ones included, count one by one.
	IPv6Prefix int
}

// throttle counts requests in flight by client.
type throttle struct {
	perClient, total int
	v6bits           int

	mu       sync.Mutex
	n        int
	byClient map[netip.Prefix]int
}

// newThrottle returns a throttle with the limits of o.
func newThrottle(o throttleOptions) *throttle {
	bits := o.IPv6Prefix
	if bits <= 0 || bits > 128 {
		bits = defaultIPv6Prefix
	}
	return &throttle{perClient: o.PerClient, total: o.Total, v6bits: bits, byClient: map[netip.Prefix]int{}}
}

// Client returns the key client is counted under: its IPv4 address as a
// /32, or its IPv6 prefix. Invalid addresses share the zero Prefix.
func (l *throttle) Client(client netip.Addr) netip.Prefix {
	if !client.IsValid() {
		return netip.Prefix{}
	}
	client = client.Unmap().WithZone("")
	if client.Is4() {
		return netip.PrefixFrom(client, 32)
	}
	p, _ := client.Prefix(l.v6bits) // cannot fail: bits is within 1..128
	return p
}

// Acquire admits a request from client, returning the function that ends
// it, or refuses it with the scope of the limit it hit. Requests whose
// client is unknown (an invalid address) share one slot pool.
func (l *throttle) Acquire(client netip.Addr) (release func(), refused string) {
	key := l.Client(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.n >= l.total:
		return nil, scopeTotal
	case l.byClient[key] >= l.perClient:
		return nil, scopeClient
	}
	l.n++
	l.byClient[key]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key) }) }, ""
}

func (l *throttle) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	// Entries are removed at zero, so the map holds only clients with
	// requests in flight: at most total entries.
	if l.byClient[key]--; l.byClient[key] == 0 {
		delete(l.byClient, key)
	}
}

// InFlight returns the number of requests in flight, for tests and
// metrics.
func (l *throttle) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
