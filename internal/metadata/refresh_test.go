package metadata_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

const refreshTotal = "sso_gateway_idp_metadata_refresh_total"

// served is one answer of a metadataServer.
type served struct {
	status int    // 0: 200
	body   []byte // the document
	etag   string // if set, sent, and a matching If-None-Match gets 304
}

// metadataServer plays an IdP's metadata URL.
type metadataServer struct {
	srv  *httptest.Server
	hits atomic.Int64

	mu   sync.Mutex
	resp served
	inm  []string // the If-None-Match of every request
}

func newMetadataServer(t testing.TB, body []byte) *metadataServer {
	t.Helper()
	s := &metadataServer{resp: served{body: body}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		resp := s.resp
		inm := r.Header.Get("If-None-Match")
		s.inm = append(s.inm, inm)
		s.mu.Unlock()
		if resp.etag != "" {
			w.Header().Set("ETag", resp.etag)
			if inm == resp.etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if resp.status != 0 {
			w.WriteHeader(resp.status)
		}
		_, _ = w.Write(resp.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *metadataServer) serve(r served) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp = r
}

func (s *metadataServer) ifNoneMatch() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.inm...)
}

func (s *metadataServer) url(t testing.TB) *url.URL {
	return mustURL(t, s.srv.URL+"/federationmetadata/2007-06/federationmetadata.xml")
}

// applied records the documents a Target's Apply receives.
type applied struct {
	mu   sync.Mutex
	docs []*metadata.IDP
}

func (a *applied) apply(md *metadata.IDP) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.docs = append(a.docs, md)
}

func (a *applied) list() []*metadata.IDP {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*metadata.IDP(nil), a.docs...)
}

type refresherEnv struct {
	r     *metadata.Refresher
	clock *clockwork.FakeClock
	reg   *prometheus.Registry
}

func newRefresher(t testing.TB, clock *clockwork.FakeClock, concurrency int) *refresherEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := metadata.NewRefresher(t.Context(), metadata.RefresherOptions{
		Clock:       clock,
		Metrics:     metadata.NewMetrics(reg),
		Concurrency: concurrency,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &refresherEnv{r: r, clock: clock, reg: reg}
}

// refreshes returns sso_gateway_idp_metadata_refresh_total by
// "tenant/result".
func refreshes(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != refreshTotal {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[labels["tenant"]+"/"+labels["result"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func wantRefreshes(t testing.TB, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	if got := refreshes(t, reg); !maps.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", refreshTotal, got, want)
	}
}

// sleeping waits until n refresh goroutines are asleep on the fake clock.
func sleeping(t testing.TB, clock *clockwork.FakeClock, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, n); err != nil {
		t.Fatalf("waiting for %d refresh goroutines to sleep: %v", n, err)
	}
}

// eventually waits for cond, which the code under test makes true at once
// when it is right.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func recv(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func send(t testing.TB, ch chan<- struct{}, what string) {
	t.Helper()
	select {
	case ch <- struct{}{}:
	case <-time.After(waitLong):
		t.Fatalf("timed out waiting to %s", what)
	}
}

func waitFirst(t testing.TB, r *metadata.Refresher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	r.WaitFirst(ctx)
	if ctx.Err() != nil {
		t.Fatal("WaitFirst did not return")
	}
}

func mustStatus(t testing.TB, r *metadata.Refresher, tenant string) metadata.Status {
	t.Helper()
	st, ok := r.Status(tenant)
	if !ok {
		t.Fatalf("Status(%q): no watch", tenant)
	}
	return st
}

func TestNewRefresherNeedsMetrics(t *testing.T) {
	t.Parallel()
	if _, err := metadata.NewRefresher(t.Context(), metadata.RefresherOptions{}); err == nil {
		t.Error("got a Refresher without Metrics, want an error")
	}
}

func TestRefresherFirstFetchApplies(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, idp.MetadataXML())
	env := newRefresher(t, clock, 0)
	if _, ok := env.r.Status("acme"); ok {
		t.Fatal("Status before Sync: got a watch, want none")
	}
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: a.apply}})
	waitFirst(t, env.r)

	docs := a.list()
	if len(docs) != 1 {
		t.Fatalf("Apply: got %d calls, want 1", len(docs))
	}
	if docs[0].Entity.EntityID != idp.EntityID || len(docs[0].SigningCerts) != 1 || !docs[0].SigningCerts[0].Equal(idp.Cert) {
		t.Errorf("applied %q with %d certificates, want %q with the IdP's", docs[0].Entity.EntityID, len(docs[0].SigningCerts), idp.EntityID)
	}
	st := mustStatus(t, env.r, "acme")
	if st.Current != docs[0] {
		t.Error("Status.Current is not the applied document")
	}
	if st.URL != srv.url(t).String() {
		t.Errorf("Status.URL: got %q, want %q", st.URL, srv.url(t))
	}
	if st.LastError != "" || !st.LastSuccess.Equal(clock.Now()) || !st.LastAttempt.Equal(clock.Now()) {
		t.Errorf("Status: got error %q, success %q, attempt %q; want none, %q, %q", st.LastError, st.LastSuccess, st.LastAttempt, clock.Now(), clock.Now())
	}
	if got := srv.hits.Load(); got != 1 {
		t.Errorf("fetches: got %d, want 1", got)
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/success": 1})
}

