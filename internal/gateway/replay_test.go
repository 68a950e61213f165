package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// replica builds another gateway from tg's configuration, as a second
// process behind the same load balancer would be, with its own registry.
func replica(t *testing.T, tg *testGateway) (*Gateway, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	gw, err := Build(context.Background(), tg.cfg, Deps{Registry: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return gw, reg
}

func postForm(gw *Gateway, form url.Values) *httptest.ResponseRecorder {
	req := publicRequest(http.MethodPost, samlsp.LoginPath+"acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	gw.PublicHandler().ServeHTTP(rec, req)
	return rec
}

func sessionOf(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == "__Host-ssogw_session" && c.Value != "" {
			return c
		}
	}
	return nil
}

// metricValue is the sum of the counter or gauge series of name whose
// labels include labels.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			found = true
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if !found {
		t.Fatalf("no series %s%v", name, labels)
	}
	return sum
}

// A response captured from one replica is refused by every other when
// they share Redis; with the in-memory cache only the replica that took it
// refuses it.
func TestReplayAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, tc := range []struct {
		name, extra string
		shared      bool
	}{
		{"in memory", "", false},
		{"redis", "replay_cache: {redis_url: " + srv.URL() + "}\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := newTestGateway(t, http.NotFoundHandler(), tc.extra)
			other, _ := replica(t, tg)
			tenant, _ := tg.gw.Provider().CurrentTenants().Get("acme")
			form := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")

			if rec := postForm(tg.gw, form); sessionOf(rec) == nil {
				t.Fatalf("first use: %d %s", rec.Code, rec.Body)
			}
			if rec := postForm(tg.gw, form); sessionOf(rec) != nil || rec.Code != http.StatusForbidden {
				t.Errorf("replayed at the same replica: %d", rec.Code)
			}
			rec := postForm(other, form)
			if tc.shared && (sessionOf(rec) != nil || rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "already been used")) {
				t.Errorf("replayed at another replica: %d %s", rec.Code, rec.Body)
			}
			if !tc.shared && sessionOf(rec) == nil {
				t.Errorf("in memory, another replica refused a response it never saw: %d", rec.Code)
			}
		})
	}
}

// With Redis down, logins fail closed with a page that says to retry, a
// 503 and their own reason; signed-in users keep working; and logins come
// back with Redis.
func TestReplayStoreOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("document"))
	}), "replay_cache: {redis_url: "+srv.URL()+"}\n")
	reg := tg.gw.deps.Registry
	up := func() float64 { return metricValue(t, reg, "sso_gateway_replay_store_up", nil) }
	session := tg.signIn(t)
	if got := up(); got != 1 {
		t.Errorf("replay_store_up with Redis running: %v", got)
	}

	srv.Stop()
	tenant, _ := tg.gw.Provider().CurrentTenants().Get("acme")
	form := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
	rec := postForm(tg.gw, form)
	body := rec.Body.String()
	if rec.Code != http.StatusServiceUnavailable || sessionOf(rec) != nil || !strings.Contains(body, "try again in a moment") ||
		!strings.Contains(body, rec.Header().Get("X-Correlation-Id")) || strings.Contains(body, "redis") {
		t.Errorf("login with Redis down: %d\n%s", rec.Code, body)
	}
	failures := metricValue(t, reg, "sso_gateway_logins_total", map[string]string{"tenant": "acme", "result": "failure", "reason": samlsp.ReasonReplayStore})
	if failures != 1 {
		t.Errorf(`logins{reason="replay_store_unavailable"}: %v, want 1`, failures)
	}
	if got := up(); got != 0 {
		t.Errorf("replay_store_up with Redis down: %v", got)
	}
	if rec := get(t, tg.gw.PublicHandler(), "/doc", session); rec.Code != http.StatusOK || rec.Body.String() != "document" {
		t.Errorf("signed-in user with Redis down: %d %q", rec.Code, rec.Body)
	}

	srv.Restart(t)
	// go-redis may need a moment to dial again after a run of failures.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec = postForm(tg.gw, form)
		if sessionOf(rec) != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sessionOf(rec) == nil {
		t.Errorf("login after Redis came back: %d %s", rec.Code, rec.Body)
	}
}
