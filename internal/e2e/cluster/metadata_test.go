package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// Metadata refresh timing, fixed in the gateway (metadata/refresh.go):
// with idp_metadata_refresh_interval at its minimum of 1m, the first
// refresh comes 54-66 s after the start-up fetch; a failed fetch is tried
// again 27-33 s later; a fetch that gets no answer gives up after 15 s.
const (
	firstRefreshMax = 66 * time.Second
	fetchTimeout    = 15 * time.Second
	retryMax        = 33 * time.Second
	// timingSlack covers a loaded machine.
	timingSlack = 10 * time.Second
)

// metadataTenant is a URL tenant whose metadata server fails in one way.
type metadataTenant struct {
	id     string
	fault  string // "error" (500), "hang" (no answer) or "down" (connection refused)
	idp    *samltest.IDP
	srv    *switchServer
	served atomic.Int64

	failedAt  time.Time // when the gateway counted the failed refresh
	clearedAt time.Time // when the fault was cleared
	lastGood  float64   // sso_gateway_idp_metadata_last_success_timestamp_seconds before the fault
}

func (mt *metadataTenant) inject(t *testing.T) {
	if mt.fault == "down" {
		mt.srv.down()
		return
	}
	mt.srv.setMode(mt.fault)
}

func (mt *metadataTenant) clear(t *testing.T) {
	if mt.fault == "down" {
		mt.srv.up(t)
	}
	mt.srv.setMode("ok")
	mt.clearedAt = time.Now()
}

// TestMetadataOutage: a gateway whose tenants' IdP metadata URLs stop
// answering (500, no answer, connection refused) keeps each tenant's last
// good metadata: logins keep working, the tenants stay ready, /readyz stays
// 200, and sso_gateway_idp_metadata_refresh_total{result="fetch_error"}
// counts the failures; once the URL answers again, the next retry counts a
// success (see below). It runs one gateway of its own, in parallel with TestCluster,
// because the gateway's refresh timing (a minute at the least) dominates
// it.
//
// Recovery: the next retry, 27-33 s after the failure, counts a success
// and logins keep working. The hanging URL's recovery is not awaited: its
// failure is counted only when the fetch gives up after 15 s, and the
// retry 30 s after that would add another quarter minute to the package;
// the code path after a failure is the same for every kind of failure.
func TestMetadataOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spCert, spKey := testfiles.SPKeyPair(t, dir, "sp-cert.pem", "sp-key.pem")
	upstream := newSwitchServer(t, "upstream", upstreamHandler)

	tenants := []*metadataTenant{
		{id: "idp-500", fault: "error"},
		{id: "idp-refused", fault: "down"},
		{id: "idp-hang", fault: "hang"},
	}
	spec := gatewaySpec{
		upstream: upstream.url(),
		spCert:   spCert,
		spKey:    spKey,
		keys:     []sessionKey{newSessionKey(t, "K1")},
	}
	for _, mt := range tenants {
		mt.idp = samltest.NewIDP(t)
		mt.srv = newSwitchServer(t, "metadata "+mt.id, metadataHandler(mt.idp.MetadataXML(), &mt.served))
		spec.tenants = append(spec.tenants, tenantSpec{id: mt.id, metadataURL: mt.srv.url() + "/federationmetadata.xml"})
	}
	start := time.Now() // the start-up fetches happen after this
	g := startGateway(t, t, "gw-metadata", spec)

	m := g.metrics(t)
	for _, mt := range tenants {
		if v := m.value("sso_gateway_idp_metadata_refresh_total", "tenant", mt.id, "result", "success"); v != 1 {
			t.Fatalf("%s: refresh_total{result=\"success\"} at start: got %v, want 1", mt.id, v)
		}
		if v := m.value("sso_gateway_tenant_ready", "tenant", mt.id); v != 1 {
			t.Fatalf("%s: tenant_ready at start: got %v, want 1", mt.id, v)
		}
		mt.lastGood = m.value("sso_gateway_idp_metadata_last_success_timestamp_seconds", "tenant", mt.id)
		s := login(t, g, mt.idp, mt.id, "kim@"+mt.id+".example")
		checkValid(t, g.name, g.url(), s)
	}

	// The faults start now, long before the first scheduled refresh.
	for _, mt := range tenants {
		mt.inject(t)
	}
	t.Cleanup(func() {
		for _, mt := range tenants {
			if mt.clearedAt.IsZero() {
				mt.clear(t)
			}
		}
	})
	stopWatch := watchReadyz(g)

	// Wait for each tenant's failed refresh; check, during its fault, that
	// the tenant still works on its last good metadata; then clear it.
	pending := append([]*metadataTenant(nil), tenants...)
	deadline := start.Add(firstRefreshMax + fetchTimeout + timingSlack)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed refresh counted by %v after start for %v:\n%s", time.Since(start).Round(time.Second), ids(pending), g.tail(20))
		}
		time.Sleep(250 * time.Millisecond)
		m := g.metrics(t)
		left := pending[:0]
		for _, mt := range pending {
			if m.value("sso_gateway_idp_metadata_refresh_total", "tenant", mt.id, "result", "fetch_error") < 1 {
				left = append(left, mt)
				continue
			}
			mt.failedAt = time.Now()
			checkDuringOutage(t, g, mt, m)
			mt.clear(t)
			t.Logf("%s (%s): failed refresh counted %v after start; tenant kept working; fault cleared", mt.id, mt.fault, time.Since(start).Round(time.Second))
		}
		pending = left
	}

	// Recovery: the retry after the failure succeeds, by itself, with no
	// reload or restart.
	var recovering []*metadataTenant
	for _, mt := range tenants {
		if mt.fault != "hang" {
			recovering = append(recovering, mt)
		}
	}
	for len(recovering) > 0 {
		time.Sleep(250 * time.Millisecond)
		m := g.metrics(t)
		left := recovering[:0]
		for _, mt := range recovering {
			recovered := m.value("sso_gateway_idp_metadata_refresh_total", "tenant", mt.id, "result", "success") >= 2 &&
				m.value("sso_gateway_idp_metadata_last_success_timestamp_seconds", "tenant", mt.id) > mt.lastGood
			switch {
			case recovered:
				t.Logf("%s: refresh succeeded again %v after the fault cleared", mt.id, time.Since(mt.clearedAt).Round(time.Second))
				s := login(t, g, mt.idp, mt.id, "lee@"+mt.id+".example")
				checkValid(t, g.name, g.url(), s)
			case time.Since(mt.failedAt) > retryMax+timingSlack:
				t.Errorf("%s: no successful refresh within %v of the failure: refresh_total %v\n%s", mt.id, retryMax+timingSlack,
					m.samples("sso_gateway_idp_metadata_refresh_total", "tenant", mt.id), g.tail(20))
			default:
				left = append(left, mt)
			}
		}
		recovering = left
	}
	if bad := stopWatch(); len(bad) > 0 {
		t.Errorf("/readyz was not 200 during the metadata outage %d time(s), first: %s", len(bad), bad[0])
	}
}

