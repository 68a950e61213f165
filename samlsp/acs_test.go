package samlsp

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

func TestSPInitiatedLogin(t *testing.T) {
	t.Parallel()
	for _, signing := range []samltest.Signing{samltest.SignAssertion, samltest.SignResponse, samltest.SignBoth} {
		for _, tenant := range allTenants {
			t.Run(fmt.Sprintf("%s/%s", tenant, signing), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				l := f.startLogin(tenant, "/documents/Q3%20Minutes.md?view=1")
				f.clock.Advance(7 * time.Second)
				form := f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) {
					r.InResponseTo = l.requestID
					r.Signing = signing
				}), l.relayState)
				rec := f.postACS(tenant, form, l.tracker)

				if rec.Code != http.StatusSeeOther {
					t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
				}
				if got, want := rec.Header().Get("Location"), "/documents/Q3%20Minutes.md?view=1"; got != want {
					t.Errorf("got Location %q, want %q", got, want)
				}
				ck := sessionCookieOf(rec)
				if ck == nil {
					t.Fatal("no session cookie")
				}
				if ck.Name != "__Host-ssogw_session" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
					t.Errorf("session cookie attributes: got %+v", ck)
				}
				s, ok := f.authenticate(ck)
				if !ok {
					t.Fatal("session cookie does not authenticate")
				}
				wantUser := "b.simon@" + tenant + ".example"
				if s.Tenant != tenant || s.NameID != wantUser || s.Email != wantUser {
					t.Errorf("got session %+v, want tenant %q user %q", s, tenant, wantUser)
				}
				var trackerCleared, remembered bool
				for _, c := range rec.Result().Cookies() {
					if c.Name == l.tracker.Name && c.MaxAge < 0 {
						trackerCleared = true
					}
					if c.Name == "__Host-ssogw_tenant" && c.MaxAge > 0 {
						remembered = true
					}
				}
				if !trackerCleared || !remembered {
					t.Errorf("tracker cleared %v, tenant remembered %v; want both", trackerCleared, remembered)
				}
				if got := f.logins(tenant, flowSP, "success", "none"); got != 1 {
					t.Errorf("got %v sp successes, want 1", got)
				}
			})
		}
	}
}

func TestIDPInitiatedLogin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		relayState string
		want       string
	}{
		{"", "/"},
		{"/matters/2024-117", "/matters/2024-117"},
		{"https://evil.example/", "/"},
		{"//evil.example", "/"},
		{"/\\evil.example", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.relayState, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, nil), tt.relayState))
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Location"); got != tt.want {
				t.Errorf("got Location %q, want %q", got, tt.want)
			}
			if sessionCookieOf(rec) == nil {
				t.Error("no session cookie")
			}
			if got := f.logins(acme, flowIDP, "success", "none"); got != 1 {
				t.Errorf("got %v idp successes, want 1", got)
			}
		})
	}
}

func TestReturnToAfterSPLogin(t *testing.T) {
	t.Parallel()
	tests := []struct{ returnTo, want string }{
		{"/a/b?c=d", "/a/b?c=d"},
		{"", "/"},
		{"//evil.example/x", "/"},
		{"https://evil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"/\t/evil.example", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.returnTo, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			l := f.startLogin(acme, tt.returnTo)
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState), l.tracker)
			if got := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || got != tt.want {
				t.Errorf("got %d Location %q, want 303 %q", rec.Code, got, tt.want)
			}
		})
	}
}

// rejection describes a login that must fail, and how.
type rejection struct {
	name   string
	status int
	reason string
	// form builds the request; it may start logins and return cookies.
	form func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie)
	// only limits the case to some tenants; nil means every tenant.
	only []string
}

func idpInitiated(change func(*samltest.Response)) func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
	return func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
		return f.idps[tenant].PostForm(t, f.response(tenant, change), ""), nil
	}
}

// spInitiated answers a tracked login, changed by change (which is given the
// login so it can break the link).
func spInitiated(change func(*samltest.Response, *login)) func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
	return func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
		l := f.startLogin(tenant, "")
		r := f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID })
		if change != nil {
			change(&r, l)
		}
		return f.idps[tenant].PostForm(t, r, l.relayState), []*http.Cookie{l.tracker}
	}
}