// TestRefresherKeepsLastGood: a refresh that fails, or brings metadata
// that cannot be used, changes nothing but the error and the counter; the
// next good one is applied.
func TestRefresherKeepsLastGood(t *testing.T) {
	t.Parallel()
	now := time.Now()
	expiredIDP := samltest.NewIDP(t)
	_, expiredIDP.Cert = samltest.NewKeyPair(t, "expired", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -1))
	tests := []struct {
		name   string
		bad    served
		result string
		want   string
	}{
		{"HTTP 500", served{status: http.StatusInternalServerError, body: []byte("oops")}, "fetch_error", "HTTP status 500"},
		{"HTTP 404", served{status: http.StatusNotFound}, "fetch_error", "HTTP status 404"},
		{"truncated XML", served{body: []byte(`<?xml version="1.0"?><EntityDescriptor entityID="x"`)}, "invalid", "not SAML metadata"},
		{"a sign-in page instead of metadata", served{body: []byte("<html><body>Sign in</body></html>")}, "invalid", "not SAML metadata"},
		{"expired certificates only", served{body: expiredIDP.MetadataXML()}, "invalid", "no signing certificate is valid now"},
		{"Entra's tenant-independent document", served{body: readTestdata(t, entraCommonFile)}, "invalid", "tenant-independent template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClock()
			idp := newIDP(t, clock.Now())
			srv := newMetadataServer(t, idp.MetadataXML())
			env := newRefresher(t, clock, 0)
			var a applied
			env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: a.apply}})
			waitFirst(t, env.r)
			good := mustStatus(t, env.r, "acme")
			if good.Current == nil {
				t.Fatalf("first fetch: %s", good.LastError)
			}

			srv.serve(tt.bad)
			for i := 1; i <= 2; i++ {
				clock.Advance(time.Minute) // well before the next scheduled refresh
				err := env.r.RefreshNow(t.Context(), "acme")
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("RefreshNow: got %v, want an error containing %q", err, tt.want)
				}
				st := mustStatus(t, env.r, "acme")
				if st.Current != good.Current {
					t.Error("Status.Current changed, want the last good document")
				}
				if st.LastError != err.Error() {
					t.Errorf("Status.LastError: got %q, want %q", st.LastError, err)
				}
				if !st.LastSuccess.Equal(good.LastSuccess) || !st.LastAttempt.Equal(clock.Now()) {
					t.Errorf("Status: got success %q and attempt %q, want %q and %q", st.LastSuccess, st.LastAttempt, good.LastSuccess, clock.Now())
				}
				if n := len(a.list()); n != 1 {
					t.Errorf("Apply: got %d calls, want 1", n)
				}
				wantRefreshes(t, env.reg, map[string]float64{"acme/success": 1, "acme/" + tt.result: float64(i)})
			}

			// The IdP recovers, with a new certificate.
			_, next := samltest.NewKeyPair(t, "next", 2048, clock.Now().Add(-time.Hour), clock.Now().AddDate(2, 0, 0))
			idp.ExtraCerts = []*x509.Certificate{next}
			srv.serve(served{body: idp.MetadataXML()})
			if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
				t.Fatalf("RefreshNow after recovery: %v", err)
			}
			docs := a.list()
			if len(docs) != 2 || len(docs[1].SigningCerts) != 2 {
				t.Fatalf("Apply after recovery: got %d calls, want 2, the last with 2 certificates", len(docs))
			}
			if st := mustStatus(t, env.r, "acme"); st.Current != docs[1] || st.LastError != "" || !st.LastSuccess.Equal(clock.Now()) {
				t.Errorf("Status after recovery: got error %q, want the new document and no error", st.LastError)
			}
			wantRefreshes(t, env.reg, map[string]float64{"acme/success": 2, "acme/" + tt.result: 2})
		})
	}
}

