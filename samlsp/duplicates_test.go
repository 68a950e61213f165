package samlsp

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/correlation"
	"github.com/sso-gateway/sso-gateway/internal/samltest"
	"github.com/sso-gateway/sso-gateway/internal/syncbuf"
)

// duplicates is sso_gateway_session_rejections_total{reason="duplicate_cookie"}.
func (f *fixture) duplicates() float64 {
	return testutil.ToFloat64(f.p.metrics.sessionRejections[rejectDuplicate])
}

// authenticateLines presents these Cookie header lines, in this order, on
// a request with a correlation ID.
func (f *fixture) authenticateLines(lines ...string) (*Session, bool) {
	req := httptest.NewRequest(http.MethodGet, "https://docs.example.com/docs/a", nil)
	for _, l := range lines {
		req.Header.Add("Cookie", l)
	}
	return f.p.Authenticate(req.WithContext(correlation.WithID(req.Context(), "corr-dup-1")))
}

// TestDuplicateSessionCookie: a request that names the session cookie, or
// one of its pieces, more than once has no session, however the names are
// spread over the Cookie header lines and whatever the values; the
// rejection is counted and logged without the values. Names that only look
// alike are not duplicates.
func TestDuplicateSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// public is the fixture's public URL; https if empty.
		public string
		// split signs in with a session in two pieces.
		split bool
		// lines returns the Cookie header lines, from the pieces of a
		// fresh session.
		lines func(pieces []*http.Cookie) []string
		dup   bool
	}{
		{name: "once", lines: func(p []*http.Cookie) []string { return []string{pair(p[0])} }},
		{name: "once, among the application's cookies, over two lines", lines: func(p []*http.Cookie) []string {
			return []string{"app=1; " + pair(p[0]), "theme=dark"}
		}},
		{name: "once, beside the name without __Host-", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + sessionCookie + "=x"}
		}},
		{name: "once, beside names that only look alike", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_9=x; __Host-ssogw_sessionx=y; __Host-ssogw_session_=z; __Secure-ssogw_session=w"}
		}},
		{name: "once, beside a piece it does not use", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_3=stale"}
		}},
		{name: "split, each piece once", split: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]), pair(p[1])}
		}},
		{name: "the same cookie twice in one line", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + pair(p[0])}
		}},
		{name: "a planted copy first", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{p[0].Name + "=planted; " + pair(p[0])}
		}},
		{name: "a planted copy last", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + p[0].Name + "=planted"}
		}},
		{name: "across two Cookie lines", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{"app=1; " + pair(p[0]), "theme=dark; " + p[0].Name + "=planted"}
		}},
		{name: "a copy with spaces around its name", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + ";  " + p[0].Name + " =planted"}
		}},
		{name: "a copy whose value net/http would skip", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + p[0].Name + `=bad\value`}
		}},
		{name: "a piece of a split session twice", split: true, dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; " + pair(p[1]), p[1].Name + "=planted"}
		}},
		{name: "a piece the session does not use, twice", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-ssogw_session_2=a; __Host-ssogw_session_2=b"}
		}},
		{name: "plain http, once", public: "http://docs.example.com", lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]) + "; __Host-" + sessionCookie + "=x"}
		}},
		{name: "plain http, twice", public: "http://docs.example.com", dup: true, lines: func(p []*http.Cookie) []string {
			return []string{pair(p[0]), sessionCookie + "=planted"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			public := tt.public
			if public == "" {
				public = "https://docs.example.com"
			}
			f := newFixture(t, withPublicURL(public))
			var log syncbuf.Buffer
			f.p.log = slog.New(slog.NewTextHandler(&log, nil))
			var change func(*samltest.Response)
			if tt.split {
				change = withGroups(f, acme, groupsForChunks(t, f, 2)...)
			}
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, change), ""))
			var pieces []*http.Cookie
			for _, ck := range rec.Result().Cookies() {
				if strings.Contains(ck.Name, sessionCookie) && ck.MaxAge >= 0 && ck.Value != "" {
					pieces = append(pieces, ck)
				}
			}
			slices.SortFunc(pieces, func(a, b *http.Cookie) int { return strings.Compare(a.Name, b.Name) })
			if want := map[bool]int{false: 1, true: 2}[tt.split]; len(pieces) != want {
				t.Fatalf("signed in with %d session cookies, want %d", len(pieces), want)
			}
			lines := tt.lines(pieces)
			_, ok := f.authenticateLines(lines...)
			if ok == tt.dup {
				t.Fatalf("Cookie %q: got a session %t, want %t", lines, ok, !tt.dup)
			}
			want := map[bool]float64{false: 0, true: 1}[tt.dup]
			if got := f.duplicates(); got != want {
				t.Errorf(`sso_gateway_session_rejections_total{reason="duplicate_cookie"}: got %v, want %v`, got, want)
			}
			if !tt.dup {
				return
			}
			logged := log.String()
			if !strings.Contains(logged, "correlation_id=corr-dup-1") || !strings.Contains(logged, "more than once") {
				t.Errorf("got log %q, want a line with the correlation ID", logged)
			}
			for _, ck := range pieces {
				if strings.Contains(logged, ck.Value) {
					t.Errorf("the log shows the value of %s", ck.Name)
				}
			}
			if strings.Contains(logged, "planted") {
				t.Errorf("the log shows the planted value: %s", logged)
			}
		})
	}
}

func pair(ck *http.Cookie) string { return ck.Name + "=" + ck.Value }

// TestScanSessionAllocatesNothing: reading a session in one piece, and
// noticing a duplicate, costs Authenticate no allocation.
func TestScanSessionAllocatesNothing(t *testing.T) {
	h := http.Header{"Cookie": {
		"app=1; __Host-ssogw_session=" + strings.Repeat("v", 200) + "; theme=dark",
		"__Host-ssogw_session_1=x; __Host-ssogw_session=planted",
	}}
	c := cookies{secure: true}
	var sc sessionCookies
	if n := testing.AllocsPerRun(100, func() { sc = c.scanSession(h) }); n != 0 {
		t.Errorf("scanSession: got %v allocations, want 0", n)
	}
	if sc.duplicated != 1 || sc.seen != 3 {
		t.Errorf("got duplicated %b seen %b, want 1 and 11", sc.duplicated, sc.seen)
	}
	h["Cookie"] = h["Cookie"][:1]
	if n := testing.AllocsPerRun(100, func() { _ = c.readSession(&http.Request{Header: h}) }); n != 0 {
		t.Errorf("readSession: got %v allocations, want 0", n)
	}
}