// spInitiatedBy answers a tracked login with a response from another IdP.
func spInitiatedBy(idp func(*testing.T, *fixture, string) *samltest.IDP) func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
	return func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
		l := f.startLogin(tenant, "")
		r := f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID })
		return idp(t, f, tenant).PostForm(t, r, l.relayState), []*http.Cookie{l.tracker}
	}
}

func rejections() []rejection {
	return []rejection{
		{name: "unsigned", status: 403, reason: ReasonSignature, form: spInitiated(func(r *samltest.Response, _ *login) { r.Signing = samltest.SignNone })},
		{name: "untrusted key with its own certificate", status: 403, reason: ReasonSignature, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.SigningKey, r.SigningCert = untrustedKeyPair()
		})},
		{name: "untrusted key naming the trusted certificate", status: 403, reason: ReasonSignature, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.SigningKey, _ = untrustedKeyPair()
		})},
		{name: "untrusted key without KeyInfo", status: 403, reason: ReasonSignature, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.SigningKey, _ = untrustedKeyPair()
			r.OmitKeyInfo = true
		})},
		{name: "another directory's IdP claiming this IdP's issuer", status: 403, reason: ReasonSignature, form: spInitiatedBy(func(t *testing.T, f *fixture, tenant string) *samltest.IDP {
			kp := testKeys()[4]
			return &samltest.IDP{TenantID: f.idps[tenant].TenantID, Key: kp.Key, Cert: kp.Cert, Now: f.clock.Now}
		})},
		{name: "another directory's valid response", status: 403, reason: ReasonIssuer, form: spInitiatedBy(func(t *testing.T, f *fixture, tenant string) *samltest.IDP {
			kp := testKeys()[4]
			return &samltest.IDP{TenantID: "44444444-4444-4444-8444-444444444444", Key: kp.Key, Cert: kp.Cert, Now: f.clock.Now}
		})},
		{name: "wrong audience", status: 403, reason: ReasonAudience, form: spInitiated(func(r *samltest.Response, _ *login) { r.Audience = "https://other.example/app" })},
		{name: "no audience", status: 403, reason: ReasonAudience, form: spInitiated(func(r *samltest.Response, _ *login) { r.Audience = "" })},
		{name: "wrong destination", status: 403, reason: ReasonDestination, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Recipient = r.Destination
			r.Destination = "https://other.example/acs"
		})},
		{name: "destination with trailing slash", status: 403, reason: ReasonDestination, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Recipient = r.Destination
			r.Destination += "/"
			r.Signing = samltest.SignResponse
		})},
		{name: "recipient of another tenant", status: 403, reason: ReasonDestination, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Recipient = strings.Replace(r.Destination, "/login/", "/login/x", 1)
		})},
		{name: "recipient of http scheme", status: 403, reason: ReasonDestination, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Recipient = strings.Replace(r.Destination, "https://", "http://", 1)
		})},
		{name: "recipient in other case", status: 403, reason: ReasonDestination, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Recipient = strings.ToUpper(r.Destination)
		})},
		{name: "expired", status: 403, reason: ReasonExpired, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			form, cookies := spInitiated(nil)(t, f, tenant)
			// Still within the login timeout, but the response is older
			// than crewjam's MaxIssueDelay.
			f.clock.Advance(5 * time.Minute)
			return form, cookies
		}},
		{name: "conditions expired", status: 403, reason: ReasonExpired, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.NotOnOrAfter = time.Now().Add(-4 * time.Minute)
		})},
		{name: "issued more than the skew in the future", status: 403, reason: ReasonExpired, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.IssueInstant = time.Now().Add(10 * time.Minute)
			r.NotBefore = r.IssueInstant
		})},
		{name: "conditions not yet valid", status: 403, reason: ReasonExpired, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.NotBefore = time.Now().Add(10 * time.Minute)
		})},
		{name: "stale IssueInstant", status: 403, reason: ReasonExpired, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.IssueInstant = time.Now().Add(-10 * time.Minute)
		})},
		{name: "InResponseTo without the tracking cookie", status: 403, reason: ReasonInResponseTo, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			form, _ := spInitiated(nil)(t, f, tenant)
			return form, nil
		}},
		{name: "InResponseTo of an unknown request", status: 403, reason: ReasonInResponseTo, form: spInitiated(func(r *samltest.Response, _ *login) { r.InResponseTo = "id-not-ours" })},
		{name: "RelayState naming another tracked request", status: 403, reason: ReasonInResponseTo, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			first := f.startLogin(tenant, "")
			second := f.startLogin(tenant, "")
			r := f.response(tenant, func(r *samltest.Response) { r.InResponseTo = first.requestID })
			return f.idps[tenant].PostForm(t, r, second.relayState), []*http.Cookie{first.tracker, second.tracker}
		}},
		{name: "another tenant's tracking cookie", status: 403, reason: ReasonInResponseTo, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			other := acme
			if tenant == acme {
				other = globex
			}
			l := f.startLogin(other, "")
			r := f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID })
			return f.idps[tenant].PostForm(t, r, l.relayState), []*http.Cookie{l.tracker}
		}},
		{name: "unsolicited at a tenant without IdP-initiated login", status: 403, reason: ReasonIDPInitiatedDisabled, only: []string{globex}, form: idpInitiated(nil)},
		{name: "SHA-1 signature", status: 403, reason: ReasonSignature, only: []string{acme, initech, globex}, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.SignatureMethod = dsig.RSASHA1SignatureMethod
		})},
		{name: "no allowed group", status: 403, reason: ReasonGroupDenied, only: []string{globex}, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Attributes = samltest.DefaultAttributes("x", r.NameID, "B Simon", "00000000-0000-0000-0000-000000000000")
		})},
		{name: "no groups", status: 403, reason: ReasonGroupDenied, only: []string{globex}, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Attributes = samltest.DefaultAttributes("x", r.NameID, "B Simon")
		})},
		{name: "wrong issuer", status: 403, reason: ReasonIssuer, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Issuer = "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"
		})},
		{name: "IdP error status", status: 403, reason: ReasonIDPStatus, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.StatusCode = "urn:oasis:names:tc:SAML:2.0:status:Requester"
			r.StatusMessage = "AADSTS50105: not assigned"
			r.Signing = samltest.SignResponse
		})},
		{name: "LF in NameID", status: 400, reason: ReasonMalformed, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.NameID = "b.simon@x.example\nX-Remote-Tenant: other"
		})},
		{name: "trailing space in NameID", status: 400, reason: ReasonMalformed, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.NameID += " "
		})},
		{name: "leading space in the email claim", status: 400, reason: ReasonMalformed, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Attributes = []samltest.Attribute{{Name: ClaimEmail, Values: []string{" " + r.NameID}}, {Name: ClaimGroups, Values: []string{globexGroup}}}
		})},
		{name: "tab in display name", status: 400, reason: ReasonMalformed, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Attributes = []samltest.Attribute{{Name: ClaimDisplayName, Values: []string{"B\tSimon"}}, {Name: ClaimGroups, Values: []string{globexGroup}}}
		})},
		{name: "LF in a group", status: 400, reason: ReasonMalformed, form: spInitiated(func(r *samltest.Response, _ *login) {
			r.Attributes = []samltest.Attribute{{Name: ClaimGroups, Values: []string{globexGroup, "g\nX-Remote-User: admin"}}}
		})},
		{name: "NUL byte in NameID", status: 400, reason: ReasonMalformed, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			// XML 1.0 cannot carry NUL at all (etree would write U+FFFD),
			// so put the byte into the serialized response.
			form, cookies := spInitiated(nil)(t, f, tenant)
			doc, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
			form.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(doc), "b.simon@", "b.simon\x00@", 1))))
			return form, cookies
		}},
		{name: "invalid base64", status: 400, reason: ReasonMalformed, form: func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
			return url.Values{"SAMLResponse": {"not*base64"}}, nil
		}},
		{name: "not XML", status: 400, reason: ReasonMalformed, form: func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
			return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString([]byte("hello"))}}, nil
		}},
		{name: "missing SAMLResponse", status: 400, reason: ReasonMalformed, form: func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
			return url.Values{"RelayState": {"x"}}, nil
		}},
		{name: "artifact binding", status: 400, reason: ReasonMalformed, form: func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
			return url.Values{"SAMLart": {"AAQAAMFbLinlXaCM+FIxiDwGOLAy2T71gbpO7ZhNzAgEANlB90ECfpNEVLg="}}, nil
		}},
		{name: "body over the limit", status: 413, reason: ReasonMalformed, form: func(*testing.T, *fixture, string) (url.Values, []*http.Cookie) {
			return url.Values{"SAMLResponse": {strings.Repeat("A", MaxACSBody)}}, nil
		}},
		{name: "tampered signed content", status: 403, reason: ReasonSignature, form: func(t *testing.T, f *fixture, tenant string) (url.Values, []*http.Cookie) {
			form, cookies := spInitiated(nil)(t, f, tenant)
			xmlDoc, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
			tampered := strings.Replace(string(xmlDoc), "b.simon@", "c.simon@", 1)
			form.Set("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(tampered)))
			return form, cookies
		}},
	}
}

