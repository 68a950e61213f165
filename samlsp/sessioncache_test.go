package samlsp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/race"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// reconfigure applies the fixture's session settings, changed by change,
// as a configuration reload does.
func (f *fixture) reconfigure(change func(*Options)) {
	f.t.Helper()
	o := Options{Secure: f.public.Scheme == "https", SessionKeys: f.keys, SessionLifetime: 8 * time.Hour, Clock: f.clock}
	if change != nil {
		change(&o)
	}
	if err := f.p.Reconfigure(o); err != nil {
		f.t.Fatal(err)
	}
}

// mint returns the cookies of s, encoded with the session keys in force
// now (the first one), as the ACS sets them.
func (f *fixture) mint(s Session) []*http.Cookie {
	f.t.Helper()
	set := f.p.currentSettings()
	v, err := set.codec.encode(set.cookies.hostName(sessionCookie), s)
	if err != nil {
		f.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := set.cookies.writeSession(rec, v, time.Unix(s.Expires, 0)); err != nil {
		f.t.Fatal(err)
	}
	return sessionChunks(f.t, rec)
}

// user is a session of acme's user i with groups groups, valid for an
// hour from now.
func (f *fixture) user(i, groups int) Session {
	now := f.clock.Now().Unix()
	return Session{
		Tenant: acme, NameID: fmt.Sprintf("user%d@acme.example", i), Email: fmt.Sprintf("user%d@acme.example", i),
		Name: fmt.Sprintf("User %d", i), Groups: randomGUIDs(f.t, groups), IssuedAt: now, Expires: now + 3600,
	}
}

// cacheLookups returns the session cache's hits and misses so far.
func (f *fixture) cacheLookups() (hits, misses float64) {
	return testutil.ToFloat64(f.p.metrics.sessionCacheHits), testutil.ToFloat64(f.p.metrics.sessionCacheMisses)
}

// cached returns the number of entries in the session cache in use.
func (f *fixture) cached() int {
	n, _ := f.p.currentSettings().cache.size()
	return n
}

// cookieHeader is a Cookie header value naming cookies.
func cookieHeader(cookies []*http.Cookie) string {
	parts := make([]string, len(cookies))
	for i, ck := range cookies {
		parts[i] = pair(ck)
	}
	return strings.Join(parts, "; ")
}

// TestSessionCacheDecodesOnce: a cookie is decoded on its first request
// only, in one piece or in two, and its later requests allocate nothing.
func TestSessionCacheDecodesOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		groups int
		pieces int
	}{
		{"one piece", 20, 1},
		{"two pieces", entraMaxGroups, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			want := f.user(1, tt.groups)
			cookies := f.mint(want)
			if len(cookies) != tt.pieces {
				t.Fatalf("got %d pieces, want %d", len(cookies), tt.pieces)
			}
			header := cookieHeader(cookies)
			for i := range 5 {
				s, ok := f.authenticateHeader("docs.example.com", header)
				if !ok || s.NameID != want.NameID || !slices.Equal(s.Groups, want.Groups) {
					t.Fatalf("request %d: got %+v, %v, want the session", i, s, ok)
				}
			}
			if hits, misses := f.cacheLookups(); hits != 4 || misses != 1 {
				t.Errorf("got %v hits and %v misses, want 4 and 1", hits, misses)
			}
		})
	}
}

// TestAuthenticateAllocatesNothing: a request whose session cookie is
// cached, in one piece or two, allocates nothing to authenticate. Not
// parallel: AllocsPerRun counts the whole process's allocations.
func TestAuthenticateAllocatesNothing(t *testing.T) {
	for _, groups := range []int{20, entraMaxGroups} {
		t.Run(fmt.Sprintf("%d groups", groups), func(t *testing.T) {
			f := newFixture(t)
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Host = "docs.example.com"
			req.Header.Set("Cookie", "app=1; "+cookieHeader(f.mint(f.user(1, groups)))+"; theme=dark")
			authenticate := func() {
				if _, ok := f.p.Authenticate(req); !ok {
					t.Fatal("no session")
				}
			}
			authenticate()
			// Under -race sync.Pool drops some buffers on purpose.
			budget := 0.0
			if race.Enabled {
				budget = 1
			}
			if n := testing.AllocsPerRun(200, authenticate); n > budget {
				t.Errorf("got %v allocations per cached request, want at most %v", n, budget)
			}
		})
	}
}

