package samltest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	spEntityID = "https://gateway.example/saml/metadata"
	acsURL     = "https://gateway.example/saml/acs"
	requestID  = "id-4f6e2c9d8a7b1e3f5d0c2b4a6e8f1d3c5b7a9e0f"
)

// newTestIDP returns a fresh IdP whose clock is stopped at the current time,
// which it also returns.
func newTestIDP(t *testing.T) (*IDP, time.Time) {
	t.Helper()
	return newTestIDPAt(t, time.Now().UTC().Truncate(time.Millisecond))
}

// newTestIDPAt returns a fresh IdP whose clock is stopped at now, which
// must be within an hour of the current time for its certificate to be
// valid, and now.
func newTestIDPAt(t *testing.T, now time.Time) (*IDP, time.Time) {
	t.Helper()
	idp := NewIDP(t)
	idp.Now = func() time.Time { return now }
	return idp, now
}

// parseMetadata parses IdP metadata as the gateway does.
func parseMetadata(t *testing.T, data []byte) *saml.EntityDescriptor {
	t.Helper()
	ed, err := samlsp.ParseMetadata(data)
	if err != nil {
		t.Fatalf("parse metadata: %v", err)
	}
	return ed
}

// newSP returns a crewjam ServiceProvider at spEntityID and acsURL that
// trusts idp through its metadata, with its clock stopped at now.
// AllowIDPInitiated is set.
func newSP(t *testing.T, idp *IDP, now time.Time) *saml.ServiceProvider {
	t.Helper()
	acs, err := url.Parse(acsURL)
	if err != nil {
		t.Fatal(err)
	}
	return &saml.ServiceProvider{
		EntityID:          spEntityID,
		AcsURL:            *acs,
		IDPMetadata:       parseMetadata(t, idp.MetadataXML()),
		AllowIDPInitiated: true,
		Clock:             dsig.NewFakeClock(clockwork.NewFakeClockAt(now)),
	}
}

// privateErr returns the reason crewjam gives for rejecting a response.
func privateErr(err error) error {
	var ivr *saml.InvalidResponseError
	if errors.As(err, &ivr) {
		return ivr.PrivateErr
	}
	return err
}