// untrustedKeyPair is a key pair no tenant trusts.
func untrustedKeyPair() (*rsa.PrivateKey, *x509.Certificate) {
	kp := testKeys()[4]
	return kp.Key, kp.Cert
}

// TestACSRejects runs every rejection at every tenant it applies to: each
// check must hold in every tenant. A rejected login answers with a page
// carrying the correlation ID, sets no session, and is counted with its
// reason.
func TestACSRejects(t *testing.T) {
	t.Parallel()
	for _, rj := range rejections() {
		tenants := rj.only
		if tenants == nil {
			tenants = allTenants
		}
		for _, tenant := range tenants {
			t.Run(rj.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				form, cookies := rj.form(t, f, tenant)
				rec := f.postACS(tenant, form, cookies...)
				if rec.Code != rj.status {
					t.Fatalf("got status %d, want %d: %s", rec.Code, rj.status, rec.Body)
				}
				if ck := sessionCookieOf(rec); ck != nil {
					t.Fatalf("got a session cookie %q, want none", ck.Name)
				}
				var flow string
				for _, fl := range []string{flowSP, flowIDP} {
					if f.logins(tenant, fl, "failure", rj.reason) == 1 {
						flow = fl
					}
				}
				if flow == "" {
					t.Errorf("no failure counted with reason %q", rj.reason)
				}
				body := rec.Body.String()
				id := rec.Header().Get("X-Correlation-Id")
				if id == "" || !strings.Contains(body, id) {
					t.Errorf("page does not show the correlation ID %q", id)
				}
				for _, internal := range []string{"crewjam", "signature element", "InResponseTo", "goxmldsig", "x509"} {
					if strings.Contains(body, internal) {
						t.Errorf("page leaks %q: %s", internal, body)
					}
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-store" {
					t.Errorf("got Cache-Control %q, want no-store", got)
				}
			})
		}
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			l := f.startLogin(tenant, "")
			form := f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState)
			if rec := f.postACS(tenant, form, l.tracker); rec.Code != http.StatusSeeOther {
				t.Fatalf("first use: got status %d, want 303", rec.Code)
			}
			rec := f.postACS(tenant, form, l.tracker)
			if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
				t.Fatalf("replay: got status %d, want 403 without a session", rec.Code)
			}
			if got := f.logins(tenant, flowSP, "failure", ReasonReplay); got != 1 {
				t.Errorf("got %v replay failures, want 1", got)
			}
		})
	}
}

