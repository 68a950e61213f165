package metadata_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// directory is a Target.Check like the gateway's: the metadata must be
// Entra's for directory id.
func directory(id string) func(*metadata.IDP) error {
	return func(md *metadata.IDP) error {
		if got := md.EntraTenantID(); got != id {
			return fmt.Errorf("metadata is for directory %q, entra_tenant_id is %q", got, id)
		}
		return nil
	}
}

// newLoggingRefresher is newRefresher with its log in a buffer.
func newLoggingRefresher(t testing.TB, clock *clockwork.FakeClock) (*refresherEnv, *syncbuf.Buffer) {
	t.Helper()
	var buf syncbuf.Buffer
	reg := prometheus.NewRegistry()
	r, err := metadata.NewRefresher(t.Context(), metadata.RefresherOptions{
		Clock:   clock,
		Metrics: metadata.NewMetrics(reg),
		Logger:  slog.New(slog.NewJSONHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &refresherEnv{r: r, clock: clock, reg: reg}, &buf
}

// logLine is what the tests read of a log line.
type logLine struct {
	Level       string `json:"level"`
	Msg         string `json:"msg"`
	Tenant      string `json:"tenant"`
	Result      string `json:"result"`
	HasMetadata *bool  `json:"has_metadata"`
}

func logLines(t testing.TB, buf *syncbuf.Buffer) []logLine {
	t.Helper()
	var out []logLine
	for l := range strings.Lines(buf.String()) {
		var line logLine
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, line)
	}
	return out
}

// TestRefresherFailureLog: the failure log line says whether the tenant
// still has metadata, truthfully.
func TestRefresherFailureLog(t *testing.T) {
	t.Parallel()
	const (
		keeping = "IdP metadata refresh failed; keeping the last good metadata"
		none    = "IdP metadata refresh failed; the tenant has no usable metadata and is not ready"
	)
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, nil)
	srv.serve(served{status: http.StatusServiceUnavailable})
	env, buf := newLoggingRefresher(t, clock)
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: func(*metadata.IDP) {}}})
	waitFirst(t, env.r)
	srv.serve(served{body: idp.MetadataXML()})
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	srv.serve(served{body: []byte("<html><body>Sign in</body></html>")})
	if err := env.r.RefreshNow(t.Context(), "acme"); err == nil {
		t.Fatal("RefreshNow: got no error, want the sign-in page refused")
	}

	no, yes := false, true
	want := []logLine{
		{Level: "ERROR", Msg: none, Tenant: "acme", Result: metadata.ResultFetchError, HasMetadata: &no},
		{Level: "INFO", Msg: "IdP metadata loaded", Tenant: "acme"},
		{Level: "WARN", Msg: keeping, Tenant: "acme", Result: metadata.ResultInvalid, HasMetadata: &yes},
	}
	got := logLines(t, buf)
	if len(got) != len(want) {
		t.Fatalf("got %d log lines, want %d:\n%s", len(got), len(want), buf)
	}
	for i, w := range want {
		g := got[i]
		if g.Level != w.Level || g.Msg != w.Msg || g.Tenant != w.Tenant || g.Result != w.Result || (g.HasMetadata == nil) != (w.HasMetadata == nil) || (g.HasMetadata != nil && *g.HasMetadata != *w.HasMetadata) {
			t.Errorf("line %d: got %+v, want %+v", i, g, w)
		}
	}
}

// TestRefresherLastResult: Status.LastResult is the last attempt's result,
// as the counter's label names it, so the gateway can tell a network
// failure from a document that must be fixed.
func TestRefresherLastResult(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	idp := newIDP(t, clock.Now())
	srv := newMetadataServer(t, nil)
	srv.serve(served{status: http.StatusServiceUnavailable})
	env := newRefresher(t, clock, 0)
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: func(*metadata.IDP) {}}})
	waitFirst(t, env.r)
	if got := mustStatus(t, env.r, "acme").LastResult; got != metadata.ResultFetchError {
		t.Errorf("after a 503: got %q, want %q", got, metadata.ResultFetchError)
	}
	for _, step := range []struct {
		name  string
		serve served
		want  string
	}{
		{"a sign-in page", served{body: []byte("<html/>")}, metadata.ResultInvalid},
		{"metadata", served{body: idp.MetadataXML(), etag: `"v1"`}, metadata.ResultSuccess},
		{"the same metadata", served{body: idp.MetadataXML(), etag: `"v1"`}, metadata.ResultNotModified},
		{"a 500", served{status: http.StatusInternalServerError}, metadata.ResultFetchError},
		{"a certificate", served{body: readTestdata(t, entraSignerFile)}, metadata.ResultInvalid},
	} {
		srv.serve(step.serve)
		_ = env.r.RefreshNow(t.Context(), "acme")
		if got := mustStatus(t, env.r, "acme").LastResult; got != step.want {
			t.Errorf("after %s: got %q, want %q", step.name, got, step.want)
		}
	}
	wantRefreshes(t, env.reg, map[string]float64{
		"acme/" + metadata.ResultFetchError: 2, "acme/" + metadata.ResultInvalid: 2,
		"acme/" + metadata.ResultSuccess: 1, "acme/" + metadata.ResultNotModified: 1,
	})
}