func TestServiceProviderValidation(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Millisecond)
	otherKey, otherCert := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))

	tests := []struct {
		name          string
		resp          Response
		spInitiated   bool // possible request IDs hold requestID, and IdP-initiated is refused
		noDestination bool
		rejectSHA1    bool
		// wantErrs are the crewjam sentinels the error must match; none
		// means the response must be accepted.
		wantErrs []error
		// wantMsg, if set, is the reason crewjam must give instead.
		wantMsg string
	}{
		{name: "assertion signed", resp: Response{Signing: SignAssertion}},
		{name: "response signed", resp: Response{Signing: SignResponse}},
		{name: "both signed", resp: Response{Signing: SignBoth}},
		{name: "SP-initiated assertion signed", resp: Response{InResponseTo: requestID}, spInitiated: true},
		{name: "SP-initiated both signed", resp: Response{InResponseTo: requestID, Signing: SignBoth}, spInitiated: true},
		{name: "SHA-1 allowed", resp: Response{SignatureMethod: dsig.RSASHA1SignatureMethod}},
		{name: "SHA-512", resp: Response{SignatureMethod: dsig.RSASHA512SignatureMethod}},
		// crewjam requires a Destination only on a signed Response.
		{name: "no Destination on unsigned response", resp: Response{Recipient: acsURL}, noDestination: true},
		{
			name:          "no Destination on signed response",
			resp:          Response{Signing: SignResponse, Recipient: acsURL},
			noDestination: true,
			wantErrs:      []error{saml.ErrDestinationMismatch},
		},
		{
			name:     "other Destination",
			resp:     Response{Destination: "https://other.example/saml/acs"},
			wantErrs: []error{saml.ErrDestinationMismatch},
		},
		{
			name:     "no AudienceRestriction",
			resp:     Response{Audience: "-"},
			wantErrs: []error{saml.ErrAudienceMismatch},
		},

		// crewjam returns its unexported errSignatureElementNotPresent
		// as is: it matches none of the exported sentinels.
		{name: "unsigned", resp: Response{Signing: SignNone}, wantMsg: "signature element not present"},
		{
			name:     "untrusted key and certificate",
			resp:     Response{SigningKey: otherKey, SigningCert: otherCert},
			wantErrs: []error{saml.ErrInvalidSignature, saml.ErrUntrustedCertificate},
		},
		{
			name:     "untrusted key and certificate on response",
			resp:     Response{Signing: SignResponse, SigningKey: otherKey, SigningCert: otherCert},
			wantErrs: []error{saml.ErrInvalidSignature, saml.ErrUntrustedCertificate},
		},
		{
			name:     "untrusted key naming the trusted certificate",
			resp:     Response{SigningKey: otherKey},
			wantErrs: []error{saml.ErrInvalidSignature},
		},
		{
			name:     "untrusted key without KeyInfo",
			resp:     Response{SigningKey: otherKey, SigningCert: otherCert, OmitKeyInfo: true},
			wantErrs: []error{saml.ErrInvalidSignature},
		},
		{
			name:       "SHA-1 rejected",
			resp:       Response{SignatureMethod: dsig.RSASHA1SignatureMethod},
			rejectSHA1: true,
			wantErrs:   []error{saml.ErrInvalidSignature, saml.ErrUnsupported},
		},
		{
			name:       "SHA-1 rejected on response",
			resp:       Response{Signing: SignBoth, SignatureMethod: dsig.RSASHA1SignatureMethod},
			rejectSHA1: true,
			wantErrs:   []error{saml.ErrInvalidSignature, saml.ErrUnsupported},
		},
		{
			name:     "other audience",
			resp:     Response{Audience: "https://other.example/saml/metadata"},
			wantErrs: []error{saml.ErrAudienceMismatch},
		},
		{
			name:     "other issuer",
			resp:     Response{Issuer: "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"},
			wantErrs: []error{saml.ErrIssuerMismatch},
		},
		{
			name:     "other recipient",
			resp:     Response{Recipient: "https://other.example/saml/acs"},
			wantErrs: []error{saml.ErrDestinationMismatch},
		},
		{
			name:        "unknown request",
			resp:        Response{InResponseTo: "id-unknown"},
			spInitiated: true,
			wantErrs:    []error{saml.ErrRequestIDMismatch},
		},
		{
			name:        "IdP-initiated when SP-initiated is required",
			resp:        Response{},
			spInitiated: true,
			wantErrs:    []error{saml.ErrRequestIDMismatch},
		},
		{
			name:     "issued too long ago",
			resp:     Response{IssueInstant: now.Add(-2 * time.Minute)},
			wantErrs: []error{saml.ErrExpired},
		},
		{
			name:     "conditions expired",
			resp:     Response{NotBefore: now.Add(-2 * time.Hour), NotOnOrAfter: now.Add(-time.Hour)},
			wantErrs: []error{saml.ErrExpired},
		},
		{
			name:     "subject confirmation expired",
			resp:     Response{SubjectNotOnOrAfter: now.Add(-time.Hour)},
			wantErrs: []error{saml.ErrExpired},
		},
		{
			name:     "not yet valid",
			resp:     Response{NotBefore: now.Add(time.Hour)},
			wantErrs: []error{saml.ErrNotYetValid},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp, now := newTestIDPAt(t, now)
			sp := newSP(t, idp, now)
			sp.RejectSHA1Signatures = tt.rejectSHA1
			var possibleIDs []string
			if tt.spInitiated {
				sp.AllowIDPInitiated = false
				possibleIDs = []string{requestID}
			}
			r := tt.resp
			if r.Destination == "" && !tt.noDestination {
				r.Destination = acsURL
			}
			switch r.Audience {
			case "":
				r.Audience = spEntityID
			case "-":
				r.Audience = ""
			}
			r.NameID = "bob@contoso.example"
			r.AssertionID = "_d4e7f2a9-3b1c-4e6d-8f0a-5c2b9e7d1a38"

			assertion, err := sp.ParseXMLResponse(idp.SignedResponse(t, r), possibleIDs, sp.AcsURL)

			if len(tt.wantErrs) == 0 && tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("ParseXMLResponse: got error %q, want success", privateErr(err))
				}
				if got, want := assertion.Subject.NameID.Value, r.NameID; got != want {
					t.Errorf("NameID: got %q, want %q", got, want)
				}
				if got, want := assertion.AuthnStatements[0].SessionIndex, r.AssertionID; got != want {
					t.Errorf("SessionIndex: got %q, want %q", got, want)
				}
				tenant := assertion.AttributeStatements[0].Attributes[0]
				if got, want := tenant.Name+"="+tenant.Values[0].Value, ClaimTenantID+"="+idp.TenantID; got != want {
					t.Errorf("first claim: got %q, want %q", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseXMLResponse: got success, want an error")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("ParseXMLResponse: got error %q, want one matching %q", privateErr(err), want)
				}
			}
			if tt.wantMsg != "" {
				if got := privateErr(err).Error(); got != tt.wantMsg {
					t.Errorf("ParseXMLResponse: got error %q, want %q", got, tt.wantMsg)
				}
				for _, sentinel := range []error{saml.ErrInvalidSignature, saml.ErrMissingElement, saml.ErrMalformedMessage} {
					if errors.Is(err, sentinel) {
						t.Errorf("ParseXMLResponse: got error matching %q, want none", sentinel)
					}
				}
			}
		})
	}
}