// step advances the fake clock through one scheduled wait of about d
// (jittered by ±10%): nothing is fetched before 0.89·d, and by 1.11·d one
// more fetch has been made and the goroutine sleeps again.
func step(t testing.TB, env *refresherEnv, srv *metadataServer, d time.Duration) {
	t.Helper()
	sleeping(t, env.clock, 1)
	before := srv.hits.Load()
	env.clock.Advance(d * 89 / 100)
	// Had the timer fired, the goroutine would sleep again only after
	// fetching; if it did not, it still sleeps.
	sleeping(t, env.clock, 1)
	if got := srv.hits.Load(); got != before {
		t.Fatalf("fetched %d times within %s, want none before %s", got-before, d*89/100, d)
	}
	env.clock.Advance(d * 22 / 100)
	sleeping(t, env.clock, 1)
	if got := srv.hits.Load(); got != before+1 {
		t.Fatalf("fetched %d times by %s, want once after %s", got-before, d*111/100, d)
	}
}

// TestRefresherBackoff: failed fetches are retried after 30s, 1m, 2m, ...
// up to the refresh interval; a success resets the schedule.
func TestRefresherBackoff(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, nil)
	srv.serve(served{status: http.StatusServiceUnavailable})
	env := newRefresher(t, clock, 0)
	const interval = 10 * time.Minute
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Interval: interval, Apply: a.apply}})
	waitFirst(t, env.r)
	if st := mustStatus(t, env.r, "acme"); st.Current != nil || !strings.Contains(st.LastError, "503") {
		t.Fatalf("after the first fetch: got error %q, want no document and a 503", st.LastError)
	}

	fails := 1
	for _, d := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, interval, interval} {
		step(t, env, srv, d)
		fails++
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/fetch_error": float64(fails)})

	// Recovery: the next fetch succeeds, and the one after comes an
	// interval later.
	srv.serve(served{body: idp.MetadataXML()})
	step(t, env, srv, interval)
	if n := len(a.list()); n != 1 {
		t.Fatalf("Apply: got %d calls, want 1", n)
	}
	step(t, env, srv, interval)

	// A new failure starts the back-off again from 30s.
	srv.serve(served{status: http.StatusBadGateway})
	step(t, env, srv, interval)
	step(t, env, srv, 30*time.Second)
	step(t, env, srv, time.Minute)
	if st := mustStatus(t, env.r, "acme"); st.Current == nil || !strings.Contains(st.LastError, "502") {
		t.Errorf("got error %q, want the last good document kept and a 502", st.LastError)
	}
	if n := len(a.list()); n != 2 {
		t.Errorf("Apply: got %d calls, want 2 (the first success and the unchanged one after it)", n)
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/fetch_error": float64(fails + 3), "acme/success": 2})
}

func TestRefresherNotModified(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, nil)
	srv.serve(served{body: idp.MetadataXML(), etag: `"v1"`})
	env := newRefresher(t, clock, 0)
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: a.apply}})
	waitFirst(t, env.r)
	first := mustStatus(t, env.r, "acme").Current

	// The scheduled refresh, an hour later, asks whether it changed.
	step(t, env, srv, metadata.DefaultRefreshInterval)
	wantRefreshes(t, env.reg, map[string]float64{"acme/success": 1, "acme/not_modified": 1})

	// So does RefreshNow.
	clock.Advance(5 * time.Minute)
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	st := mustStatus(t, env.r, "acme")
	if st.Current != first || st.LastError != "" || !st.LastSuccess.Equal(clock.Now()) {
		t.Errorf("after 304: got error %q and success %q, want the same document confirmed at %q", st.LastError, st.LastSuccess, clock.Now())
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/success": 1, "acme/not_modified": 2})
	if n := len(a.list()); n != 1 {
		t.Errorf("Apply: got %d calls, want 1", n)
	}
	if got, want := srv.ifNoneMatch(), []string{"", `"v1"`, `"v1"`}; !slices.Equal(got, want) {
		t.Errorf("If-None-Match: got %q, want %q", got, want)
	}

	// A changed document is fetched and applied.
	_, next := samltest.NewKeyPair(t, "next", 2048, clock.Now().Add(-time.Hour), clock.Now().AddDate(2, 0, 0))
	idp.ExtraCerts = []*x509.Certificate{next}
	srv.serve(served{body: idp.MetadataXML(), etag: `"v2"`})
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if docs := a.list(); len(docs) != 2 || len(docs[1].SigningCerts) != 2 {
		t.Errorf("Apply: got %d calls, want 2, the last with the new certificate", len(docs))
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/success": 2, "acme/not_modified": 2})
}

// TestRefresherNoConditionalGETWithoutDocument: validators of a document
// that was refused are not sent, or a 304 would leave nothing to use.
func TestRefresherNoConditionalGETWithoutDocument(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	srv := newMetadataServer(t, nil)
	srv.serve(served{body: []byte("<html/>"), etag: `"v1"`})
	env := newRefresher(t, clock, 0)
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: func(*metadata.IDP) {}}})
	waitFirst(t, env.r)
	if err := env.r.RefreshNow(t.Context(), "acme"); err == nil {
		t.Fatal("RefreshNow: got no error, want the document refused again")
	}
	if got, want := srv.ifNoneMatch(), []string{"", ""}; !slices.Equal(got, want) {
		t.Errorf("If-None-Match: got %q, want %q", got, want)
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/invalid": 2})
}