// TestRefresherCheck: a document Target.Check refuses is treated like one
// Parse refuses: not applied, counted as invalid, its error reported, the
// last good document kept.
func TestRefresherCheck(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	acme := newIDP(t, clock.Now())
	other := newIDP(t, clock.Now())
	srv := newMetadataServer(t, other.MetadataXML())
	env, buf := newLoggingRefresher(t, clock)
	var a applied
	env.r.Sync([]metadata.Target{{Tenant: "acme", URL: srv.url(t), Apply: a.apply, Check: directory(acme.TenantID)}})
	waitFirst(t, env.r)

	// Another directory's metadata from the start: the tenant has none.
	st := mustStatus(t, env.r, "acme")
	wantErr := fmt.Sprintf("unusable IdP metadata: metadata is for directory %q, entra_tenant_id is %q", other.TenantID, acme.TenantID)
	if st.Current != nil || st.LastError != wantErr || st.LastResult != metadata.ResultInvalid || !st.LastSuccess.IsZero() {
		t.Errorf("first fetch: got document %v, error %q, result %q, success %v; want none, %q, %q, none", st.Current != nil, st.LastError, st.LastResult, st.LastSuccess, wantErr, metadata.ResultInvalid)
	}
	if !strings.Contains(buf.String(), "the tenant has no usable metadata") {
		t.Errorf("log: got %q, want the not-ready failure", buf)
	}

	// The right directory's.
	srv.serve(served{body: acme.MetadataXML()})
	if err := env.r.RefreshNow(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	good := mustStatus(t, env.r, "acme")
	if docs := a.list(); len(docs) != 1 || docs[0] != good.Current || good.Current.EntraTenantID() != acme.TenantID {
		t.Fatalf("Apply: got %d calls, want 1 with acme's document", len(docs))
	}

	// Then another directory's again: refused, the good one kept. The
	// clock moves a second, so that the attempt's time shows, and not the
	// 30 s (less jitter) after which the background loop would retry the
	// first fetch's failure and count a third refusal.
	clock.Advance(time.Second)
	srv.serve(served{body: other.MetadataXML()})
	err := env.r.RefreshNow(t.Context(), "acme")
	if err == nil || err.Error() != wantErr {
		t.Fatalf("RefreshNow: got %v, want %q", err, wantErr)
	}
	st = mustStatus(t, env.r, "acme")
	if st.Current != good.Current || st.LastResult != metadata.ResultInvalid || st.LastError != wantErr || !st.LastSuccess.Equal(good.LastSuccess) || !st.LastAttempt.Equal(clock.Now()) {
		t.Errorf("Status: got document kept %v, result %q, error %q, success %v, attempt %v; want kept, %q, %q, %v, %v",
			st.Current == good.Current, st.LastResult, st.LastError, st.LastSuccess, st.LastAttempt, metadata.ResultInvalid, wantErr, good.LastSuccess, clock.Now())
	}
	if n := len(a.list()); n != 1 {
		t.Errorf("Apply: got %d calls, want 1", n)
	}
	wantRefreshes(t, env.reg, map[string]float64{"acme/invalid": 2, "acme/success": 1})
}

// TestRefresherSyncCheck: a Sync that keeps a watch takes the new Check. A
// current document that passes it is handed to the new Apply; one that
// fails it never is, and the watch starts over, fetching at once. Later
// fetches are checked with the new Check.
func TestRefresherSyncCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// check is the new Check, given the directories of the first
		// document and of the next one the URL serves.
		check func(first, next string) func(*metadata.IDP) error
		// moved: the Sync also changes the URL.
		moved bool
		// newDoc: the URL serves the next document from the Sync on.
		newDoc bool
		// applied: what the new Apply gets, in order ("first", "next").
		applied []string
		// current: Status.Current after the Sync settles; "" for none.
		current string
		result  string
		hits    int64
	}{
		{name: "a Check the current document passes", check: func(first, _ string) func(*metadata.IDP) error { return directory(first) },
			applied: []string{"first"}, current: "first", result: metadata.ResultSuccess, hits: 1},
		{name: "no Check any more", check: func(string, string) func(*metadata.IDP) error { return nil },
			applied: []string{"first"}, current: "first", result: metadata.ResultSuccess, hits: 1},
		{name: "a Check the current document fails, still served", check: func(_, next string) func(*metadata.IDP) error { return directory(next) },
			applied: nil, current: "", result: metadata.ResultInvalid, hits: 2},
		{name: "a Check the current document fails, a passing one served", check: func(_, next string) func(*metadata.IDP) error { return directory(next) },
			newDoc: true, applied: []string{"next"}, current: "next", result: metadata.ResultSuccess, hits: 2},
		{name: "a new URL and a Check the seed fails", check: func(_, next string) func(*metadata.IDP) error { return directory(next) },
			moved: true, applied: nil, current: "", result: metadata.ResultInvalid, hits: 2},
		{name: "a new URL and a Check the seed passes", check: func(first, _ string) func(*metadata.IDP) error { return directory(first) },
			moved: true, applied: []string{"first", "first"}, current: "first", result: metadata.ResultSuccess, hits: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClock()
			first, next := newIDP(t, clock.Now()), newIDP(t, clock.Now())
			srv := newMetadataServer(t, first.MetadataXML())
			env := newRefresher(t, clock, 0)
			var a1, a2 applied
			target := metadata.Target{Tenant: "acme", URL: srv.url(t), Apply: a1.apply, Check: directory(first.TenantID)}
			env.r.Sync([]metadata.Target{target})
			waitFirst(t, env.r)
			old := mustStatus(t, env.r, "acme")
			if old.Current == nil {
				t.Fatalf("first fetch: %s", old.LastError)
			}

			if tt.newDoc {
				srv.serve(served{body: next.MetadataXML()})
			}
			changed := target
			changed.Apply, changed.Check = a2.apply, tt.check(first.TenantID, next.TenantID)
			if tt.moved {
				changed.URL = mustURL(t, srv.srv.URL+"/moved.xml")
			}
			env.r.Sync([]metadata.Target{changed})
			waitFirst(t, env.r)

			dir := map[string]string{"first": first.TenantID, "next": next.TenantID}
			var got []string
			for _, md := range a2.list() {
				switch md.EntraTenantID() {
				case first.TenantID:
					got = append(got, "first")
				case next.TenantID:
					got = append(got, "next")
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.applied, ",") {
				t.Errorf("new Apply: got %q, want %q", got, tt.applied)
			}
			if n := len(a1.list()); n != 1 {
				t.Errorf("old Apply: got %d calls, want 1", n)
			}
			st := mustStatus(t, env.r, "acme")
			switch {
			case tt.current == "" && st.Current != nil:
				t.Errorf("Status.Current: got %q's document, want none", st.Current.EntraTenantID())
			case tt.current != "" && (st.Current == nil || st.Current.EntraTenantID() != dir[tt.current]):
				t.Errorf("Status.Current: got %v, want the %s document", st.Current, tt.current)
			}
			if st.LastResult != tt.result {
				t.Errorf("LastResult: got %q, want %q", st.LastResult, tt.result)
			}
			if tt.result == metadata.ResultInvalid && !strings.Contains(st.LastError, "metadata is for directory") {
				t.Errorf("LastError: got %q, want the Check's", st.LastError)
			}
			if got := srv.hits.Load(); got != tt.hits {
				t.Errorf("fetches: got %d, want %d", got, tt.hits)
			}
			if tt.current == "first" && !tt.moved {
				// The watch was kept: the next fetch uses the new Check
				// (for "no Check", anything goes).
				srv.serve(served{body: next.MetadataXML()})
				err := env.r.RefreshNow(t.Context(), "acme")
				refused := changed.Check != nil
				if (err != nil) != refused {
					t.Errorf("RefreshNow of the next directory's document: got %v, want refused %v", err, refused)
				}
			}
		})
	}
}