func TestErrorStatus(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	sp := newSP(t, idp, now)
	const status = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	for _, signing := range []Signing{SignAssertion, SignResponse} {
		t.Run(signing.String(), func(t *testing.T) {
			t.Parallel()
			xmlBytes := idp.SignedResponse(t, Response{
				Destination:   acsURL,
				Audience:      spEntityID,
				Signing:       signing,
				StatusCode:    status,
				StatusMessage: "AADSTS50105: Your administrator has configured the application to block users unless they are specifically granted access.",
			})
			if bytes.Contains(xmlBytes, []byte("<Assertion")) {
				t.Errorf("error response: got an Assertion, want none")
			}
			_, err := sp.ParseXMLResponse(xmlBytes, nil, sp.AcsURL)
			var bad saml.ErrBadStatus
			if !errors.As(err, &bad) {
				t.Fatalf("ParseXMLResponse: got error %q, want saml.ErrBadStatus", privateErr(err))
			}
			if bad.Status != status {
				t.Errorf("status: got %q, want %q", bad.Status, status)
			}
		})
	}
}

// TestExpiredCertificate covers an Entra application whose signing
// certificate has expired: crewjam refuses it unless told to ignore expiry.
func TestExpiredCertificate(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	idp.Key, idp.Cert = NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.AddDate(-3, 0, 0), now.Add(-time.Hour))
	sp := newSP(t, idp, now)
	r := Response{Destination: acsURL, Audience: spEntityID}

	_, err := sp.ParseXMLResponse(idp.SignedResponse(t, r), nil, sp.AcsURL)
	for _, want := range []error{saml.ErrInvalidSignature, saml.ErrCertificateNotValidNow} {
		if !errors.Is(err, want) {
			t.Errorf("ParseXMLResponse: got error %q, want one matching %q", privateErr(err), want)
		}
	}

	sp.IgnoreCertificateExpiry = true
	if _, err := sp.ParseXMLResponse(idp.SignedResponse(t, r), nil, sp.AcsURL); err != nil {
		t.Errorf("ParseXMLResponse with IgnoreCertificateExpiry: got error %q, want success", privateErr(err))
	}
}

// TestRollover covers an IdP that publishes several signing certificates,
// as Entra does while a new one is being rolled over: a signature by any of
// them verifies, with or without the certificate in KeyInfo.
func TestRollover(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	newKey, newCert := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(3, 0, 0))
	_, unusedCert := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(3, 0, 0))
	idp.ExtraCerts = append(idp.ExtraCerts, unusedCert, newCert)
	sp := newSP(t, idp, now)
	if got, want := len(sp.IDPMetadata.IDPSSODescriptors[0].KeyDescriptors), 3; got != want {
		t.Fatalf("metadata signing keys: got %d, want %d", got, want)
	}

	for _, signing := range []Signing{SignAssertion, SignResponse, SignBoth} {
		for _, omitKeyInfo := range []bool{false, true} {
			for _, useNew := range []bool{false, true} {
				name := fmt.Sprintf("%v/omitKeyInfo=%t/newKey=%t", signing, omitKeyInfo, useNew)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					r := Response{Destination: acsURL, Audience: spEntityID, Signing: signing, OmitKeyInfo: omitKeyInfo}
					if useNew {
						r.SigningKey, r.SigningCert = newKey, newCert
					}
					xmlBytes := idp.SignedResponse(t, r)
					if got := bytes.Contains(xmlBytes, []byte("<KeyInfo>")); got == omitKeyInfo {
						t.Errorf("KeyInfo present: got %t, want %t", got, !omitKeyInfo)
					}
					if _, err := sp.ParseXMLResponse(xmlBytes, nil, sp.AcsURL); err != nil {
						t.Fatalf("ParseXMLResponse: got error %q, want success", privateErr(err))
					}
				})
			}
		}
	}
}