// TestRefresherDocumentDeadline: a document that asks to be fetched again
// sooner than the interval (cacheDuration, or validUntil approaching) is.
func TestRefresherDocumentDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cacheDuration string
		validUntil    time.Duration // from now; 0: none
		want          time.Duration
	}{
		{name: "no caching policy: the interval", want: time.Hour},
		{name: "cacheDuration shorter than the interval", cacheDuration: "PT10M", want: 10 * time.Minute},
		{name: "cacheDuration longer than the interval", cacheDuration: "PT2H", want: time.Hour},
		{name: "validUntil within the interval: halfway there", validUntil: 30 * time.Minute, want: 15 * time.Minute},
		{name: "validUntil far away", validUntil: 5 * time.Hour, want: time.Hour},
		{name: "both: the sooner", cacheDuration: "PT20M", validUntil: 30 * time.Minute, want: 15 * time.Minute},
		{name: "a tiny cacheDuration: a minute at least", cacheDuration: "PT1S", want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClock()
			idp := newIDP(t, clock.Now())
			doc := editXML(t, idp.MetadataXML(), func(root *etree.Element) {
				if tt.cacheDuration != "" {
					root.CreateAttr("cacheDuration", tt.cacheDuration)
				}
				if tt.validUntil != 0 {
					root.CreateAttr("validUntil", clock.Now().Add(tt.validUntil).UTC().Format(time.RFC3339Nano))
				}
			})
			srv := newMetadataServer(t, doc)
			env := newRefresher(t, clock, 0)
			var a applied
			env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Interval: time.Hour, Apply: a.apply}})
			waitFirst(t, env.r)
			if n := len(a.list()); n != 1 {
				t.Fatalf("first fetch: %s", mustStatus(t, env.r, "acme").LastError)
			}
			step(t, env, srv, tt.want)
			wantRefreshes(t, env.reg, map[string]float64{"acme/success": 2})
		})
	}
}

