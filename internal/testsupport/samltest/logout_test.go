package samltest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/crewjam/saml/testsaml"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	sloURL          = "https://gateway.example/saml/slo"
	logoutRequestID = "id-9c1e5b7a3d2f4e6c8a0b1d3f5e7c9a2b4d6f8e0a"
)

// newLogoutSP returns newSP with its SingleLogoutService at sloURL.
func newLogoutSP(t *testing.T, idp *IDP, now time.Time) *saml.ServiceProvider {
	t.Helper()
	sp := newSP(t, idp, now)
	slo, err := url.Parse(sloURL)
	if err != nil {
		t.Fatal(err)
	}
	sp.SloURL = *slo
	return sp
}

// get is the browser's request for u, as the SP receives it.
func get(u *url.URL) *http.Request {
	return httptest.NewRequest(http.MethodGet, u.String(), nil)
}

// queryKeys returns the names of u's query parameters in order.
func queryKeys(u *url.URL) []string {
	var keys []string
	for _, pair := range strings.Split(u.RawQuery, "&") {
		k, _, _ := strings.Cut(pair, "=")
		keys = append(keys, k)
	}
	return keys
}

func TestLogoutResponseURL(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Millisecond)
	otherKey, _ := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	tests := []struct {
		name       string
		resp       LogoutResponse
		rejectSHA1 bool
		// wantErr is the crewjam sentinel the error must match; "any"
		// errors only need to be errors; nil means accepted.
		wantErr error
		anyErr  bool
	}{
		{name: "signed", resp: LogoutResponse{RelayState: "k3y"}},
		{name: "signed without RelayState", resp: LogoutResponse{}},
		{name: "RSA-SHA512", resp: LogoutResponse{QuerySigning: QuerySigning{SignatureMethod: dsig.RSASHA512SignatureMethod}}},
		{name: "RSA-SHA1 allowed", resp: LogoutResponse{QuerySigning: QuerySigning{SignatureMethod: dsig.RSASHA1SignatureMethod}}},
		{name: "RSA-SHA1 refused", resp: LogoutResponse{QuerySigning: QuerySigning{SignatureMethod: dsig.RSASHA1SignatureMethod}}, rejectSHA1: true, anyErr: true},
		{name: "unsigned", resp: LogoutResponse{RelayState: "k3y", QuerySigning: QuerySigning{Unsigned: true}}, anyErr: true},
		{name: "untrusted key", resp: LogoutResponse{QuerySigning: QuerySigning{SigningKey: otherKey}}, anyErr: true},
		{name: "Entra's login issuer", resp: LogoutResponse{Issuer: "login"}, wantErr: saml.ErrIssuerMismatch},
		{name: "status Requester", resp: LogoutResponse{StatusCode: saml.StatusRequester, StatusMessage: "AADSTS"}, wantErr: saml.ErrBadStatus{Status: saml.StatusRequester}},
		{name: "other request", resp: LogoutResponse{InResponseTo: "id-other"}, wantErr: saml.ErrRequestIDMismatch},
		{name: "other destination", resp: LogoutResponse{Destination: "https://other.example/slo"}, wantErr: saml.ErrDestinationMismatch},
		{name: "stale", resp: LogoutResponse{IssueInstant: now.Add(-time.Hour)}, wantErr: saml.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp, now := newTestIDPAt(t, now)
			sp := newLogoutSP(t, idp, now)
			sp.RejectSHA1Signatures = tt.rejectSHA1
			r := tt.resp
			if r.Destination == "" {
				r.Destination = sloURL
			}
			if r.InResponseTo == "" {
				r.InResponseTo = logoutRequestID
			}
			if r.Issuer == "login" {
				r.Issuer = idp.LoginIssuer()
			}
			u := idp.LogoutResponseURL(t, r)

			if got := u.Scheme + "://" + u.Host + u.Path; got != r.Destination {
				t.Errorf("URL: got %q, want %q", got, r.Destination)
			}
			want := []string{"SAMLResponse"}
			if r.RelayState != "" {
				want = append(want, "RelayState")
			}
			if !r.Unsigned {
				want = append(want, "SigAlg", "Signature")
			}
			if got := queryKeys(u); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("query parameters: got %q, want %q", got, want)
			}

			resp, err := sp.ParseLogoutResponse(get(u), []string{logoutRequestID})
			switch {
			case tt.wantErr == nil && !tt.anyErr:
				if err != nil {
					t.Fatalf("ParseLogoutResponse: got error %q, want success", privateErr(err))
				}
				if resp.InResponseTo != logoutRequestID {
					t.Errorf("InResponseTo: got %q, want %q", resp.InResponseTo, logoutRequestID)
				}
			case err == nil:
				t.Fatal("ParseLogoutResponse: got success, want an error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("ParseLogoutResponse: got error %q, want one matching %v", privateErr(err), tt.wantErr)
			}
		})
	}
}

// TestLogoutResponseShape checks the message against what Entra sends: samlp:
// on the LogoutResponse and its Status, the Issuer in the default namespace.
func TestLogoutResponseShape(t *testing.T) {
	t.Parallel()
	idp, _ := newTestIDP(t)
	u := idp.LogoutResponseURL(t, LogoutResponse{Destination: sloURL, InResponseTo: logoutRequestID, Issuer: idp.LoginIssuer()})
	raw, err := testsaml.ParseRedirectResponse(u)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	const want = "<samlp:LogoutResponse ID Version=\"2.0\" IssueInstant Destination InResponseTo xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n" +
		" <Issuer xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\">\n" +
		" <samlp:Status>\n" +
		"  <samlp:StatusCode Value>\n"
	if got := skeleton(doc.Root(), nil); got != want {
		t.Errorf("shape:\ngot  %q\nwant %q", got, want)
	}
	if got, want := doc.Root().FindElement("./Issuer").Text(), "https://login.microsoftonline.com/"+idp.TenantID+"/"; got != want {
		t.Errorf("Issuer: got %q, want %q", got, want)
	}
}