func TestPostForm(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	sp := newSP(t, idp, now)
	sp.AllowIDPInitiated = false

	for _, relayState := range []string{"", "/reports?q=a+b&x=%2F"} {
		t.Run(fmt.Sprintf("relayState=%q", relayState), func(t *testing.T) {
			t.Parallel()
			form := idp.PostForm(t, Response{Destination: acsURL, Audience: spEntityID, InResponseTo: requestID, NameID: "carol@contoso.example"}, relayState)

			req := httptest.NewRequest(http.MethodPost, acsURL, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := req.ParseForm(); err != nil {
				t.Fatal(err)
			}
			if got, want := req.PostForm.Has("RelayState"), relayState != ""; got != want {
				t.Errorf("RelayState field present: got %t, want %t", got, want)
			}
			if got := req.PostForm.Get("RelayState"); got != relayState {
				t.Errorf("RelayState: got %q, want %q", got, relayState)
			}
			raw, err := base64.StdEncoding.DecodeString(req.PostForm.Get("SAMLResponse"))
			if err != nil {
				t.Fatalf("SAMLResponse: %v", err)
			}
			if !bytes.HasPrefix(raw, []byte("<samlp:Response ")) {
				t.Errorf("SAMLResponse: got %q, want a samlp:Response", raw[:min(len(raw), 40)])
			}

			assertion, err := sp.ParseResponse(req, []string{requestID})
			if err != nil {
				t.Fatalf("ParseResponse: got error %q, want success", privateErr(err))
			}
			if got, want := assertion.Subject.NameID.Value, "carol@contoso.example"; got != want {
				t.Errorf("NameID: got %q, want %q", got, want)
			}
		})
	}
}

func TestMetadataXML(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	_, extra := NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now, now.AddDate(3, 0, 0))
	idp.ExtraCerts = append(idp.ExtraCerts, extra)
	idp.SSOURL = "http://127.0.0.1:8443/" + idp.TenantID + "/saml2"
	data := idp.MetadataXML()

	const prolog = "\uFEFF<?xml version=\"1.0\" encoding=\"utf-8\"?><EntityDescriptor "
	if !bytes.HasPrefix(data, []byte(prolog)) {
		t.Errorf("metadata start: got %q, want %q", data[:len(prolog)], prolog)
	}

	ed := parseMetadata(t, data)
	if got, want := ed.EntityID, "https://sts.windows.net/"+idp.TenantID+"/"; got != want {
		t.Errorf("entityID: got %q, want %q", got, want)
	}
	if !strings.HasPrefix(ed.ID, "_") {
		t.Errorf("ID: got %q, want an Entra-style ID", ed.ID)
	}
	if got, want := len(ed.IDPSSODescriptors), 1; got != want {
		t.Fatalf("IDPSSODescriptors: got %d, want %d", got, want)
	}
	sso := ed.IDPSSODescriptors[0]
	var gotCerts []string
	for _, kd := range sso.KeyDescriptors {
		if kd.Use != "signing" {
			t.Errorf("KeyDescriptor use: got %q, want %q", kd.Use, "signing")
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			gotCerts = append(gotCerts, c.Data)
		}
	}
	wantCerts := []string{base64.StdEncoding.EncodeToString(idp.Cert.Raw), base64.StdEncoding.EncodeToString(extra.Raw)}
	if !slices.Equal(gotCerts, wantCerts) {
		t.Errorf("signing certificates: got %q, want %q", gotCerts, wantCerts)
	}

	var gotServices []string
	for _, s := range sso.SingleLogoutServices {
		gotServices = append(gotServices, "SLO "+s.Binding+" "+s.Location)
	}
	for _, s := range sso.SingleSignOnServices {
		gotServices = append(gotServices, "SSO "+s.Binding+" "+s.Location)
	}
	wantServices := []string{
		"SLO urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect " + idp.SSOURL,
		"SSO urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect " + idp.SSOURL,
		"SSO urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST " + idp.SSOURL,
	}
	if !slices.Equal(gotServices, wantServices) {
		t.Errorf("services: got %q, want %q", gotServices, wantServices)
	}
}