// TestRefresherSync: Sync keeps a watch whose target is unchanged (no
// fetch, and the new Apply gets the current document at once), and
// restarts one whose target changed. The tenant pins the signer of Entra's
// real file, so that a change of signers can be tested too.
// syncedAcme is a refresher with tenant acme synced once, pinned to
// Entra's signer, and the document its first fetch applied.
type syncedAcme struct {
	env     *refresherEnv
	srv     *metadataServer
	target  metadata.Target
	applied *applied
	current *metadata.IDP
}

func newSyncedAcme(t *testing.T) *syncedAcme {
	t.Helper()
	srv := newMetadataServer(t, readTestdata(t, entraFile))
	a := &syncedAcme{env: newRefresher(t, clockwork.NewFakeClockAt(entraNow), 0), srv: srv, applied: &applied{}}
	a.target = metadata.Target{Tenant: "acme", URL: srv.url(t), Signers: []*x509.Certificate{entraSigner(t)}, Apply: a.applied.apply}
	a.env.r.Sync([]metadata.Target{a.target})
	waitFirst(t, a.env.r)
	if a.current = mustStatus(t, a.env.r, "acme").Current; a.current == nil {
		t.Fatalf("first fetch: %s", mustStatus(t, a.env.r, "acme").LastError)
	}
	return a
}

func TestRefresherSync(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(t *testing.T, tg *metadata.Target, srv *metadataServer)
		refetch bool
		// seeded: the new watch starts with the old document, which the
		// new Apply gets before the new URL's.
		seeded bool
		// refused: the refetched document does not satisfy the new
		// signers, so the new Apply gets nothing from it.
		refused bool
	}{
		{name: "same target, new Apply", change: func(*testing.T, *metadata.Target, *metadataServer) {}},
		{name: "same signer, read again into a new slice", change: func(t *testing.T, tg *metadata.Target, _ *metadataServer) {
			tg.Signers = []*x509.Certificate{entraSigner(t)}
		}},
		// A new interval applies from the next schedule; the document is
		// kept (a reload that only changes it must not drop the tenant's
		// metadata while the URL happens to be down).
		{name: "new interval", change: func(_ *testing.T, tg *metadata.Target, _ *metadataServer) {
			tg.Interval = 2 * time.Hour
		}},
		// A new URL with the same signers keeps the document until the
		// new one arrives; TestRefresherSyncNewURLDown covers a new URL
		// that does not answer.
		{name: "new URL", refetch: true, seeded: true, change: func(t *testing.T, tg *metadata.Target, srv *metadataServer) {
			tg.URL = mustURL(t, srv.srv.URL+"/other.xml")
		}},
		{name: "another signer", refetch: true, refused: true, change: func(t *testing.T, tg *metadata.Target, _ *metadataServer) {
			_, other := samltest.NewKeyPair(t, "other", 2048, entraNow.AddDate(-1, 0, 0), entraNow.AddDate(1, 0, 0))
			tg.Signers = []*x509.Certificate{other}
		}},
		{name: "no signer any more", refetch: true, change: func(_ *testing.T, tg *metadata.Target, _ *metadataServer) {
			tg.Signers = nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acme := newSyncedAcme(t)
			env, srv, target, a1, current := acme.env, acme.srv, acme.target, acme.applied, acme.current
			var a2 applied

			changed := target
			changed.Apply = a2.apply
			tt.change(t, &changed, srv)
			env.r.Sync([]metadata.Target{changed})
			// A restarted watch would fetch at once, and WaitFirst would
			// wait for it.
			waitFirst(t, env.r)

			wantHits := int64(1)
			if tt.refetch {
				wantHits = 2
			}
			if got := srv.hits.Load(); got != wantHits {
				t.Errorf("fetches: got %d, want %d", got, wantHits)
			}
			if n := len(a1.list()); n != 1 {
				t.Errorf("old Apply: got %d calls, want 1", n)
			}
			if tt.refetch {
				got := a2.list()
				want := 1
				if tt.seeded {
					want = 2
				}
				if tt.refused {
					want--
				}
				if len(got) != want {
					t.Fatalf("new Apply: got %d calls, want %d", len(got), want)
				}
				if want == 0 {
					if st := mustStatus(t, env.r, "acme"); st.Current != nil {
						t.Error("Status: the old document kept under new signers")
					}
					return
				}
				if seeded := got[0] == current; seeded != tt.seeded {
					t.Errorf("new Apply first got the old document: %v, want %v", seeded, tt.seeded)
				}
				if got[len(got)-1] == current {
					t.Error("new Apply: the refetched document is the old one")
				}
				return
			}
			if got := a2.list(); len(got) != 1 || got[0] != current {
				t.Fatalf("new Apply: got %d calls, want 1 with the current document", len(got))
			}
			if st := mustStatus(t, env.r, "acme"); st.Current != current || !st.LastSuccess.Equal(entraNow) {
				t.Error("Status changed, want the watch kept as it was")
			}
			// Later documents go to the new Apply only.
			if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
				t.Fatal(err)
			}
			if n1, n2 := len(a1.list()), len(a2.list()); n1 != 1 || n2 != 2 {
				t.Errorf("after a refresh: got %d calls to the old Apply and %d to the new, want 1 and 2", n1, n2)
			}
		})
	}
}

