package reqinfo_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	lbs := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		client  string
		chain   string
	}{
		{name: "no proxies: XFF ignored", remote: "203.0.113.7:5000", xff: []string{"1.2.3.4"}, client: "203.0.113.7", chain: "203.0.113.7"},
		{name: "untrusted peer: XFF ignored", trusted: lbs, remote: "203.0.113.7:5000", xff: []string{"1.2.3.4"}, client: "203.0.113.7", chain: "203.0.113.7"},
		{name: "one load balancer", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"198.51.100.9"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "client-supplied prefix dropped", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"6.6.6.6, 7.7.7.7, 198.51.100.9"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "two trusted hops", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"198.51.100.9, 10.1.1.1"}, client: "198.51.100.9", chain: "198.51.100.9, 10.1.1.1, 10.0.0.2"},
		{name: "several fields are one list", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"6.6.6.6", "198.51.100.9, 10.1.1.1"}, client: "198.51.100.9", chain: "198.51.100.9, 10.1.1.1, 10.0.0.2"},
		{name: "client claims to be a trusted proxy", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"10.9.9.9, 198.51.100.9"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "all trusted: leftmost", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"10.3.3.3, 10.1.1.1"}, client: "10.3.3.3", chain: "10.3.3.3, 10.1.1.1, 10.0.0.2"},
		{name: "no XFF from a trusted peer", trusted: lbs, remote: "10.0.0.2:5000", client: "10.0.0.2", chain: "10.0.0.2"},
		{name: "port appended (Azure Application Gateway)", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"198.51.100.9:61234"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "IPv6 in brackets with port", trusted: lbs, remote: "[fd00::2]:443", xff: []string{"[2001:db8::1]:1234"}, client: "2001:db8::1", chain: "2001:db8::1, fd00::2"},
		{name: "IPv6 bare", trusted: lbs, remote: "[fd00::2]:443", xff: []string{"2001:db8::1"}, client: "2001:db8::1", chain: "2001:db8::1, fd00::2"},
		{name: "IPv4-mapped peer matches an IPv4 prefix", trusted: lbs, remote: "[::ffff:10.0.0.2]:443", xff: []string{"198.51.100.9"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "garbage stops at the last trusted hop", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"198.51.100.9, unknown"}, client: "10.0.0.2", chain: "10.0.0.2"},
		{name: "garbage left of the client is dropped", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{"<script>, 198.51.100.9"}, client: "198.51.100.9", chain: "198.51.100.9, 10.0.0.2"},
		{name: "empty entries", trusted: lbs, remote: "10.0.0.2:5000", xff: []string{" , "}, client: "10.0.0.2", chain: "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			info := reqinfo.NewResolver(tt.trusted).Resolve(r)
			if info.String() != tt.client || info.ForwardedFor() != tt.chain {
				t.Errorf("got client %s chain %q, want %s %q", info, info.ForwardedFor(), tt.client, tt.chain)
			}
		})
	}
}

func TestFromRequest(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.2:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	if got := reqinfo.OriginOf(r).String(); got != "10.0.0.2" {
		t.Errorf("without WithOrigin: got %s, want the peer", got)
	}
	res := reqinfo.NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	r = reqinfo.WithOrigin(r, res.Resolve(r))
	if got := reqinfo.OriginOf(r).String(); got != "198.51.100.9" {
		t.Errorf("with WithOrigin: got %s", got)
	}
	r.RemoteAddr = "garbage"
	if got := reqinfo.NewResolver(nil).Resolve(r).String(); got != "unknown" {
		t.Errorf("unparsable peer: got %s", got)
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("10.0.0.2:5000", "1.2.3.4, 10.1.1.1")
	f.Add("[fd00::1]:1", "[2001:db8::1]:5, ::ffff:1.2.3.4")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		info := reqinfo.NewResolver(trusted).Resolve(r)
		if !info.Client.IsValid() {
			return
		}
		if len(info.Chain) == 0 || info.Chain[0] != info.Client {
			t.Fatalf("chain %v does not start with the client %v", info.Chain, info.Client)
		}
		// Every hop after the client is trusted: the client never hides
		// behind an address nobody vouched for.
		for _, a := range info.Chain[1:] {
			ok := false
			for _, p := range trusted {
				ok = ok || p.Contains(a)
			}
			if !ok {
				t.Fatalf("untrusted hop %v in %v", a, info.Chain)
			}
		}
	})
}

func TestPeerTrusted(t *testing.T) {
	t.Parallel()
	lbs := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     string
		want    bool
	}{
		{name: "no proxies configured", remote: "10.0.0.2:1", want: false},
		{name: "untrusted peer", trusted: lbs, remote: "203.0.113.7:1", want: false},
		{name: "untrusted peer naming a trusted hop", trusted: lbs, remote: "203.0.113.7:1", xff: "10.0.0.9", want: false},
		{name: "trusted peer", trusted: lbs, remote: "10.0.0.2:1", want: true},
		{name: "trusted peer with a client behind it", trusted: lbs, remote: "10.0.0.2:1", xff: "198.51.100.9", want: true},
		{name: "unparsable peer", trusted: lbs, remote: "garbage", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := reqinfo.NewResolver(tt.trusted).Resolve(r).PeerTrusted; got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.2:1"
	if reqinfo.OriginOf(r).PeerTrusted {
		t.Errorf("OriginOf without a resolved origin: got trusted, want untrusted")
	}
}

// TestWithOriginUnderCorrelate: behind Correlate the origin is recorded
// in the request's own info, without a copy of the request, and is
// what OriginOf reads; a second WithOrigin still overrides it, on a copy,
// and leaves the first request's origin alone.
func TestWithOriginUnderCorrelate(t *testing.T) {
	t.Parallel()
	res := reqinfo.NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	var checked bool
	h := reqinfo.Correlate(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		checked = true
		if got := reqinfo.OriginOf(r).String(); got != "10.0.0.2" {
			t.Errorf("before WithOrigin: got %s, want the peer", got)
		}
		withOrigin := reqinfo.WithOrigin(r, res.Resolve(r))
		if withOrigin != r {
			t.Errorf("WithOrigin under Correlate copied the request")
		}
		if got := reqinfo.OriginOf(r); got.String() != "198.51.100.9" || !got.PeerTrusted {
			t.Errorf("with WithOrigin: got %s (trusted %v), want 198.51.100.9, trusted", got, got.PeerTrusted)
		}
		again := reqinfo.WithOrigin(r, reqinfo.NewResolver(nil).Resolve(r))
		if again == r {
			t.Errorf("a second WithOrigin changed the request in place")
		}
		if got := reqinfo.OriginOf(again).String(); got != "10.0.0.2" {
			t.Errorf("second WithOrigin: got %s, want 10.0.0.2", got)
		}
		if got := reqinfo.OriginOf(r).String(); got != "198.51.100.9" {
			t.Errorf("after a second WithOrigin on a copy: got %s, want 198.51.100.9", got)
		}
		if reqinfo.CorrelationID(again.Context()) != reqinfo.CorrelationID(r.Context()) {
			t.Errorf("the copy lost the correlation ID")
		}
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.2:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if !checked {
		t.Fatal("handler not called")
	}
}