// TestSessionCacheNeverValidates: with the genuine cookie cached, nothing
// that differs from it by a byte, or mixes pieces of two genuine cookies,
// is a session.
func TestSessionCacheNeverValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	small := f.mint(f.user(1, 3))
	big := f.mint(f.user(2, entraMaxGroups))
	other := f.mint(f.user(3, entraMaxGroups))
	for _, c := range [][]*http.Cookie{small, big, other} {
		if _, ok := f.authenticateChunks(c); !ok {
			t.Fatal("a genuine cookie does not authenticate")
		}
	}
	with := func(cookies []*http.Cookie, i int, value string) []*http.Cookie {
		out := make([]*http.Cookie, len(cookies))
		for j, ck := range cookies {
			c := *ck
			if j == i {
				c.Value = value
			}
			out[j] = &c
		}
		return out
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x02
		return string(b)
	}
	type attempt struct {
		name    string
		cookies []*http.Cookie
	}
	var tests []attempt
	v := small[0].Value
	for i := 0; i < len(v); i += 37 {
		tests = append(tests, attempt{fmt.Sprintf("byte %d flipped", i), with(small, 0, flip(v, i))})
	}
	tests = append(tests,
		attempt{"last byte flipped", with(small, 0, flip(v, len(v)-1))},
		attempt{"a byte more", with(small, 0, v+"A")},
		attempt{"a byte less", with(small, 0, v[:len(v)-1])},
		attempt{"second piece flipped", with(big, 1, flip(big[1].Value, len(big[1].Value)/2))},
		attempt{"first piece flipped", with(big, 0, flip(big[0].Value, len(big[0].Value)-3))},
		attempt{"second piece of another cookie", with(big, 1, other[1].Value)},
		attempt{"first piece of another cookie", with(big, 0, other[0].Value)},
		attempt{"second piece missing", big[:1]},
		attempt{"a piece counted as one", with(big, 0, strings.TrimPrefix(big[0].Value, "2~"))},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, ok := f.authenticateChunks(tt.cookies); ok {
				t.Fatalf("got a session of %q, want none", s.NameID)
			}
		})
	}
	if _, ok := f.authenticateHeader("docs.example.com", sessionCookie+"="+v); ok {
		t.Error("the value under the name without __Host- is a session")
	}
	for _, c := range [][]*http.Cookie{small, big, other} {
		if _, ok := f.authenticateChunks(c); !ok {
			t.Error("a genuine cookie no longer authenticates")
		}
	}
}

// TestSessionCacheKeyRotation: a reload with the same keys keeps the
// decoded sessions; any other set of keys starts afresh, so that the
// cookie of a key no longer listed is refused at once, however recently
// it was decoded.
func TestSessionCacheKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newSessionKey(t), newSessionKey(t)
	f := newFixture(t, withKeys(oldKey))
	cookie := f.signIn()
	if _, ok := f.authenticate(cookie); !ok {
		t.Fatal("no session")
	}
	steps := []struct {
		name       string
		keys       []SessionKey
		want       bool
		wantCached bool // the cookie is still cached before the request
	}{
		{"same key again", []SessionKey{oldKey}, true, true},
		{"new key first, old still listed", []SessionKey{newKey, oldKey}, true, false},
		{"same keys in another order", []SessionKey{oldKey, newKey}, true, true},
		{"old key retired", []SessionKey{newKey}, false, false},
		{"old key back", []SessionKey{oldKey}, true, false},
	}
	for _, st := range steps {
		// In order: each step reloads what the one before left.
		f.reconfigure(func(o *Options) { o.SessionKeys = st.keys })
		if got := f.cached() == 1; got != st.wantCached {
			t.Errorf("%s: cookie cached before the request: got %v, want %v", st.name, got, st.wantCached)
		}
		if _, ok := f.authenticate(cookie); ok != st.want {
			t.Errorf("%s: got authenticated %v, want %v", st.name, ok, st.want)
		}
	}
	f.reconfigure(func(o *Options) { o.SessionKeys = []SessionKey{oldKey}; o.Secure = false })
	if got := f.cached(); got != 0 {
		t.Errorf("after a change to plain http: got %d cached sessions, want 0", got)
	}
}

