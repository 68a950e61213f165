package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// testKeyRotation rolls a new session key through the replicas one at a
// time, in the three phases that log nobody out, and checks after every
// single replica's reload that every live session (made before the roll,
// and made during it by any replica) is valid on every replica, and that a
// login started at one replica completes at another (the in-flight login
// lives in a cookie sealed with the same keys):
//
//	(a) add the new key second: [K1] -> [K1, K2]. Every replica still seals
//	    with K1; the rotated ones can already open K2.
//	(b) put the new key first: [K1, K2] -> [K2, K1]. A rotated replica seals
//	    with K2, which every replica opens since (a) is complete.
//	(c) once no session sealed with K1 is left (they expire after
//	    session.lifetime, or the user signs in again), remove K1.
//
// This is the procedure deploy/CONFIGURATION.md describes (since commit 697fae4). The
// contrast, the one-phase procedure it described before (put the new key
// first at once), is in testOnePhaseRotation.
func testKeyRotation(t *testing.T, c *cluster) {
	rs := c.current()
	k1 := rs[0].currentSpec().keys
	if len(k1) != 1 {
		t.Fatalf("replicas start with keys %s, want one key", keyNames(k1))
	}
	old, next := k1[0], newSessionKey(t, "K2")

	// A browser that signed in before the roll remembers its organisation
	// in a cookie sealed with the session keys and kept for a year.
	first := spLogin(t, rs[0], rs[1], c.fileIDP, fileTenant, "user00@acme.example")
	remembered := cookieHeader(first, tenantCookie)
	if where := rememberedLogin(t, rs[2], remembered); where != loginPath+fileTenant {
		t.Fatalf("a page load with the remembered-tenant cookie before the roll goes to %q, want %q", where, loginPath+fileTenant)
	}

	var live []*session
	n := 0
	// mintEverywhere signs a new user in through every replica: the login
	// starts at replica i and completes at replica i+1.
	mintEverywhere := func() {
		t.Helper()
		for i := range rs {
			n++
			live = append(live, spSession(t, rs[i], rs[(i+1)%len(rs)], c.fileIDP, fileTenant, fmt.Sprintf("user%02d@acme.example", n)))
		}
	}
	checkEverywhere := func(step string) {
		t.Helper()
		for _, s := range live {
			for _, g := range rs {
				if err := validAt(g.url(), s); err != nil {
					t.Errorf("%s: %s is refused by %s (keys %s): %v", step, s, g.name, keyNames(g.currentSpec().keys), err)
				}
			}
		}
	}

	invalidBefore := sessionRejections(t, rs, "invalid")
	mintEverywhere()
	checkEverywhere("before the roll")
	for _, phase := range []struct {
		name string
		keys []sessionKey
	}{
		{"(a) new key added second", []sessionKey{old, next}},
		{"(b) new key moved first", []sessionKey{next, old}},
	} {
		for _, g := range rs {
			g.reconfigure(t, "success", func(s *gatewaySpec) { s.keys = phase.keys })
			step := fmt.Sprintf("%s, %s reloaded", phase.name, g.name)
			mintEverywhere()
			checkEverywhere(step)
		}
		c.setKeys(phase.keys)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Before (c), every session sealed with K1 must be gone. In production
	// that means waiting session.lifetime; here their users sign in again,
	// which gives them sessions sealed with K2 (every replica seals with K2
	// after (b)).
	var stale []*session
	for i, s := range live {
		if s.key != old.name {
			continue
		}
		stale = append(stale, s)
		live[i] = spSession(t, rs[i%len(rs)], rs[(i+1)%len(rs)], c.fileIDP, fileTenant, s.user)
	}
	for _, g := range rs {
		g.reconfigure(t, "success", func(s *gatewaySpec) { s.keys = []sessionKey{next} })
		step := fmt.Sprintf("(c) old key removed, %s reloaded", g.name)
		mintEverywhere()
		checkEverywhere(step)
	}
	c.setKeys([]sessionKey{next})
	if got := sessionRejections(t, rs, "invalid") - invalidBefore; got != 0 {
		t.Errorf("sso_gateway_session_rejections_total{reason=\"invalid\"} grew by %v during the three-phase roll, want 0", got)
	}
	t.Logf("three-phase roll: %d sessions checked on %d replicas after each of %d reloads; none refused", len(live), len(rs), 3*len(rs))

	// Why (c) must wait: a session still sealed with K1 is refused now.
	for _, s := range stale {
		for _, g := range rs {
			if r, err := whoami(g.url(), s); err != nil || r.code != http.StatusUnauthorized {
				t.Errorf("%s after K1 was removed at %s: got %v %v, want 401", s, g.name, r, err)
			}
		}
	}
	// The remembered organisation is sealed with K1 too, and lives a year,
	// not session.lifetime: removing K1 forgets it.
	if where := rememberedLogin(t, rs[0], remembered); where != loginPath+fileTenant {
		t.Logf("as deploy/CONFIGURATION.md says (rotation step 3): after K1 was removed, a page load with the remembered-tenant cookie sealed before the roll goes to %q instead of %q; users pick their organisation again", where, loginPath+fileTenant)
	}

	t.Run("OnePhaseContrast", func(t *testing.T) { testOnePhaseRotation(t, c) })
}

// sessionRejections sums sso_gateway_session_rejections_total{reason} over
// replicas.
func sessionRejections(t *testing.T, rs []*gateway, reason string) float64 {
	t.Helper()
	sum := 0.0
	for _, g := range rs {
		sum += g.metrics(t).value("sso_gateway_session_rejections_total", "reason", reason)
	}
	return sum
}

// rememberedLogin returns the path where a page load of / with cookie (and
// no session) is sent.
func rememberedLogin(t *testing.T, g *gateway, cookie string) string {
	t.Helper()
	r, err := do(http.MethodGet, g.url()+"/", cookie, browserAccept, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusFound && r.code != http.StatusSeeOther {
		t.Fatalf("page load without a session at %s: got %v, want a redirect", g.name, r)
	}
	where, _, _ := strings.Cut(r.header.Get("Location"), "?")
	return where
}

// testOnePhaseRotation shows what the one-phase procedure (deploy/CONFIGURATION.md's
// until commit 697fae4: "add the new pair as the first entry and keep the
// old one after it; roll it out to every replica") does while it is being
// rolled out: a replica already rotated
// seals new sessions (and in-flight logins) with a key the others do not
// have yet, so a user who signs in there is signed out whenever the load
// balancer sends them to a replica not rotated yet, and a login started
// there fails if its answer reaches one of those. This is the expected
// outcome of that procedure, recorded as a finding, not a failure of the
// gateway.
func testOnePhaseRotation(t *testing.T, c *cluster) {
	rs := c.current()
	cur := rs[0].currentSpec().keys
	if len(cur) != 1 {
		t.Fatalf("replicas have keys %s, want one key", keyNames(cur))
	}
	oneStep := []sessionKey{newSessionKey(t, "K3"), cur[0]}

	invalidBefore := sessionRejections(t, rs, "invalid")
	rs[0].reconfigure(t, "success", func(s *gatewaySpec) { s.keys = oneStep })
	early := login(t, rs[0], c.fileIDP, fileTenant, "early@acme.example")
	before := login(t, rs[1], c.fileIDP, fileTenant, "before@acme.example")
	checkValid(t, rs[0].name, rs[0].url(), early)
	checkValid(t, rs[0].name, rs[0].url(), before) // the rotated replica still opens the old key
	refused := 0
	for _, g := range rs[1:] {
		r, err := whoami(g.url(), early)
		if err != nil {
			t.Fatal(err)
		}
		if r.code == http.StatusUnauthorized {
			refused++
		} else {
			t.Errorf("%s at %s (keys %s): got %v, want 401: the one-phase roll was expected to sign this user out there",
				early, g.name, keyNames(g.currentSpec().keys), r)
		}
	}
	if got := sessionRejections(t, rs, "invalid") - invalidBefore; got != float64(refused) {
		t.Errorf("sso_gateway_session_rejections_total{reason=\"invalid\"} grew by %v, want %d (the refused sessions)", got, refused)
	}
	crossed := spLogin(t, rs[0], rs[1], c.fileIDP, fileTenant, "midway@acme.example")
	if crossed.code == http.StatusSeeOther {
		t.Errorf("a login started at %s (keys %s) and completed at %s (keys %s) succeeded; the one-phase roll was expected to break it",
			rs[0].name, keyNames(oneStep), rs[1].name, keyNames(cur))
	}
	t.Logf("why rotation takes three steps: while %s has %s and the others %s, a session it issues is refused (401) by %d of %d other replicas, and a login started there and answered at %s fails (%d); behind a round-robin load balancer those users are signed out or cannot sign in until the roll completes",
		rs[0].name, keyNames(oneStep), keyNames(cur), refused, len(rs)-1, rs[1].name, crossed.code)

	// Once the roll is complete the session is valid everywhere again.
	for _, g := range rs[1:] {
		g.reconfigure(t, "success", func(s *gatewaySpec) { s.keys = oneStep })
	}
	c.setKeys(oneStep)
	for _, g := range rs {
		checkValid(t, g.name, g.url(), early)
		checkValid(t, g.name, g.url(), before)
	}
}
