package metadata_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/jonboulle/clockwork"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestRegressionRoleValidUntil: the IdP role's validUntil counts like the document's.
func TestRegressionRoleValidUntil(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	idp := newIDP(t, now)
	doc := editXML(t, idp.MetadataXML(), func(root *etree.Element) {
		root.FindElement("./IDPSSODescriptor").CreateAttr("validUntil", now.Add(-time.Hour).Format(time.RFC3339))
	})
	md, err := metadata.Parse(doc, now, nil)
	if !errors.Is(err, metadata.ErrUnusable) {
		t.Errorf("got %v (role validUntil kept: %v), want ErrUnusable: IDPSSODescriptor expired", err, md.Entity.IDPSSODescriptors[0].ValidUntil)
	}
}

// TestRegressionRoleValidUntilSchedule: a role validUntil sooner than the interval brings the refresh forward.
func TestRegressionRoleValidUntilSchedule(t *testing.T) {
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	doc := editXML(t, idp.MetadataXML(), func(root *etree.Element) {
		root.FindElement("./IDPSSODescriptor").CreateAttr("validUntil", clock.Now().Add(30*time.Minute).UTC().Format(time.RFC3339))
	})
	srv := newMetadataServer(t, doc)
	env := newRefresher(t, clock, 0)
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Interval: time.Hour, Apply: func(*metadata.IDP) {}}})
	waitFirst(t, env.r)
	step(t, env, srv, 15*time.Minute)
}

// TestRegressionRefreshNowResurrectsSeries: a RefreshNow in flight when the
// tenant is removed must not bring back the series Sync deleted.
func TestRegressionRefreshNowResurrectsSeries(t *testing.T) {
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	doc := idp.MetadataXML()
	var n atomic.Int64
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 2 {
			arrived <- struct{}{}
			<-release
		}
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	env := newRefresher(t, clock, 0)
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: mustURL(t, srv.URL), Apply: func(*metadata.IDP) {}}})
	waitFirst(t, env.r)
	done := make(chan error, 1)
	go func() { done <- env.r.RefreshNow(t.Context(), "acme") }()
	recv(t, arrived, "RefreshNow's fetch")
	env.r.Sync(nil)
	wantRefreshes(t, env.reg, map[string]float64{})
	close(release)
	<-done
	if got := refreshes(t, env.reg); len(got) != 0 {
		t.Errorf("after removing acme: got %v, want no series", got)
	}
}

// TestRegressionOutOfOrderApply: a slow scheduled fetch that started
// before a RefreshNow must not replace the newer document RefreshNow
// brings; fetches of one tenant run one at a time, in order.
func TestRegressionOutOfOrderApply(t *testing.T) {
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	v1 := idp.MetadataXML()
	_, next := samltest.NewKeyPair(t, "next", 2048, clock.Now().Add(-time.Hour), clock.Now().AddDate(2, 0, 0))
	idp.ExtraCerts = append(idp.ExtraCerts, next)
	v2 := idp.MetadataXML()
	var n atomic.Int64
	arrived := make(chan struct{}, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			_, _ = w.Write(v1)
		case 2: // the scheduled refresh: the IdP still serves v1, slowly
			arrived <- struct{}{}
			<-release
			_, _ = w.Write(v1)
		default:
			_, _ = w.Write(v2)
		}
	}))
	t.Cleanup(srv.Close)
	env := newRefresher(t, clock, 0)
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: mustURL(t, srv.URL), Apply: a.apply}})
	waitFirst(t, env.r)
	sleeping(t, clock, 1)
	clock.Advance(2 * time.Hour)
	recv(t, arrived, "the scheduled fetch")
	// An operator's RefreshNow while the scheduled fetch hangs waits for it,
	// then fetches: results are applied in the order they were asked for.
	done := make(chan error, 1)
	go func() { done <- env.r.RefreshNow(t.Context(), "acme") }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := mustStatus(t, env.r, "acme")
	docs := a.list()
	if len(st.Current.SigningCerts) != 2 || len(docs[len(docs)-1].SigningCerts) != 2 {
		t.Errorf("got %d certificates in Status.Current and %d in the last applied document, want 2 (the newest document, fetched by RefreshNow)", len(st.Current.SigningCerts), len(docs[len(docs)-1].SigningCerts))
	}
}
