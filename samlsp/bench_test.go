package samlsp

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkAuthenticate measures what every proxied request pays to read
// its session: cookie lookup, HMAC check, AES decryption, JSON decoding.
func BenchmarkAuthenticate(b *testing.B) {
	f := newFixture(b)
	ck := f.signIn()
	req := httptest.NewRequest(http.MethodGet, "/documents", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	req.Header.Add("Cookie", "upstream_app_session=abcdef0123456789; theme=dark")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.p.Authenticate(req); !ok {
			b.Fatal("no session")
		}
	}
}

// BenchmarkReadSession measures finding the session cookie's pieces among
// the request's cookies, which Authenticate does on every request before
// any cryptography, duplicates included.
func BenchmarkReadSession(b *testing.B) {
	f := newFixture(b)
	one := f.signIn()
	rec := f.postACS(acme, f.idps[acme].PostForm(b, f.response(acme, withGroups(f, acme, groupsForChunks(b, f, 2)...)), ""))
	split := sessionChunks(b, rec)
	if len(split) != 2 {
		b.Fatalf("got %d pieces, want 2", len(split))
	}
	const upstream = "upstream_app_session=abcdef0123456789; theme=dark; _ga=GA1.2.3.4"
	for _, bc := range []struct {
		name  string
		lines []string
	}{
		{"one piece", []string{upstream + "; " + pair(one)}},
		{"two pieces over two lines", []string{pair(split[0]) + "; " + upstream, pair(split[1])}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/documents", nil)
			for _, l := range bc.lines {
				req.Header.Add("Cookie", l)
			}
			c := f.p.currentSettings().cookies
			b.ReportAllocs()
			for b.Loop() {
				if c.readSession(req) == "" {
					b.Fatal("no session")
				}
			}
		})
	}
}

type nopReplayCache struct{}

func (nopReplayCache) Consume(string, time.Time) error { return nil }

// BenchmarkACS measures one login at the ACS: form parsing, crewjam's XML
// signature verification and validation, and the session cookie. The
// replay cache is disabled so one response can be posted repeatedly.
func BenchmarkACS(b *testing.B) {
	f := newFixture(b)
	p, err := New(Options{Secure: true, SessionKeys: f.keys, SessionLifetime: time.Hour, Clock: clockwork.NewFakeClockAt(f.clock.Now()),
		ReplayCache: nopReplayCache{}, Metrics: NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	ts, err := p.NewTenants([]TenantOptions{tenantOptions(f, acme)})
	if err != nil {
		b.Fatal(err)
	}
	p.SetTenants(ts)
	f.p = p
	form := f.idps[acme].PostForm(b, f.response(acme, nil), "")
	b.ReportAllocs()
	for b.Loop() {
		if rec := f.postACS(acme, form); rec.Code != http.StatusSeeOther {
			b.Fatalf("got %d", rec.Code)
		}
	}
}

// BenchmarkAuthenticateSessions measures Authenticate with a cached
// session of 20 and of 150 groups (two cookies), with 5,000 distinct
// sessions of 150 groups in rotation (all cached), and with the cache off
// (every request decodes: HMAC, AES, inflating, JSON).
func BenchmarkAuthenticateSessions(b *testing.B) {
	for _, bc := range []struct {
		name     string
		groups   int
		sessions int
		noCache  bool
	}{
		{"20 groups", 20, 1, false},
		{"150 groups", entraMaxGroups, 1, false},
		{"5000 sessions of 150 groups", entraMaxGroups, 5000, false},
		{"150 groups, cache off", entraMaxGroups, 1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFixture(b)
			if bc.noCache {
				f.reconfigure(func(o *Options) { o.SessionCacheEntries = -1 })
			}
			groups := randomGUIDs(b, bc.groups)
			reqs := make([]*http.Request, bc.sessions)
			for i := range reqs {
				s := f.user(i, 0)
				s.Groups = groups
				req := httptest.NewRequest(http.MethodGet, "/documents", nil)
				req.Host = "docs.example.com"
				req.Header.Set("Cookie", "upstream_app_session=abcdef0123456789; "+cookieHeader(f.mint(s))+"; theme=dark")
				reqs[i] = req
				if _, ok := f.p.Authenticate(req); !ok {
					b.Fatal("no session")
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := f.p.Authenticate(reqs[i]); !ok {
					b.Fatal("no session")
				}
				if i++; i == len(reqs) {
					i = 0
				}
			}
		})
	}
}