func TestSPInitiatedReplayedAsUnsolicited(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.startLogin(acme, "")
	form := f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.InResponseTo = l.requestID }), "")
	rec := f.postACS(acme, form) // no tracking cookie, no RelayState
	if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
		t.Fatalf("got status %d, want 403 without a session", rec.Code)
	}
	// It answers a request: SP-initiated, although its cookie is missing.
	if got := f.logins(acme, flowSP, "failure", ReasonInResponseTo); got != 1 {
		t.Errorf("got %v in_response_to failures, want 1", got)
	}
}

// TestFlowLabel: a response is counted and logged as SP-initiated when it
// answers a request, whether or not the browser still has the request's
// tracking cookie; only a response that answers none is IdP-initiated.
func TestFlowLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// post sends a response to tenant and returns the result and
		// reason it should be counted with.
		post   func(t *testing.T, f *fixture, tenant string) (result, reason string)
		tenant string
		want   string
	}{
		{"tracked", func(t *testing.T, f *fixture, tenant string) (string, string) {
			l := f.startLogin(tenant, "")
			f.postACS(tenant, f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState), l.tracker)
			return "success", "none"
		}, acme, flowSP},
		{"InResponseTo without the tracking cookie", func(t *testing.T, f *fixture, tenant string) (string, string) {
			l := f.startLogin(tenant, "")
			f.postACS(tenant, f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState))
			return "failure", ReasonInResponseTo
		}, acme, flowSP},
		{"InResponseTo with a RelayState that names no tracking cookie", func(t *testing.T, f *fixture, tenant string) (string, string) {
			l := f.startLogin(tenant, "")
			f.postACS(tenant, f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID }), newTrackerKey()), l.tracker)
			return "failure", ReasonInResponseTo
		}, acme, flowSP},
		{"InResponseTo, refused before crewjam", func(t *testing.T, f *fixture, tenant string) (string, string) {
			doc := f.genuine(t, tenant, &login{requestID: "id-lost"}, samltest.SignAssertion, nil)
			resp, a := parts(t, doc)
			resp.AddChild(a.Copy())
			f.post(t, tenant, samltest.XMLBytes(t, doc), nil)
			return "failure", ReasonMalformed
		}, acme, flowSP},
		{"unsolicited", func(t *testing.T, f *fixture, tenant string) (string, string) {
			f.postACS(tenant, f.idps[tenant].PostForm(t, f.response(tenant, nil), ""))
			return "success", "none"
		}, acme, flowIDP},
		{"unsolicited at a tenant that refuses them", func(t *testing.T, f *fixture, tenant string) (string, string) {
			f.postACS(tenant, f.idps[tenant].PostForm(t, f.response(tenant, nil), ""))
			return "failure", ReasonIDPInitiatedDisabled
		}, globex, flowIDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var log syncbuf.Buffer
			f.p.log = slog.New(slog.NewJSONHandler(&log, nil))
			result, reason := tt.post(t, f, tt.tenant)
			for _, flow := range []string{flowSP, flowIDP} {
				want := 0.0
				if flow == tt.want {
					want = 1
				}
				if got := f.logins(tt.tenant, flow, result, reason); got != want {
					t.Errorf(`sso_gateway_logins_total{flow=%q,result=%q,reason=%q}: got %v, want %v`, flow, result, reason, got, want)
				}
			}
			line := auditLine(t, log.String())
			if got := line["flow"]; got != tt.want {
				t.Errorf("audit line flow: got %q, want %q", got, tt.want)
			}
		})
	}
}