func TestDefaultAttributes(t *testing.T) {
	t.Parallel()
	const tenant = "a9054a0f-2011-4e31-b3ac-fd8c354146ec"
	attrs := DefaultAttributes(tenant, "alice@contoso.example", "Alice Example", "group-1", "group-2")
	got := map[string][]string{}
	var names []string
	for _, a := range attrs {
		names = append(names, a.Name)
		got[a.Name] = a.Values
	}

	// Entra's order, as in the captured response, with groups last.
	wantNames := append(claimNames(t, "testdata/entra_response_idp_initiated.xml"), ClaimGroups)
	if !slices.Equal(names, wantNames) {
		t.Errorf("claims: got %q, want %q", names, wantNames)
	}
	for name, want := range map[string][]string{
		ClaimTenantID:         {tenant},
		ClaimDisplayName:      {"Alice Example"},
		ClaimIdentityProvider: {"https://sts.windows.net/" + tenant + "/"},
		ClaimGivenName:        {"Alice"},
		ClaimSurname:          {"Example"},
		ClaimEmailAddress:     {"alice@contoso.example"},
		ClaimName:             {"alice@contoso.example"},
		ClaimGroups:           {"group-1", "group-2"},
	} {
		if !slices.Equal(got[name], want) {
			t.Errorf("%s: got %q, want %q", name, got[name], want)
		}
	}

	again := DefaultAttributes(tenant, "alice@contoso.example", "")
	if got, want := again[1].Values[0], attrs[1].Values[0]; got != want {
		t.Errorf("object ID for the same user: got %q, want %q", got, want)
	}
	other := DefaultAttributes(tenant, "bob@contoso.example", "Bob")
	if got, notWant := other[1].Values[0], attrs[1].Values[0]; got == notWant {
		t.Errorf("object ID for another user: got %q, want something else", got)
	}
	for _, a := range again {
		if a.Name == ClaimDisplayName || a.Name == ClaimGivenName || a.Name == ClaimSurname || a.Name == ClaimGroups {
			t.Errorf("claims without a value: got %q, want it left out", a.Name)
		}
	}
}

// TestShapeMatchesEntra compares the elements, prefixes, namespaces and
// attributes of what the IdP makes with real Entra messages.
func TestShapeMatchesEntra(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ file, inResponseTo string }{
		{"testdata/entra_response_idp_initiated.xml", ""},
		{"testdata/entra_response_sp_initiated.xml", requestID},
	} {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			entra := readXML(t, tt.file)
			idp, _ := newTestIDP(t)
			made := etree.NewDocument()
			if err := made.ReadFromBytes(idp.SignedResponse(t, Response{
				Destination:  acsURL,
				Audience:     spEntityID,
				InResponseTo: tt.inResponseTo,
				Attributes:   claims(entra.Root()),
			})); err != nil {
				t.Fatal(err)
			}
			if got, want := skeleton(made.Root(), nil), skeleton(entra.Root(), nil); got != want {
				t.Errorf("shape:\ngot  %q\nwant %q", got, want)
			}
		})
	}

	t.Run("metadata", func(t *testing.T) {
		t.Parallel()
		entra := readXML(t, "testdata/entra_federationmetadata.xml")
		idp, _ := newTestIDP(t)
		data := idp.MetadataXML()
		realData, _ := os.ReadFile("testdata/entra_federationmetadata.xml")
		prologEnd := bytes.Index(realData, []byte("?>")) + 2
		if got, want := string(data[:prologEnd]), string(realData[:prologEnd]); got != want {
			t.Errorf("prolog: got %q, want %q", got, want)
		}
		made := etree.NewDocument()
		if err := made.ReadFromBytes(data); err != nil {
			t.Fatal(err)
		}
		// Entra signs its metadata and lists the claims it offers; this
		// package does neither.
		skip := func(el *etree.Element) bool { return el.Tag == "Signature" || el.Tag == "ClaimTypesOffered" }
		if got, want := skeleton(made.Root(), skip), skeleton(entra.Root(), skip); got != want {
			t.Errorf("shape:\ngot  %q\nwant %q", got, want)
		}
	})
}

