// Package inflight bounds how many requests one client, and all clients
// together, may have in progress at once.
//
// The gateway's login endpoints parse XML and verify RSA signatures, and a
// client that sends an ACS post slowly holds its connection for as long as
// the read deadline allows. Counting requests in flight, rather than
// requests per second, adapts by itself to the machine: fast requests free
// their slot at once, and only a client that piles up slow or many
// parallel requests is turned away.
package inflight

import (
	"net/netip"
	"sync"
)

// Scopes of a refusal, for the caller's metric.
const (
	ScopeClient = "client" // the client has too many in flight
	ScopeTotal  = "total"  // all clients together have
)

// Limiter counts requests in flight by client address.
type Limiter struct {
	perClient, total int

	mu       sync.Mutex
	n        int
	byClient map[netip.Addr]int
}

// New returns a Limiter that admits at most perClient requests per
// client and total for all clients.
func New(perClient, total int) *Limiter {
	return &Limiter{perClient: perClient, total: total, byClient: map[netip.Addr]int{}}
}

// Acquire admits a request from client, returning the function that ends
// it, or refuses it with the scope of the limit it hit. Requests whose
// client is unknown (an invalid address) share one slot pool.
func (l *Limiter) Acquire(client netip.Addr) (release func(), refused string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.n >= l.total:
		return nil, ScopeTotal
	case l.byClient[client] >= l.perClient:
		return nil, ScopeClient
	}
	l.n++
	l.byClient[client]++
	var once sync.Once
	return func() { once.Do(func() { l.release(client) }) }, ""
}

func (l *Limiter) release(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	// Entries are removed at zero, so the map holds only clients with
	// requests in flight: at most total entries.
	if l.byClient[client]--; l.byClient[client] == 0 {
		delete(l.byClient, client)
	}
}

// InFlight returns the number of requests in flight, for tests and
// metrics.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
