package samlsp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestEntraTenantIDClaim: a tenant pinned to its Entra directory accepts
// only assertions whose tenantid claim names that directory, once.
func TestEntraTenantIDClaim(t *testing.T) {
	t.Parallel()
	const want = "11111111-1111-4111-8111-111111111111" // acme's directory
	tests := []struct {
		name   string
		pinned string // acme's EntraTenantID
		attrs  func(f *fixture) []samltest.Attribute
		ok     bool
	}{
		{name: "not pinned: anything", pinned: "", attrs: func(f *fixture) []samltest.Attribute {
			return samltest.DefaultAttributes("99999999-9999-4999-8999-999999999999", "b.simon@acme.example", "B Simon")
		}, ok: true},
		{name: "the directory", pinned: want, ok: true},
		{name: "the directory, pinned in upper case", pinned: strings.ToUpper(want), ok: true},
		{name: "another directory", pinned: want, attrs: func(f *fixture) []samltest.Attribute {
			return samltest.DefaultAttributes("99999999-9999-4999-8999-999999999999", "b.simon@acme.example", "B Simon")
		}},
		{name: "no claim", pinned: want, attrs: func(f *fixture) []samltest.Attribute {
			return []samltest.Attribute{{Name: ClaimEmail, Values: []string{"b.simon@acme.example"}}}
		}},
		{name: "two values", pinned: want, attrs: func(f *fixture) []samltest.Attribute {
			return append(samltest.DefaultAttributes(want, "b.simon@acme.example", "B Simon"),
				samltest.Attribute{Name: ClaimTenantID, Values: []string{"99999999-9999-4999-8999-999999999999"}})
		}},
		{name: "value with whitespace", pinned: want, attrs: func(f *fixture) []samltest.Attribute {
			return []samltest.Attribute{{Name: ClaimTenantID, Values: []string{" " + want}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.withTenants(func(o *TenantOptions) {
				if o.ID == acme {
					o.EntraTenantID = tt.pinned
				}
			})
			resp := f.response(acme, func(r *samltest.Response) {
				if tt.attrs != nil {
					r.Attributes = tt.attrs(f)
				}
			})
			rec := f.postACS(acme, f.idps[acme].PostForm(t, resp, ""))
			ck := sessionCookieOf(rec)
			if tt.ok {
				if ck == nil {
					t.Fatalf("refused: %d %s", rec.Code, rec.Body)
				}
				return
			}
			if ck != nil || rec.Code != http.StatusForbidden {
				t.Fatalf("got %d with session %v, want 403 and none", rec.Code, ck != nil)
			}
			if !strings.Contains(rec.Body.String(), "other than your organisation") {
				t.Errorf("page: %s", rec.Body)
			}
			if got := f.logins(acme, "idp", "failure", ReasonEntraTenant); got != 1 {
				t.Errorf("logins{reason=entra_tenant}: %v, want 1", got)
			}
			// initech shares acme's IdP but is not pinned: unaffected.
			if ck := sessionCookieOf(f.postACS(initech, f.idps[initech].PostForm(t, f.response(initech, func(r *samltest.Response) {
				if tt.attrs != nil {
					r.Attributes = tt.attrs(f)
				}
			}), ""))); ck == nil {
				t.Error("initech, not pinned, refused the same claims")
			}
		})
	}
}