func TestLogoutRequestURL(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Millisecond)
	otherKey, _ := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	tests := []struct {
		name    string
		req     LogoutRequest
		wantErr error
		anyErr  bool
	}{
		{name: "signed", req: LogoutRequest{NameID: "erin@contoso.example", SessionIndex: "_session-1", RelayState: "back"}},
		{name: "defaults", req: LogoutRequest{}},
		{name: "persistent NameID, not yet expired", req: LogoutRequest{NameID: "AAAb3", NameIDFormat: "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent", NotOnOrAfter: now.Add(time.Minute)}},
		{name: "unsigned", req: LogoutRequest{QuerySigning: QuerySigning{Unsigned: true}}, anyErr: true},
		{name: "untrusted key", req: LogoutRequest{QuerySigning: QuerySigning{SigningKey: otherKey}}, anyErr: true},
		{name: "other issuer", req: LogoutRequest{Issuer: "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"}, wantErr: saml.ErrIssuerMismatch},
		{name: "expired", req: LogoutRequest{NotOnOrAfter: now.Add(-time.Hour)}, wantErr: saml.ErrExpired},
		{name: "other destination", req: LogoutRequest{Destination: "https://other.example/slo"}, wantErr: saml.ErrDestinationMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp, now := newTestIDPAt(t, now)
			sp := newLogoutSP(t, idp, now)
			r := tt.req
			if r.Destination == "" {
				r.Destination = sloURL
			}
			r.ID = "_" + newGUID()
			u := idp.LogoutRequestURL(t, r)

			got, err := sp.ValidateLogoutRequest(get(u))
			switch {
			case tt.wantErr == nil && !tt.anyErr:
				if err != nil {
					t.Fatalf("ValidateLogoutRequest: got error %q, want success", privateErr(err))
				}
			case err == nil:
				t.Fatal("ValidateLogoutRequest: got success, want an error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("ValidateLogoutRequest: got error %q, want one matching %v", privateErr(err), tt.wantErr)
				return
			default:
				return
			}
			wantNameID, wantFormat := r.NameID, r.NameIDFormat
			if wantNameID == "" {
				wantNameID = defaultNameID
			}
			if wantFormat == "" {
				wantFormat = emailNameIDFormat
			}
			var sessionIndex string
			if got.SessionIndex != nil {
				sessionIndex = got.SessionIndex.Value
			}
			for _, c := range []struct{ what, got, want string }{
				{"ID", got.ID, r.ID},
				{"NameID", got.NameID.Value, wantNameID},
				{"NameID Format", got.NameID.Format, wantFormat},
				{"SessionIndex", sessionIndex, r.SessionIndex},
				{"Issuer", got.Issuer.Value, idp.entityID()},
				{"RelayState", u.Query().Get("RelayState"), r.RelayState},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
				}
			}
		})
	}
}

// TestLogoutRequestReplay: with a replay cache, the SP takes a LogoutRequest
// once.
func TestLogoutRequestReplay(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	sp := newLogoutSP(t, idp, now)
	sp.ReplayCache = samlsp.NewMemoryReplayCache(10)
	u := idp.LogoutRequestURL(t, LogoutRequest{Destination: sloURL})
	if _, err := sp.ValidateLogoutRequest(get(u)); err != nil {
		t.Fatalf("first use: got error %q, want success", privateErr(err))
	}
	if _, err := sp.ValidateLogoutRequest(get(u)); !errors.Is(err, saml.ErrAssertionReplayed) {
		t.Fatalf("second use: got error %q, want one matching ErrAssertionReplayed", privateErr(err))
	}
}

// TestLogoutURLKeepsDestinationQuery: parameters already in the destination
// stay, and the signature covers only the binding's own.
func TestLogoutURLKeepsDestinationQuery(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	sp := newLogoutSP(t, idp, now)
	u := idp.LogoutRequestURL(t, LogoutRequest{Destination: sloURL + "?tenant=a"})
	if got := queryKeys(u); strings.Join(got, ",") != "tenant,SAMLRequest,SigAlg,Signature" {
		t.Errorf("query parameters: got %q", got)
	}
	sp.SloURL.RawQuery = "tenant=a"
	if _, err := sp.ValidateLogoutRequest(get(u)); err != nil {
		t.Fatalf("ValidateLogoutRequest: got error %q, want success", privateErr(err))
	}
}

func TestMetadataWithoutSingleLogout(t *testing.T) {
	t.Parallel()
	idp, _ := newTestIDP(t)
	idp.NoSingleLogout = true
	sso := parseMetadata(t, idp.MetadataXML()).IDPSSODescriptors[0]
	if n := len(sso.SingleLogoutServices); n != 0 {
		t.Errorf("SingleLogoutServices: got %d, want none", n)
	}
	if n := len(sso.SingleSignOnServices); n != 2 {
		t.Errorf("SingleSignOnServices: got %d, want 2", n)
	}
}