// auditLine returns the one "login" line of a JSON log.
func auditLine(t *testing.T, log string) map[string]any {
	t.Helper()
	var found map[string]any
	for line := range strings.Lines(log) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "login" {
			if found != nil {
				t.Fatalf("more than one login line in %s", log)
			}
			found = m
		}
	}
	if found == nil {
		t.Fatalf("no login line in %s", log)
	}
	return found
}

// TestAuditNeverSeesSecondAssertion: the audit line of a response refused
// for holding two assertions names neither of them, so that it cannot
// show a user nobody signed in as the one who tried.
func TestAuditNeverSeesSecondAssertion(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var log syncbuf.Buffer
			f.p.log = slog.New(slog.NewJSONHandler(&log, nil))
			l := f.startLogin(tenant, "")
			doc := f.genuine(t, tenant, l, samltest.SignAssertion, nil)
			resp, a := parts(t, doc)
			resp.InsertChildAt(a.Index(), evil(t, a, tenant, false))
			f.checkRefused(t, tenant, f.post(t, tenant, samltest.XMLBytes(t, doc), l), ReasonMalformed)
			line := auditLine(t, log.String())
			for _, key := range []string{"name_id", "assertion_id", "name_id_unverified", "assertion_id_unverified"} {
				if v, ok := line[key]; ok {
					t.Errorf("audit line has %s=%q, want none", key, v)
				}
			}
			if strings.Contains(log.String(), adminOf(tenant)) {
				t.Errorf("the log names %q: %s", adminOf(tenant), log.String())
			}
		})
	}
}