// checkDuringOutage checks a tenant whose metadata URL is failing: still
// ready, last success unchanged, logins work, /readyz 200 without naming it.
func checkDuringOutage(t *testing.T, g *gateway, mt *metadataTenant, m metricSet) {
	t.Helper()
	if v := m.value("sso_gateway_tenant_ready", "tenant", mt.id); v != 1 {
		t.Errorf("%s during the outage: tenant_ready got %v, want 1", mt.id, v)
	}
	if v := m.value("sso_gateway_idp_metadata_last_success_timestamp_seconds", "tenant", mt.id); v != mt.lastGood {
		t.Errorf("%s during the outage: last_success_timestamp_seconds got %v, want %v (unchanged)", mt.id, v, mt.lastGood)
	}
	s := login(t, g, mt.idp, mt.id, "mia@"+mt.id+".example")
	checkValid(t, g.name, g.url(), s)
	if code, body := g.readyz(); code != http.StatusOK || strings.Contains(body, mt.id) {
		t.Errorf("/readyz during %s's outage: got %d %q, want 200 not naming it", mt.id, code, body)
	}
}

// watchReadyz polls /readyz every 100 ms until the returned function is
// called, which returns every answer that was not 200. A request that got
// no answer in time is not counted: on a busy machine that says nothing
// about what the gateway would answer.
func watchReadyz(g *gateway) func() []string {
	stop := make(chan struct{})
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if code, body := g.readyz(); code != http.StatusOK && code != 0 {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %d %q", time.Now().Format(time.TimeOnly), code, body))
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	return func() []string {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

func ids(ts []*metadataTenant) []string {
	out := make([]string, len(ts))
	for i, mt := range ts {
		out[i] = mt.id
	}
	return out
}