// TestSessionCacheExpiry: a cached session ends at the second its cookie
// says, as a decoded one does, and leaves the cache.
func TestSessionCacheExpiry(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		lifetime int64
	}{
		{"an hour", 3600},
		{"ten seconds (SessionNotOnOrAfter)", 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			s := f.user(1, 3)
			s.Expires = s.IssuedAt + tt.lifetime
			cookies := f.mint(s)
			if _, ok := f.authenticateChunks(cookies); !ok {
				t.Fatal("no session")
			}
			f.clock.Advance(time.Duration(tt.lifetime-1) * time.Second)
			if _, ok := f.authenticateChunks(cookies); !ok {
				t.Fatal("the session ended a second early")
			}
			if hits, _ := f.cacheLookups(); hits != 1 {
				t.Fatalf("got %v hits, want 1", hits)
			}
			f.clock.Advance(time.Second)
			if _, ok := f.authenticateChunks(cookies); ok {
				t.Fatal("the session is valid at its Expires second")
			}
			if n := f.cached(); n != 0 {
				t.Errorf("got %d cached sessions after the expiry, want 0", n)
			}
			if _, ok := f.authenticateChunks(cookies); ok {
				t.Fatal("the session is valid after its expiry")
			}
			if n := f.cached(); n != 0 {
				t.Errorf("an expired session was cached again: %d entries", n)
			}
			if got := testutil.ToFloat64(f.p.metrics.sessionRejections[rejectExpired]); got != 2 {
				t.Errorf("expired rejections: got %v, want 2", got)
			}
		})
	}
}

// TestSessionCacheDuplicates: the duplicate rule holds for a cached
// cookie, whichever copy comes first.
func TestSessionCacheDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.signIn()
	if _, ok := f.authenticate(good); !ok {
		t.Fatal("no session")
	}
	for _, tt := range []struct {
		name  string
		lines []string
	}{
		{"twice in one line", []string{pair(good) + "; " + pair(good)}},
		{"a planted copy first", []string{good.Name + "=forged; " + pair(good)}},
		{"a planted copy second", []string{pair(good), good.Name + "=forged"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, l := range tt.lines {
				req.Header.Add("Cookie", l)
			}
			if _, ok := f.p.Authenticate(req); ok {
				t.Fatal("got a session, want none")
			}
		})
	}
	if got := testutil.ToFloat64(f.p.metrics.sessionRejections[rejectDuplicate]); got != 3 {
		t.Errorf("duplicate rejections: got %v, want 3", got)
	}
}