// TestRefresherSyncNewURLDown: a reload that moves a tenant to a metadata
// URL that does not answer yet keeps the tenant on its last good document
// (same pinned signers), reports the failure, and takes the new URL's
// document once it answers.
func TestRefresherSyncNewURLDown(t *testing.T) {
	t.Parallel()
	acme := newSyncedAcme(t)
	env, srv, target, current := acme.env, acme.srv, acme.target, acme.current
	var a2 applied

	srv.serve(served{status: http.StatusServiceUnavailable, body: []byte("down")})
	moved := target
	moved.Apply = a2.apply
	moved.URL = mustURL(t, srv.srv.URL+"/new.xml")
	env.r.Sync([]metadata.Target{moved})
	waitFirst(t, env.r)
	st := mustStatus(t, env.r, "acme")
	if st.Current != current {
		t.Error("after a failed first fetch at the new URL: the old document is gone")
	}
	if st.LastError == "" || st.URL != moved.URL.String() {
		t.Errorf("status: URL %q, error %q; want the new URL and its error", st.URL, st.LastError)
	}
	if !st.LastSuccess.Equal(entraNow) {
		t.Errorf("LastSuccess: got %v, want the old document's %v", st.LastSuccess, entraNow)
	}
	if got := a2.list(); len(got) != 1 || got[0] != current {
		t.Fatalf("new Apply: got %d calls, want 1 with the old document", len(got))
	}

	srv.serve(served{body: readTestdata(t, entraFile)})
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if got := a2.list(); len(got) != 2 || got[1] == current {
		t.Errorf("new Apply after the new URL answered: got %d calls, want a second with its document", len(got))
	}
}