// TestSameDirectoryTenantsKeptApart: acme and initech trust the same IdP
// and certificate; a response for one is refused by the other.
func TestSameDirectoryTenantsKeptApart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		name   string
		change func(*samltest.Response)
		reason string
	}{
		{"acme's response as is", nil, ReasonDestination},
		{"acme's audience, initech's destination", func(r *samltest.Response) {
			r.Destination = f.tenant(initech).ACSURL.String()
			r.Recipient = r.Destination
		}, ReasonAudience},
		{"initech's audience, acme's destination", func(r *samltest.Response) { r.Audience = f.tenant(initech).EntityID }, ReasonDestination},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := f.idps[acme].PostForm(t, f.response(acme, tt.change), "")
			rec := f.postACS(initech, form)
			if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
				t.Fatalf("got status %d, want 403 without a session", rec.Code)
			}
			if got := f.logins(initech, flowIDP, "failure", tt.reason); got < 1 {
				t.Errorf("got %v %s failures, want at least 1", got, tt.reason)
			}
		})
	}
}

func TestClockSkewTolerated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.startLogin(acme, "")
	form := f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		// The IdP's clock is two minutes ahead: within the allowed skew.
		r.IssueInstant = f.clock.Now().Add(2 * time.Minute)
		r.NotBefore = r.IssueInstant
	}), l.relayState)
	if rec := f.postACS(acme, form, l.tracker); rec.Code != http.StatusSeeOther {
		t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
	}
}

func TestSHA1AllowedWhenConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := f.startLogin(legacy, "")
	form := f.idps[legacy].PostForm(t, f.response(legacy, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		r.SignatureMethod = dsig.RSASHA1SignatureMethod
	}), l.relayState)
	if rec := f.postACS(legacy, form, l.tracker); rec.Code != http.StatusSeeOther {
		t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
	}
}

// TestRolloverCertificate: Entra's metadata carries the next certificate
// before it signs with it; both are trusted.
func TestRolloverCertificate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	kp := testKeys()[4]
	next := &samltest.IDP{Key: kp.Key, Cert: kp.Cert}
	idp := *f.idps[acme]
	idp.ExtraCerts = []*x509.Certificate{next.Cert}
	f.idps[acme] = &idp
	ts, err := f.p.NewTenants([]TenantOptions{tenantOptions(f, acme)})
	if err != nil {
		t.Fatal(err)
	}
	f.p.SetTenants(ts)
	for _, tt := range []struct {
		name string
		key  *rsa.PrivateKey
		cert *x509.Certificate
		omit bool
	}{
		{"active certificate", idp.Key, idp.Cert, false},
		{"next certificate", next.Key, next.Cert, false},
		{"next certificate without KeyInfo", next.Key, next.Cert, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := idp.PostForm(t, f.response(acme, func(r *samltest.Response) {
				r.SigningKey, r.SigningCert, r.OmitKeyInfo = tt.key, tt.cert, tt.omit
			}), "")
			if rec := f.postACS(acme, form); rec.Code != http.StatusSeeOther {
				t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestSessionNotOnOrAfterShortensSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	end := f.clock.Now().Add(30 * time.Minute)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) { r.SessionNotOnOrAfter = end }), ""))
	ck := sessionCookieOf(rec)
	if ck == nil {
		t.Fatalf("no session: %d %s", rec.Code, rec.Body)
	}
	if _, ok := f.authenticate(ck); !ok {
		t.Fatal("fresh session does not authenticate")
	}
	f.clock.Advance(31 * time.Minute)
	if _, ok := f.authenticate(ck); ok {
		t.Fatal("session authenticates past the IdP's SessionNotOnOrAfter")
	}
}

func TestIdentityFallbacks(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.NameID = "b.simon@acme.example"
		r.Attributes = []samltest.Attribute{
			{Name: ClaimGivenName, Values: []string{"B."}},
			{Name: ClaimSurname, Values: []string{"Simon"}},
			{Name: ClaimGroups, Values: []string{"g1", "g2"}},
		}
	}), ""))
	s, ok := f.authenticate(sessionCookieOf(rec))
	if !ok {
		t.Fatalf("no session: %d %s", rec.Code, rec.Body)
	}
	if s.Email != "b.simon@acme.example" || s.Name != "B. Simon" || strings.Join(s.Groups, ",") != "g1,g2" {
		t.Errorf("got %+v, want email from NameID, name from given name and surname, two groups", s)
	}
}
