package samlsp

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// interopCase is a real Entra response with what it takes to accept it.
type interopCase struct {
	name      string
	response  string // file in testdata
	metadata  func(t *testing.T) []byte
	issued    time.Time
	entityID  string
	acs       string
	requestID string // "" for IdP-initiated
	nameID    string
	email     string
	display   string
}

func interopCases() []interopCase {
	return []interopCase{
		{
			name:     "enterprise app, IdP-initiated, assertion signed",
			response: "entra_response_idp_initiated.xml",
			metadata: func(t *testing.T) []byte { return readTestdata(t, "entra_federationmetadata.xml") },
			issued:   time.Date(2023, 11, 17, 18, 39, 30, 314e6, time.UTC),
			entityID: "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml",
			acs:      "http://localhost:8080/accounts/8155d0cc-d51b-461a-a062-821b6bd574b1/saml/acs",
			nameID:   "ulysse.carion_codomaindata.com#EXT#@ulyssecarioncodomaindata.onmicrosoft.com",
			email:    "ulysse.carion@codomaindata.com",
			display:  "Ulysse Carion",
		},
		{
			name:      "SP-initiated with InResponseTo, assertion signed",
			response:  "entra_response_sp_initiated.xml",
			metadata:  metadataFromKeyInfo("entra_response_sp_initiated.xml", "5b5c94c6-14cf-42da-85bc-4e08722b253b"),
			issued:    time.Date(2022, 2, 23, 17, 49, 18, 872e6, time.UTC),
			entityID:  "https://devpg.tercen.com/_service/sso/auth/saml",
			acs:       "https://devpg.tercen.com/_service/sso/auth/saml",
			requestID: "id6491e192-e2d9-4970-ab03-e38ffda6e033",
			nameID:    "test@alexandremaurelgmail.onmicrosoft.com",
			email:     "test@alexandremaurelgmail.onmicrosoft.com",
			display:   "test",
		},
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var keyInfoCert = regexp.MustCompile(`<X509Certificate>([^<]+)</X509Certificate>`)

// metadataFromKeyInfo publishes the certificate an Entra response was
// signed with in metadata of the tenant's shape, as the admin's downloaded
// Federation Metadata XML would carry it.
func metadataFromKeyInfo(response, tenantID string) func(*testing.T) []byte {
	return func(t *testing.T) []byte {
		m := keyInfoCert.FindSubmatch(readTestdata(t, response))
		if m == nil {
			t.Fatal("no certificate in the response")
		}
		cert, err := metadata.ParseBase64Cert(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		return (&samltest.IDP{TenantID: tenantID, Cert: cert}).MetadataXML()
	}
}

// TestEntraInterop validates real Entra responses with the clock at the
// time they were issued, and refuses them two hours later.
func TestEntraInterop(t *testing.T) {
	t.Parallel()
	for _, tc := range interopCases() {
		for _, late := range []bool{false, true} {
			name := tc.name
			if late {
				name += "/two hours later"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				now := tc.issued.Add(2 * time.Second)
				clock := clockwork.NewFakeClockAt(now)
				reg := prometheus.NewRegistry()
				p, err := New(Options{
					Secure:          true,
					SessionKeys:     []SessionKey{newSessionKey(t)},
					SessionLifetime: time.Hour,
					Clock:           clock,
					Metrics:         NewMetrics(reg),
				})
				if err != nil {
					t.Fatal(err)
				}
				md, err := metadata.Parse(tc.metadata(t), now, nil)
				if err != nil {
					t.Fatalf("metadata: %v", err)
				}
				acs, _ := url.Parse(tc.acs)
				sp := testKeys()[3]
				ts, err := p.NewTenants([]TenantOptions{{
					ID: "entra", URLs: URLs{EntityID: tc.entityID, ACS: acs, Metadata: acs}, IDP: md,
					SPKey: sp.Key, SPCert: sp.Cert, AllowIDPInitiated: true,
				}})
				if err != nil {
					t.Fatal(err)
				}
				p.SetTenants(ts)

				if late {
					clock.Advance(2 * time.Hour)
				}
				form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(readTestdata(t, tc.response))}}
				req := newACSRequest("entra", form)
				if tc.requestID != "" {
					// The browser holds the tracked request, started just
					// before the response is posted, so only the
					// response's own age can fail it.
					key := newTrackerKey()
					name := p.currentSettings().cookies.pathName(trackerCookie + key)
					value, err := p.currentSettings().codec.encode(name, trackedRequest{Tenant: "entra", RequestID: tc.requestID, Issued: clock.Now().Add(-20 * time.Second).Unix()})
					if err != nil {
						t.Fatal(err)
					}
					form.Set("RelayState", key)
					req = newACSRequest("entra", form)
					req.AddCookie(&http.Cookie{Name: name, Value: value})
				}
				f := &fixture{t: t, p: p, clock: clock}
				rec := f.serve(req)

				if late {
					if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
						t.Fatalf("two hours later: got status %d, want 403 without a session", rec.Code)
					}
					flow := flowIDP
					if tc.requestID != "" {
						flow = flowSP
					}
					if got := f.logins("entra", flow, "failure", ReasonExpired); got != 1 {
						t.Errorf("got %v expired failures, want 1", got)
					}
					return
				}
				if rec.Code != http.StatusSeeOther {
					t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
				}
				s, ok := f.authenticate(sessionCookieOf(rec))
				if !ok {
					t.Fatal("no valid session")
				}
				if s.NameID != tc.nameID || s.Email != tc.email || s.Name != tc.display || s.Tenant != "entra" {
					t.Errorf("got session %+v, want NameID %q email %q name %q", s, tc.nameID, tc.email, tc.display)
				}
			})
		}
	}
}

func newACSRequest(tenant string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, LoginPath+tenant, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}

func TestParseEntraMetadata(t *testing.T) {
	t.Parallel()
	issued := time.Date(2023, 11, 17, 18, 39, 30, 0, time.UTC)
	tests := []struct {
		name, file string
		now        time.Time
		wantErr    string
	}{
		{"app metadata while its certificate is valid", "entra_federationmetadata.xml", issued, ""},
		{"app metadata after its certificate expired", "entra_federationmetadata.xml", time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), "no signing certificate is valid now"},
		{"tenant-independent metadata", "entra_common_federationmetadata.xml", issued, "{tenantid}"},
		{"a response is not metadata", "entra_response_idp_initiated.xml", issued, "not SAML metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md, err := metadata.Parse(readTestdata(t, tt.file), tt.now, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got, want := md.SSOURL, "https://login.microsoftonline.com/a9054a0f-2011-4e31-b3ac-fd8c354146ec/saml2"; got != want {
					t.Errorf("got SSO URL %q, want %q", got, want)
				}
				if len(md.SigningCerts) != 1 {
					t.Errorf("got %d signing certificates, want 1", len(md.SigningCerts))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