// TestSessionCachePolicyCopyOnWrite: a reload's policy applies to cached
// sessions at once, and never changes the decoded session: a session
// handed out earlier keeps what it had, and a later policy that gives a
// header or an attribute back finds it there.
func TestSessionCachePolicyCopyOnWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	withDept := func(o *TenantOptions) { o.Headers = map[string]string{"X-Remote-Department": "department"} }
	f.withTenants(withDept)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.Attributes = append(samltest.DefaultAttributes("x", r.NameID, "B Simon", "g-staff"), samltest.Attribute{Name: "department", Values: []string{"Legal"}})
	}), ""))
	cookie := sessionCookieOf(rec)
	first, ok := f.authenticate(cookie)
	if !ok || first.Email == "" || len(first.Groups) != 1 || len(first.Headers["X-Remote-Department"]) != 1 {
		t.Fatalf("got %+v, want a session with email, group and department", first)
	}
	steps := []struct {
		name   string
		change func(*TenantOptions)
		want   func(*Session, bool) bool
	}{
		{"header mapping removed", func(*TenantOptions) {}, func(s *Session, ok bool) bool { return ok && len(s.Headers) == 0 }},
		{"header mapping back", withDept, func(s *Session, ok bool) bool {
			return ok && slices.Equal(s.Headers["X-Remote-Department"], []string{"Legal"})
		}},
		{"email and groups not kept", func(o *TenantOptions) { o.SessionAttributes = []string{AttributeName} },
			func(s *Session, ok bool) bool { return ok && s.Email == "" && s.Groups == nil }},
		{"all attributes back", func(*TenantOptions) {}, func(s *Session, ok bool) bool { return ok && s.Email != "" && len(s.Groups) == 1 }},
		{"outside the allowed groups", func(o *TenantOptions) { o.AllowedGroups = []string{"g-partners"} }, func(_ *Session, ok bool) bool { return !ok }},
		{"inside the allowed groups", func(o *TenantOptions) { o.AllowedGroups = []string{"g-staff"} }, func(_ *Session, ok bool) bool { return ok }},
	}
	for _, st := range steps {
		f.withTenants(st.change)
		if s, ok := f.authenticate(cookie); !st.want(s, ok) {
			t.Errorf("%s: got %+v, %v", st.name, s, ok)
		}
	}
	if first.Email == "" || len(first.Groups) != 1 || len(first.Headers["X-Remote-Department"]) != 1 {
		t.Errorf("the session handed out first was changed: %+v", first)
	}
	if _, misses := f.cacheLookups(); misses != 1 {
		t.Errorf("got %v misses, want 1: the cookie is decoded once whatever the policy", misses)
	}
}

// TestSessionCacheBounds: the cache holds at most its entries and bytes,
// keeps what is in use, and every cookie authenticates whether cached or
// not.
func TestSessionCacheBounds(t *testing.T) {
	t.Parallel()
	t.Run("entries", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.reconfigure(func(o *Options) { o.SessionCacheEntries = 3 })
		var users [][]*http.Cookie
		for i := range 6 {
			users = append(users, f.mint(f.user(i, 3)))
		}
		for _, c := range users[:3] {
			f.authenticateChunks(c)
		}
		f.authenticateChunks(users[0]) // in use: survives the next pass
		for _, c := range users[3:] {
			f.authenticateChunks(c)
		}
		if n := f.cached(); n != 3 {
			t.Errorf("got %d entries, want 3", n)
		}
		hits, _ := f.cacheLookups()
		if _, ok := f.authenticateChunks(users[0]); !ok {
			t.Fatal("no session")
		}
		if h, _ := f.cacheLookups(); h != hits+1 {
			t.Error("the entry in use was evicted before unused ones")
		}
		for i, c := range users {
			if _, ok := f.authenticateChunks(c); !ok {
				t.Errorf("user %d: no session", i)
			}
		}
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		const limit = 40 << 10 // some three sessions of 150 groups
		f.reconfigure(func(o *Options) { o.SessionCacheBytes = limit })
		for i := range 8 {
			if _, ok := f.authenticateChunks(f.mint(f.user(i, entraMaxGroups))); !ok {
				t.Fatalf("user %d: no session", i)
			}
			if n, b := f.p.currentSettings().cache.size(); b > limit || n == 0 {
				t.Fatalf("user %d: got %d entries of %d bytes, want some, within %d", i, n, b, limit)
			}
		}
	})
	t.Run("larger than the cache", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.reconfigure(func(o *Options) { o.SessionCacheBytes = 1000 })
		if _, ok := f.authenticateChunks(f.mint(f.user(1, entraMaxGroups))); !ok {
			t.Fatal("no session")
		}
		if n := f.cached(); n != 0 {
			t.Errorf("got %d entries, want 0", n)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.reconfigure(func(o *Options) { o.SessionCacheEntries = -1 })
		for _, groups := range []int{3, entraMaxGroups} {
			c := f.mint(f.user(1, groups))
			for range 2 {
				if _, ok := f.authenticateChunks(c); !ok {
					t.Fatal("no session")
				}
			}
		}
		if hits, misses := f.cacheLookups(); hits != 0 || misses != 0 {
			t.Errorf("got %v hits and %v misses, want no lookups", hits, misses)
		}
	})
}