// TestRefresherSyncRemoves: a tenant no longer configured stops being
// fetched and loses its refresh counter series.
func TestRefresherSyncRemoves(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srvA := newMetadataServer(t, idp.MetadataXML())
	srvB := newMetadataServer(t, idp.MetadataXML())
	env := newRefresher(t, clock, 0)
	a := metadata.Target{Tenant: "acme", URL: srvA.url(t), Apply: func(*metadata.IDP) {}}
	b := metadata.Target{Tenant: "contoso", URL: srvB.url(t), Apply: func(*metadata.IDP) {}}
	env.r.Sync([]metadata.Target{a, b})
	waitFirst(t, env.r)
	srvA.serve(served{status: http.StatusInternalServerError})
	if err := env.r.RefreshNow(t.Context(), "acme"); err == nil {
		t.Fatal("RefreshNow: got no error, want a 500")
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/success": 1, "acme/fetch_error": 1, "contoso/success": 1})

	// Both goroutines sleep until their next refresh, an hour away.
	sleeping(t, clock, 2)

	env.r.Sync([]metadata.Target{b})
	wantRefreshes(t, env.reg, map[string]float64{"contoso/success": 1})
	if n, err := testutil.GatherAndCount(env.reg, refreshTotal); err != nil || n != 1 {
		t.Errorf("%s series: got %d (%v), want 1", refreshTotal, n, err)
	}
	if _, ok := env.r.Status("acme"); ok {
		t.Error("Status of the removed tenant: got a watch, want none")
	}
	if err := env.r.RefreshNow(t.Context(), "acme"); err == nil || !strings.Contains(err.Error(), `tenant "acme" has no metadata URL`) {
		t.Errorf("RefreshNow of the removed tenant: got %v, want an error", err)
	}

	// Two hours pass: contoso refreshes, acme is not fetched again and its
	// series do not come back.
	clock.Advance(2 * time.Hour)
	eventually(t, "contoso's scheduled refresh is counted", func() bool { return refreshes(t, env.reg)["contoso/success"] == 2 })
	if got := srvA.hits.Load(); got != 2 {
		t.Errorf("fetches of the removed tenant: got %d, want 2", got)
	}
	wantRefreshes(t, env.reg, map[string]float64{"contoso/success": 2})
}

// TestRefresherConcurrency: however many tenants start together, at most
// Concurrency fetches are in flight.
func TestRefresherConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		concurrency int
		want        int
	}{
		{"one at a time", 1, 1},
		{"three", 3, 3},
		{"default", 0, metadata.DefaultConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClock()
			idp := newIDP(t, clock.Now())
			doc := idp.MetadataXML()
			var inflight, most atomic.Int64
			arrived := make(chan struct{}, 100)
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := inflight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				arrived <- struct{}{}
				select {
				case <-release:
				case <-r.Context().Done():
				}
				inflight.Add(-1)
				_, _ = w.Write(doc)
			}))
			t.Cleanup(srv.Close)
			env := newRefresher(t, clock, tt.concurrency)
			tenants := tt.want + 4
			var targets []metadata.Target
			var a applied
			for i := range tenants {
				targets = append(targets, metadata.Target{Tenant: fmt.Sprintf("t%d", i), URL: mustURL(t, fmt.Sprintf("%s/%d.xml", srv.URL, i)), Apply: a.apply})
			}
			env.r.Sync(targets)

			for i := range tt.want {
				recv(t, arrived, fmt.Sprintf("fetch %d of %d allowed at once", i+1, tt.want))
			}
			for range tenants - tt.want {
				send(t, release, "release a fetch")
				recv(t, arrived, "the next fetch once one finished")
			}
			for range tt.want {
				send(t, release, "release a fetch")
			}
			waitFirst(t, env.r)
			if got := most.Load(); got != int64(tt.want) {
				t.Errorf("most fetches in flight: got %d, want %d", got, tt.want)
			}
			if n := len(a.list()); n != tenants {
				t.Errorf("Apply: got %d calls, want %d", n, tenants)
			}
		})
	}
}

func TestRefresherRefreshNow(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, idp.MetadataXML())
	env := newRefresher(t, clock, 0)
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: a.apply}})
	waitFirst(t, env.r)

	_, next := samltest.NewKeyPair(t, "next", 2048, clock.Now().Add(-time.Hour), clock.Now().AddDate(2, 0, 0))
	idp.ExtraCerts = []*x509.Certificate{next}
	srv.serve(served{body: idp.MetadataXML()})
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	docs := a.list()
	if len(docs) != 2 || len(docs[1].SigningCerts) != 2 || !docs[1].SigningCerts[1].Equal(next) {
		t.Fatalf("Apply: got %d calls, want 2, the last with the new certificate", len(docs))
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("fetches: got %d, want 2 without the clock moving", got)
	}
	if st := mustStatus(t, env.r, "acme"); st.Current != docs[1] {
		t.Error("Status.Current is not the new document")
	}
	if err := env.r.RefreshNow(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), `tenant "nope" has no metadata URL`) {
		t.Errorf("RefreshNow of an unknown tenant: got %v, want an error", err)
	}
}

