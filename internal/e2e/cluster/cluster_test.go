package cluster

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// Tenants of the cluster: one with a metadata file, one with a metadata
// URL served by the test.
const (
	fileTenant = "acme"
	urlTenant  = "contoso"
)

// cluster is three gateway replicas behind a load balancer, with their
// Redis, IdPs, metadata server and upstream.
type cluster struct {
	owner    *testing.T // the test the processes belong to
	redis    *redistest.Server
	fileIDP  *samltest.IDP // fileTenant's IdP
	urlIDP   *samltest.IDP // urlTenant's IdP
	metadata *switchServer // serves urlIdP's metadata
	upstream *switchServer
	lb       *loadBalancer

	mu       sync.Mutex
	spec     gatewaySpec // what a new replica gets
	replicas []*gateway
	started  int // replicas started so far, for names
}

// newCluster starts everything and waits until the load balancer sees every
// replica ready.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	start := time.Now()
	c := &cluster{owner: t, redis: redistest.Start(t)}
	dir := t.TempDir()

	spCert, spKey := testfiles.SPKeyPair(t, dir, "sp-cert.pem", "sp-key.pem")

	c.fileIDP = samltest.NewIDP(t)
	acmeXML := filepath.Join(dir, "acme-federationmetadata.xml")
	testfiles.Write(t, acmeXML, c.fileIDP.MetadataXML())

	c.urlIDP = samltest.NewIDP(t)
	var served atomic.Int64
	c.metadata = newSwitchServer(t, "metadata", metadataHandler(c.urlIDP.MetadataXML(), &served))
	c.upstream = newSwitchServer(t, "upstream", upstreamHandler)

	c.spec = gatewaySpec{
		upstream: c.upstream.url(),
		redisURL: c.redis.URL(),
		spCert:   spCert,
		spKey:    spKey,
		keys:     []sessionKey{newSessionKey(t, "K1")},
		tenants: []tenantSpec{
			{id: fileTenant, metadataFile: acmeXML},
			{id: urlTenant, metadataURL: c.metadata.url() + "/federationmetadata/2007-06/federationmetadata.xml"},
		},
	}
	c.lb = newLoadBalancer(t)
	for range 3 {
		c.addReplica(t)
	}
	t.Logf("cluster of %v up in %v; load balancer at %s", c.current(), time.Since(start).Round(time.Millisecond), c.lb.url())
	return c
}

// addReplica starts a replica with the cluster's spec, puts it behind the
// load balancer and waits until it gets traffic.
func (c *cluster) addReplica(t *testing.T) *gateway {
	t.Helper()
	c.mu.Lock()
	c.started++
	name := fmt.Sprintf("gw%d", c.started)
	spec := c.spec
	c.mu.Unlock()
	g := startGateway(t, c.owner, name, spec)
	c.lb.add(g)
	c.lb.waitReady(t, g)
	c.mu.Lock()
	c.replicas = append(c.replicas, g)
	c.mu.Unlock()
	return g
}

// removeReplica takes g out of the cluster and the load balancer.
func (c *cluster) removeReplica(g *gateway) {
	c.lb.remove(g)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.replicas {
		if r == g {
			c.replicas = append(c.replicas[:i:i], c.replicas[i+1:]...)
			return
		}
	}
}

// current returns the running replicas, oldest first.
func (c *cluster) current() []*gateway {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*gateway(nil), c.replicas...)
}

// setKeys records keys as what new replicas get.
func (c *cluster) setKeys(keys []sessionKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spec.keys = keys
}

// logTails shows every replica's recent log.
func (c *cluster) logTails(n int) string {
	var b strings.Builder
	for _, g := range c.current() {
		fmt.Fprintf(&b, "--- %s:\n%s\n", g.name, g.tail(n))
	}
	return b.String()
}

// TestCluster runs the scenarios in order on one cluster; each leaves the
// cluster as it found it: every replica ready, the same session keys on
// all, the upstream and Redis up.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	t.Cleanup(func() {
		t.Logf("load balancer: %d retries after a transport error, %d requests with no ready backend",
			c.lb.retries.Load(), c.lb.noReady.Load())
		if errs := c.lb.transportErrors(); len(errs) > 0 {
			t.Logf("load balancer transport errors:\n  %s", strings.Join(errs, "\n  "))
		}
	})

	var first firstLogin
	t.Run("LoginOnOneReplicaIsValidOnAll", func(t *testing.T) { first = testLoginEverywhere(t, c) })
	t.Run("ReplayRefusedByAnotherReplica", func(t *testing.T) { testReplay(t, c, first) })
	t.Run("SessionKeyRotation", func(t *testing.T) { testKeyRotation(t, c) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, c) })
	t.Run("DrainOnSIGTERM", func(t *testing.T) { testDrain(t, c) })
	t.Run("DrainTimeoutCutsLongDownload", func(t *testing.T) { testDrainTimeout(t, c) })
	t.Run("RollingRestart", func(t *testing.T) { testRollingRestart(t, c) })
}

