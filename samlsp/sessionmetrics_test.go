package samlsp

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestSessionRejectionMetric: each way a presented session cookie is not a
// session is counted under its own reason, and a good cookie or no cookie
// is not counted at all.
func TestSessionRejectionMetric(t *testing.T) {
	t.Parallel()
	count := func(f *fixture) map[string]float64 {
		out := map[string]float64{}
		for r, c := range f.p.metrics.sessionRejections {
			out[r] = testutil.ToFloat64(c)
		}
		return out
	}
	signIn := func(f *fixture) *http.Cookie {
		t.Helper()
		ck := sessionCookieOf(f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
			r.Attributes = samltest.DefaultAttributes("x", r.NameID, "B Simon", "g-staff")
		}), "")))
		if ck == nil {
			t.Fatal("sign in failed")
		}
		return ck
	}
	tests := []struct {
		reason string
		reject func(f *fixture, ck *http.Cookie) (*Session, bool)
	}{
		{rejectInvalid, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			return f.authenticate(&http.Cookie{Name: ck.Name, Value: ck.Value[:len(ck.Value)-4]})
		}},
		{rejectExpired, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			f.clock.Advance(9 * time.Hour)
			return f.authenticate(ck)
		}},
		{rejectTenant, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			ts, err := f.p.NewTenants([]TenantOptions{tenantOptions(f, initech)})
			if err != nil {
				t.Fatal(err)
			}
			f.p.SetTenants(ts)
			return f.authenticate(ck)
		}},
		{rejectHost, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			f.withTenants(func(o *TenantOptions) {
				if o.ID == globex {
					o.Hosts = []string{"docs.globex.example"}
				}
			})
			return f.authenticateHeader("docs.globex.example", ck.Name+"="+ck.Value)
		}},
		{rejectPolicy, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			f.withTenants(func(o *TenantOptions) { o.AllowedGroups = []string{"g-partners"} })
			return f.authenticate(ck)
		}},
		{rejectDuplicate, func(f *fixture, ck *http.Cookie) (*Session, bool) {
			return f.authenticateHeader("docs.example.com", ck.Name+"="+ck.Value+"; "+ck.Name+"="+ck.Value)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ck := signIn(f)
			if _, ok := f.authenticate(ck); !ok {
				t.Fatal("the fresh cookie does not authenticate")
			}
			f.authenticate(nil)
			for r, n := range count(f) {
				if n != 0 {
					t.Fatalf("before: %s = %v", r, n)
				}
			}
			if _, ok := tt.reject(f, ck); ok {
				t.Fatal("still a session")
			}
			for r, n := range count(f) {
				want := 0.0
				if r == tt.reason {
					want = 1
				}
				if n != want {
					t.Errorf("sso_gateway_session_rejections_total{reason=%q} = %v, want %v", r, n, want)
				}
			}
		})
	}
}

// TestSessionRejectionSeries: every reason's series exists from the start,
// at zero, so that a rate over it can be alerted on before the first
// rejection.
func TestSessionRejectionSeries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range families {
		if mf.GetName() != "sso_gateway_session_rejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetValue())
			}
		}
	}
	slices.Sort(got)
	want := []string{rejectDuplicate, rejectExpired, rejectInvalid, rejectPolicy, rejectTenant, rejectHost}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got reasons %q, want %q", got, want)
	}
}