// TestSessionCacheConcurrentRotation: requests authenticate while keys
// rotate and tenant tables change (run it with -race). A request gets the
// session of its own cookie or none, a forged cookie never authenticates,
// and once the old key is gone its cookies are refused.
func TestSessionCacheConcurrentRotation(t *testing.T) {
	t.Parallel()
	keyA, keyB := newSessionKey(t), newSessionKey(t)
	f := newFixture(t, withKeys(keyA))
	const users = 12
	type user struct {
		name    string
		cookies []*http.Cookie
	}
	var a, b []user
	for i := range users {
		s := f.user(i, 1+i*13%entraMaxGroups)
		a = append(a, user{s.NameID, f.mint(s)})
	}
	f.reconfigure(func(o *Options) { o.SessionKeys = []SessionKey{keyB} })
	for i := range users {
		s := f.user(users+i, 1+i*7%entraMaxGroups)
		b = append(b, user{s.NameID, f.mint(s)})
	}
	// A base64 character flipped in the middle: not one of the bits
	// padding leaves unused, which decode as the cookie they came from.
	forged := slices.Clone(a[0].cookies)
	v := []byte(forged[0].Value)
	v[len(v)/2] ^= 0x02
	forged[0] = &http.Cookie{Name: forged[0].Name, Value: string(v)}
	for _, keys := range [][]SessionKey{{keyA}, {keyB}} {
		f.reconfigure(func(o *Options) { o.SessionKeys = keys })
		if _, ok := f.authenticateChunks(forged); ok {
			t.Fatal("the forged cookie authenticates")
		}
	}
	all := append(slices.Clone(a), b...)
	all = append(all, user{"", forged})

	// Tables made here: a goroutine may not call t.Fatal.
	var tables []*Tenants
	for _, allowed := range [][]string{nil, {"nobody"}} {
		var tos []TenantOptions
		for _, id := range allTenants {
			o := tenantOptions(f, id)
			if id == acme {
				o.AllowedGroups = allowed
			}
			tos = append(tos, o)
		}
		ts, err := f.p.NewTenants(tos)
		if err != nil {
			t.Fatal(err)
		}
		tables = append(tables, ts)
	}
	keySets := [][]SessionKey{{keyA}, {keyB}, {keyA, keyB}, {keyB, keyA}}
	optionsFor := func(keys []SessionKey) Options {
		return Options{Secure: true, SessionKeys: keys, SessionLifetime: 8 * time.Hour, Clock: f.clock}
	}

	stop := make(chan struct{})
	var rotations sync.WaitGroup
	rotations.Add(1)
	go func() {
		defer rotations.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = f.p.Reconfigure(optionsFor(keySets[i%len(keySets)]))
			f.p.SetTenants(tables[i/3%len(tables)])
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var workers sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range 400 {
				u := all[(w*31+i*7)%len(all)]
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Host = "docs.example.com"
				req.Header.Set("Cookie", cookieHeader(u.cookies))
				s, ok := f.p.Authenticate(req)
				switch {
				case ok && u.name == "":
					errs <- "a forged cookie authenticated"
					return
				case ok && s.NameID != u.name:
					errs <- fmt.Sprintf("the cookie of %s gave the session of %s", u.name, s.NameID)
					return
				}
			}
		}()
	}
	workers.Wait()
	close(stop)
	rotations.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	f.p.SetTenants(tables[0])
	f.reconfigure(func(o *Options) { o.SessionKeys = []SessionKey{keyB} })
	for _, u := range a {
		if _, ok := f.authenticateChunks(u.cookies); ok {
			t.Errorf("%s: a cookie of the retired key authenticates", u.name)
		}
	}
	for _, u := range b {
		if s, ok := f.authenticateChunks(u.cookies); !ok || s.NameID != u.name {
			t.Errorf("%s: got %v, %v, want the session", u.name, s, ok)
		}
	}
}

