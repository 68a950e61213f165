// The origin: the address of the client behind the load balancers the
// operator trusts.
//
// X-Forwarded-For is a list any client can start: only the entries that
// trusted proxies appended are believed. Reading from the right, every
// address that belongs to a trusted proxy is a hop; the first that does not
// is the client. Everything to its left is the client's own claim and is
// dropped. With no trusted proxies, the client is the TCP peer and
// X-Forwarded-For is ignored.

package reqinfo

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. It is immutable.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a Resolver that believes X-Forwarded-For entries added by
// the given proxies.
func NewResolver(trusted []netip.Prefix) *Resolver {
	return &Resolver{trusted: trusted}
}

// Origin is what the gateway knows of a request's origin.
type Origin struct {
	// Client is the client's address; invalid when the peer address
	// could not be parsed (never the case for a TCP connection).
	Client netip.Addr
	// Chain is the verified path from the client to the gateway: the
	// client, then every trusted proxy, the TCP peer last. It is what the
	// gateway sends upstream as X-Forwarded-For.
	Chain []netip.Addr
	// PeerTrusted reports whether the TCP peer is one of the trusted
	// proxies: only then may the request's own forwarding headers (the
	// original request a forward-auth subrequest describes) be believed.
	// False in an Origin made otherwise, so that a handler used without
	// the gateway in front believes nothing.
	PeerTrusted bool
	// client and forwarded are String and ForwardedFor, rendered once by
	// Resolve: the access log and the request forwarded upstream both ask
	// for them. Empty in an Origin made otherwise.
	client, forwarded string
}

// String is the client address, or "unknown".
func (i Origin) String() string {
	if i.client != "" {
		return i.client
	}
	if !i.Client.IsValid() {
		return "unknown"
	}
	return i.Client.String()
}

// ForwardedFor is Chain as an X-Forwarded-For value.
func (i Origin) ForwardedFor() string {
	if i.forwarded != "" {
		return i.forwarded
	}
	parts := make([]string, len(i.Chain))
	for k, a := range i.Chain {
		parts[k] = a.String()
	}
	return strings.Join(parts, ", ")
}

// Resolve reads r's peer address and, when the peer is trusted, its
// X-Forwarded-For fields.
func (res *Resolver) Resolve(r *http.Request) Origin {
	peer, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return Origin{}
	}
	chain := []netip.Addr{peer}
	if !res.trusts(peer) {
		return rendered(Origin{Client: peer, Chain: chain})
	}
	// Every X-Forwarded-For field, in order, is one list.
	var entries []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		entries = append(entries, strings.Split(v, ",")...)
	}
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseAddr(strings.TrimSpace(entries[i]))
		if !ok {
			// A garbled entry was written by the client or by a hop
			// that is not ours: the last trusted hop is all that is known.
			break
		}
		chain = append(chain, a)
		if !res.trusts(a) {
			break
		}
	}
	// chain runs from the peer outwards; Origin's runs from the client in.
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return rendered(Origin{Client: chain[0], Chain: chain, PeerTrusted: true})
}

// rendered returns i with String and ForwardedFor rendered; for a client
// that is the peer, both are one string.
func rendered(i Origin) Origin {
	i.client = i.String()
	if len(i.Chain) == 1 && i.Chain[0] == i.Client {
		i.forwarded = i.client
	} else {
		i.forwarded = i.ForwardedFor()
	}
	return i
}

func (res *Resolver) trusts(a netip.Addr) bool {
	for _, p := range res.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePeer parses RemoteAddr, which for TCP is ip:port, first as such: a
// failed netip.ParseAddr allocates its error, on every request.
func parsePeer(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return parseAddr(s)
}

// parseAddr parses an address as it appears in RemoteAddr or in an
// X-Forwarded-For entry: bare, or with a port (Azure Application Gateway
// appends one), IPv6 optionally in brackets. IPv4-mapped IPv6 addresses
// are unmapped, and zones dropped, so that they compare with the
// configured prefixes.
func parseAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}

// WithOrigin returns r with o as its origin. Under Correlate, which every
// request of the gateway passes first, o is recorded in the request's
// info and r is returned as it is: no copy of the request per request.
// Otherwise, or when r already has an origin, r is copied with new info
// that keeps its correlation ID, if any: the one context value that
// OriginOf and CorrelationID both read.
func WithOrigin(r *http.Request, o Origin) *http.Request {
	v := infoOf(r.Context())
	if v != nil && !v.hasOrigin {
		v.origin, v.hasOrigin = o, true
		return r
	}
	n := &info{origin: o, hasOrigin: true}
	if v != nil {
		n.s, n.hdr = v.s, v.hdr
	}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, n))
}

// OriginOf returns the Origin stored by WithOrigin or, when there is none
// (a handler used without the gateway in front, as in tests), the TCP peer.
func OriginOf(r *http.Request) Origin {
	if v := infoOf(r.Context()); v != nil && v.hasOrigin {
		return v.origin
	}
	return NewResolver(nil).Resolve(r)
}