func TestWriteKeyPairPEM(t *testing.T) {
	t.Parallel()
	key, cert := NewKeyPair(t, "gateway", 2048, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	certFile, keyFile := WriteKeyPairPEM(t, t.TempDir(), "sp", key, cert)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadX509KeyPair: %v", err)
	}
	if !pair.Leaf.Equal(cert) {
		t.Errorf("certificate: got %q, want %q", pair.Leaf.Subject, cert.Subject)
	}
	if got, want := cert.Subject.CommonName, "gateway"; got != want {
		t.Errorf("common name: got %q, want %q", got, want)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.Mode().Perm().String(), "-rw-------"; got != want {
		t.Errorf("key file mode: got %q, want %q", got, want)
	}
}

func readXML(t *testing.T, file string) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromFile(file); err != nil {
		t.Fatal(err)
	}
	return doc
}

// claims returns the claims of the AttributeStatement in response.
func claims(response *etree.Element) []Attribute {
	var attrs []Attribute
	for _, el := range response.FindElements("./Assertion/AttributeStatement/Attribute") {
		a := Attribute{Name: el.SelectAttrValue("Name", "")}
		for _, v := range el.SelectElements("AttributeValue") {
			a.Values = append(a.Values, v.Text())
		}
		attrs = append(attrs, a)
	}
	return attrs
}

// claimNames returns the claim names, in order, of the response in file.
func claimNames(t *testing.T, file string) []string {
	t.Helper()
	var names []string
	for _, a := range claims(readXML(t, file).Root()) {
		names = append(names, a.Name)
	}
	return names
}

// skeletonValues are the attributes whose values are part of a message's
// shape: algorithms, formats, methods and bindings, not data.
var skeletonValues = map[string]bool{
	"Algorithm": true, "Format": true, "Method": true, "Binding": true,
	"use": true, "Version": true, "protocolSupportEnumeration": true, "xsi:type": true,
}

// skeleton describes el and its descendants, leaving out those skip
// reports, by prefixed tag and attributes in document order, with the
// values of namespace declarations and skeletonValues only.
func skeleton(el *etree.Element, skip func(*etree.Element) bool) string {
	var b strings.Builder
	var walk func(el *etree.Element, depth int)
	walk = func(el *etree.Element, depth int) {
		fmt.Fprintf(&b, "%s<%s", strings.Repeat(" ", depth), el.FullTag())
		for _, a := range el.Attr {
			key := a.FullKey()
			if a.Space == "xmlns" || key == "xmlns" || skeletonValues[key] {
				fmt.Fprintf(&b, " %s=%q", key, a.Value)
			} else {
				fmt.Fprintf(&b, " %s", key)
			}
		}
		b.WriteString(">\n")
		for _, child := range el.ChildElements() {
			if skip == nil || !skip(child) {
				walk(child, depth+1)
			}
		}
	}
	walk(el, 0)
	return b.String()
}

// TestSign checks the error-returning form used outside tests: a response
// it signs is accepted, concurrently signed ones are each accepted, and a
// missing key is an error, not a test failure.
func TestSign(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	sp := newSP(t, idp, now)

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		raw := make([][]byte, 4)
		errs := make([]error, len(raw))
		done := make(chan struct{})
		for i := range raw {
			go func() {
				defer func() { done <- struct{}{} }()
				raw[i], errs[i] = idp.Sign(Response{Destination: acsURL, Audience: spEntityID, NameID: fmt.Sprintf("user%d@contoso.example", i)})
			}()
		}
		for range raw {
			<-done
		}
		for i := range raw {
			if errs[i] != nil {
				t.Fatalf("Sign %d: got error %q, want success", i, errs[i])
			}
			assertion, err := sp.ParseXMLResponse(raw[i], nil, sp.AcsURL)
			if err != nil {
				t.Fatalf("ParseXMLResponse %d: got error %q, want success", i, privateErr(err))
			}
			if got, want := assertion.Subject.NameID.Value, fmt.Sprintf("user%d@contoso.example", i); got != want {
				t.Errorf("NameID: got %q, want %q", got, want)
			}
		}
	})
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		keyless := *idp
		keyless.Key = nil
		_, err := keyless.Sign(Response{Destination: acsURL, Audience: spEntityID})
		if err == nil || !strings.Contains(err.Error(), "no signing key") {
			t.Errorf("Sign without a key: got error %v, want one naming the missing key", err)
		}
	})
}