// TestSessionMemo: what Memo derives is kept for a session the cache
// shares, per session, and never for a copy of one or an uncached one.
func TestSessionMemo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	calls := 0
	derive := func(s *Session) any { calls++; return s.NameID }
	cookies := f.mint(f.user(1, 3))
	s1, _ := f.authenticateChunks(cookies)
	s2, _ := f.authenticateChunks(cookies)
	if s1 != s2 {
		t.Fatal("the cache handed out two sessions for one cookie")
	}
	for range 3 {
		if got := s1.Memo(derive); got != s1.NameID {
			t.Fatalf("got %v, want %q", got, s1.NameID)
		}
	}
	if calls != 1 {
		t.Errorf("shared session: derived %d times, want 1", calls)
	}
	other, _ := f.authenticateChunks(f.mint(f.user(2, 3)))
	if got := other.Memo(derive); got != other.NameID {
		t.Errorf("another session: got %v, want %q", got, other.NameID)
	}
	copied := *s1
	copied.NameID = "mallory@acme.example"
	calls = 0
	if got := copied.Memo(derive); got != "mallory@acme.example" || calls != 1 {
		t.Errorf("a copy: got %v after %d calls, want its own value, derived", got, calls)
	}
	plain := &Session{NameID: "plain"}
	plain.Memo(derive)
	plain.Memo(derive)
	if calls != 3 {
		t.Errorf("an uncached session: derived %d times in all, want 3", calls)
	}
}

// TestSessionCacheCountsSignedIdentity: with Options.SignedIdentity, each
// entry also counts the identity JWT kept with it, so that cache_mib
// bounds what the cache really holds; the estimate is at least the
// base64url of the claims' JSON plus a header and an RSA-4096 signature.
func TestSessionCacheCountsSignedIdentity(t *testing.T) {
	t.Parallel()
	groups := make([]string, 150)
	for i := range groups {
		groups[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	}
	s := &Session{Tenant: "acme", NameID: "b.simon@acme.example", Email: "b.simon@acme.example", Name: "B. Simon", Groups: groups, Expires: 2e9}
	claims, err := json.Marshal(map[string]any{
		"iss": "https://docs.example.com", "aud": "document-service", "sub": s.NameID, "email": s.Email,
		"name": s.Name, "groups": s.Groups, "tenant": s.Tenant, "iat": 1.9e9, "nbf": 1.9e9, "exp": 2e9,
	})
	if err != nil {
		t.Fatal(err)
	}
	const header, rsa4096Signature = 120, 683
	if est, least := signedIdentityBytes(s), int64(len(claims)*4/3+header+rsa4096Signature); est < least {
		t.Errorf("signedIdentityBytes: got %d, want at least %d", est, least)
	}
	plain := newSessionCache(10, 1<<20, false, nil).add("v", s.clone(), 0)
	signed := newSessionCache(10, 1<<20, true, nil).add("v", s.clone(), 0)
	if got, want := signed.size-plain.size, signedIdentityBytes(s); got != want {
		t.Errorf("signed entry: got %d bytes more than a plain one, want %d", got, want)
	}
}