// firstLogin is a login made on the first replica: the form the IdP posted
// there, for the replay test.
type firstLogin struct {
	form   map[string][]string
	tenant string
}

// testLoginEverywhere: a login completed at replica 1 gives a session that
// replicas 2 and 3 (and the load balancer) accept: sessions are cookies
// sealed with the shared session keys, so any replica serves any request.
// Both tenants: the metadata file and the metadata URL.
func testLoginEverywhere(t *testing.T, c *cluster) firstLogin {
	rs := c.current()
	var first firstLogin
	for _, tc := range []struct {
		tenant string
		idp    *samltest.IDP
	}{{fileTenant, c.fileIDP}, {urlTenant, c.urlIDP}} {
		user := "alice@" + tc.tenant + ".example"
		form := loginForm(t, tc.idp, tc.tenant, user)
		r, err := postACS(rs[0].url(), tc.tenant, form)
		if err != nil {
			t.Fatal(err)
		}
		cookie := sessionCookieHeader(r)
		if r.code != http.StatusSeeOther || cookie == "" {
			t.Fatalf("ACS of %s at %s: got %v, cookies %q; want 303 with a session cookie\n%s",
				tc.tenant, rs[0].name, r, r.header.Values("Set-Cookie"), rs[0].tail(15))
		}
		for _, sc := range r.header.Values("Set-Cookie") {
			if strings.HasPrefix(sc, sessionCookie) && (!strings.Contains(sc, "Secure") || !strings.Contains(sc, "Path=/")) {
				t.Errorf("session cookie %q: want Secure and Path=/ (a __Host- cookie)", sc)
			}
		}
		s := &session{user: user, tenant: tc.tenant, cookie: cookie, issuer: rs[0].name, key: "K1"}
		for _, g := range rs {
			checkValid(t, g.name, g.url(), s)
		}
		checkValid(t, "the load balancer", c.lb.url(), s)
		if first.form == nil {
			first = firstLogin{form: form, tenant: tc.tenant}
		}
	}
	// Without a session, an XHR is refused everywhere, not redirected.
	for _, g := range rs {
		if r, err := whoami(g.url(), nil); err != nil || r.code != http.StatusUnauthorized {
			t.Errorf("%s without a session: got %v %v, want 401", g.name, r, err)
		}
	}
	return first
}

// testReplay: the SAML response accepted by replica 1 is refused by
// replica 2 (and 3): every replica records accepted assertion IDs in the
// shared Redis.
func testReplay(t *testing.T, c *cluster, first firstLogin) {
	if first.form == nil {
		t.Fatal("the login subtest failed: no response to replay")
	}
	rs := c.current()
	for _, g := range rs[1:] {
		r, err := postACS(g.url(), first.tenant, first.form)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "already been used") {
			t.Errorf("the same response posted again to %s: got %v, want 403 \"already been used\"\n%s", g.name, r, g.tail(10))
		}
		if got := sessionCookieHeader(r); got != "" {
			t.Errorf("%s set a session for a replayed response: %q", g.name, got)
		}
		m := g.metrics(t)
		if v := m.value("sso_gateway_logins_total", "tenant", first.tenant, "result", "failure", "reason", "replay"); v != 1 {
			t.Errorf("%s: sso_gateway_logins_total{reason=\"replay\"}: got %v, want 1", g.name, v)
		}
	}

	// A response posted to every replica at the same moment is accepted
	// exactly once: the record is one atomic SET NX, not a read then a
	// write.
	for round := range 5 {
		form := loginForm(t, c.fileIDP, fileTenant, fmt.Sprintf("racer%d@acme.example", round))
		codes := make([]int, len(rs))
		var wg sync.WaitGroup
		for i, g := range rs {
			wg.Go(func() {
				r, err := postACS(g.url(), fileTenant, form)
				if err != nil {
					codes[i] = -1
					return
				}
				codes[i] = r.code
			})
		}
		wg.Wait()
		accepted := 0
		for _, code := range codes {
			switch code {
			case http.StatusSeeOther:
				accepted++
			case http.StatusForbidden:
			default:
				t.Errorf("round %d: a replica answered %d, want 303 or 403 (all: %v)", round, code, codes)
			}
		}
		if accepted != 1 {
			t.Errorf("round %d: the same response posted to %d replicas at once was accepted %d times, want once (answers %v)", round, len(rs), accepted, codes)
		}
	}
}