// TestRefresherWaitFirst: WaitFirst returns once every watch has tried
// once, successfully or not, or when its context ends.
func TestRefresherWaitFirst(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	doc := idp.MetadataXML()
	env := newRefresher(t, clock, 0)

	// Nothing to wait for.
	waitFirst(t, env.r)

	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write(doc)
	}))
	t.Cleanup(slow.Close)
	fast := newMetadataServer(t, doc)
	failing := newMetadataServer(t, nil)
	failing.serve(served{status: http.StatusInternalServerError})
	noop := func(*metadata.IDP) {}
	env.r.Sync([]metadata.Target{
		{Tenant: "slow", URL: mustURL(t, slow.URL), Apply: noop},
		{Tenant: "fast", URL: fast.url(t), Apply: noop},
		{Tenant: "failing", URL: failing.url(t), Apply: noop},
	})
	recv(t, arrived, "the slow fetch")
	eventually(t, "the fast and failing tenants have tried", func() bool {
		c := refreshes(t, env.reg)
		return c["fast/success"] == 1 && c["failing/fetch_error"] == 1
	})

	// The slow tenant has not answered: WaitFirst returns only when its
	// context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	env.r.WaitFirst(ctx)
	if ctx.Err() == nil {
		t.Fatal("WaitFirst returned while a first fetch was in flight")
	}

	done := make(chan struct{})
	go func() {
		env.r.WaitFirst(t.Context())
		close(done)
	}()
	send(t, release, "release the slow fetch")
	recv(t, done, "WaitFirst after every tenant tried")
	for _, c := range []struct {
		tenant string
		ready  bool
	}{{"slow", true}, {"fast", true}, {"failing", false}} {
		st := mustStatus(t, env.r, c.tenant)
		if (st.Current != nil) != c.ready || st.LastAttempt.IsZero() {
			t.Errorf("%s: got document %v, attempt %q, error %q; want document %v and an attempt", c.tenant, st.Current != nil, st.LastAttempt, st.LastError, c.ready)
		}
	}
}

// TestRefresherSigners: a tenant with a pinned metadata signer accepts
// only metadata that signer signed.
func TestRefresherSigners(t *testing.T) {
	t.Parallel()
	signed := readTestdata(t, entraFile)
	now := time.Now()
	idp := newIDP(t, now)
	_, other := samltest.NewKeyPair(t, "other", 2048, entraNow.AddDate(-1, 0, 0), entraNow.AddDate(1, 0, 0))
	tests := []struct {
		name    string
		now     time.Time
		body    []byte
		signers []*x509.Certificate
		result  string
	}{
		{"unsigned metadata", now, idp.MetadataXML(), []*x509.Certificate{idp.Cert}, "invalid"},
		{"Entra's file, signed by the pinned certificate", entraNow, signed, []*x509.Certificate{entraSigner(t)}, "success"},
		{"Entra's file, another pinned certificate", entraNow, signed, []*x509.Certificate{other}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClockAt(tt.now)
			srv := newMetadataServer(t, tt.body)
			env := newRefresher(t, clock, 0)
			var a applied
			env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Signers: tt.signers, Apply: a.apply}})
			waitFirst(t, env.r)
			st := mustStatus(t, env.r, "acme")
			wantRefreshes(t, env.reg, map[string]float64{"acme/" + tt.result: 1})
			if tt.result == "success" {
				if st.Current == nil || len(a.list()) != 1 || st.Current.Entity.EntityID != entraEntityID {
					t.Errorf("got error %q, want Entra's document applied", st.LastError)
				}
				return
			}
			if st.Current != nil || len(a.list()) != 0 {
				t.Error("got a document applied, want none")
			}
			if want := "signature does not verify"; !strings.Contains(st.LastError, want) {
				t.Errorf("LastError: got %q, want it to contain %q", st.LastError, want)
			}
		})
	}
}
