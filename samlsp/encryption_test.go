package samlsp

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// encryptionCert is the fixture tenants' SP certificate, published in their
// metadata for encryption.
func encryptionCert() *x509.Certificate { return testKeys()[3].Cert }

// previousSPKeyPair is an SP key pair the tenants used before testKeys()[3]:
// made once, like testKeys.
var previousSPKeyPair = sync.OnceValue(func() *selfsigned.KeyPair {
	kp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway SP (previous)"})
	if err != nil {
		panic(err)
	}
	return kp
})

// encryptedLogin answers a login started at tenant with a response whose
// assertion is encrypted as enc says (to the tenant's SP certificate if
// enc.Cert is nil), signed as signing says and changed by change, if set.
func encryptedLogin(t *testing.T, f *fixture, tenant string, signing samltest.Signing, enc samltest.Encryption, change func(*samltest.Response)) (*login, url.Values) {
	t.Helper()
	if enc.Cert == nil {
		enc.Cert = encryptionCert()
	}
	l := f.startLogin(tenant, "")
	r := f.response(tenant, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		r.Signing = signing
		r.Encrypt = &enc
		if change != nil {
			change(r)
		}
	})
	form := f.idps[tenant].PostForm(t, r, l.relayState)
	raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if !bytes.Contains(raw, []byte("EncryptedAssertion")) || bytes.Contains(raw, []byte("b.simon@")) {
		t.Fatalf("the response does not carry the assertion encrypted:\n%s", raw)
	}
	return l, form
}

// TestEncryptedAssertion: every tenant decrypts assertions encrypted to its
// SP certificate. AES-GCM is accepted however the response is signed; AES-CBC
// is not authenticated, so it is decrypted only inside a Response whose own
// signature was checked first (RequireSignedResponseForCBC): with only the
// assertion signed, that signature is inside the encryption and the
// response is refused before anything is decrypted.
func TestEncryptedAssertion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		signing samltest.Signing
		enc     samltest.Encryption
		change  func(*samltest.Response)
		// refused, if set, is part of the reason crewjam gives, which
		// the login log line records; empty means accepted.
		refused string
	}{
		{name: "AES-256-GCM, RSA-OAEP-MGF1P, assertion signed", signing: samltest.SignAssertion, enc: samltest.Encryption{KeyTransport: samltest.RSAOAEPMGF1P, BlockCipher: samltest.AES256GCM}},
		{name: "AES-256-GCM, RSA-OAEP SHA-256, assertion signed", signing: samltest.SignAssertion, enc: samltest.Encryption{KeyTransport: samltest.RSAOAEPSHA256, BlockCipher: samltest.AES256GCM}},
		{name: "AES-256-GCM, response signed", signing: samltest.SignResponse, enc: samltest.Encryption{BlockCipher: samltest.AES256GCM}},
		{name: "AES-128-CBC, response signed", signing: samltest.SignResponse, enc: samltest.Encryption{BlockCipher: samltest.AES128CBC}},
		{name: "AES-256-CBC, response signed", signing: samltest.SignResponse, enc: samltest.Encryption{BlockCipher: samltest.AES256CBC}},
		{name: "AES-128-CBC, both signed", signing: samltest.SignBoth, enc: samltest.Encryption{BlockCipher: samltest.AES128CBC}},
		{name: "AES-256-CBC, both signed, RSA-OAEP SHA-256", signing: samltest.SignBoth, enc: samltest.Encryption{KeyTransport: samltest.RSAOAEPSHA256, BlockCipher: samltest.AES256CBC}},
		{name: "AES-128-CBC, only the assertion signed", signing: samltest.SignAssertion, enc: samltest.Encryption{BlockCipher: samltest.AES128CBC},
			refused: "RequireSignedResponseForCBC refuses to decrypt"},
		{name: "AES-256-CBC, only the assertion signed", signing: samltest.SignAssertion, enc: samltest.Encryption{BlockCipher: samltest.AES256CBC},
			refused: "RequireSignedResponseForCBC refuses to decrypt"},
		{name: "AES-256-CBC in a Response signed by an untrusted key", signing: samltest.SignResponse, enc: samltest.Encryption{BlockCipher: samltest.AES256CBC},
			change: func(r *samltest.Response) { r.SigningKey, r.SigningCert = untrustedKeyPair() }, refused: "cannot validate signature on Response"},
		{name: "AES-256-GCM, nothing signed", signing: samltest.SignNone, enc: samltest.Encryption{BlockCipher: samltest.AES256GCM},
			refused: "signature element not present"},
		{name: "encrypted to another certificate", signing: samltest.SignBoth, enc: samltest.Encryption{Cert: testKeys()[4].Cert},
			refused: "failed to decrypt EncryptedAssertion"},
	}
	for _, tt := range tests {
		for _, tenant := range allTenants {
			t.Run(tt.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				l, form := encryptedLogin(t, f, tenant, tt.signing, tt.enc, tt.change)
				rec := f.postACS(tenant, form, l.tracker)
				if tt.refused != "" {
					if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
						t.Fatalf("got status %d, want 403 without a session: %s", rec.Code, rec.Body)
					}
					if got := f.logins(tenant, flowSP, "failure", ReasonSignature); got != 1 {
						t.Errorf("got %v signature failures, want 1", got)
					}
					// The label does not tell the causes apart; ask the
					// tenant's ServiceProvider why (the response was
					// refused, so it was not consumed).
					raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
					tn := f.tenant(tenant)
					_, err := tn.current().sp.ParseXMLResponse(raw, []string{l.requestID}, *tn.ACSURL)
					if err == nil || !strings.Contains(privateError(err), tt.refused) {
						t.Errorf("got reason %v, want one containing %q", err, tt.refused)
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
				if want := "b.simon@" + tenant + ".example"; s.Tenant != tenant || s.NameID != want {
					t.Errorf("got session %+v, want tenant %q user %q", s, tenant, want)
				}
				if got := f.logins(tenant, flowSP, "success", "none"); got != 1 {
					t.Errorf("got %v sp successes, want 1", got)
				}
			})
		}
	}
}

// spRolloverFixture is a fixture whose tenants still decrypt with
// previousSPKeyPair while their IdPs move to the current SP certificate.
func spRolloverFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	var tos []TenantOptions
	for _, id := range allTenants {
		to := tenantOptions(f, id)
		to.SPPreviousKeys = []*rsa.PrivateKey{previousSPKeyPair().Key}
		tos = append(tos, to)
	}
	ts, err := f.p.NewTenants(tos)
	if err != nil {
		t.Fatal(err)
	}
	f.p.SetTenants(ts)
	return f
}

// TestSPKeyRollover: while the SP key is being replaced, assertions the IdP
// encrypts to the previous certificate and to the current one are both
// accepted; one encrypted to any other certificate is not.
func TestSPKeyRollover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cert   *x509.Certificate
		accept bool
	}{
		{"current certificate", encryptionCert(), true},
		{"previous certificate", previousSPKeyPair().Cert, true},
		{"a third certificate", testKeys()[4].Cert, false},
	}
	for _, tt := range tests {
		for _, tenant := range allTenants {
			t.Run(tt.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := spRolloverFixture(t)
				l, form := encryptedLogin(t, f, tenant, samltest.SignAssertion, samltest.Encryption{Cert: tt.cert}, nil)
				rec := f.postACS(tenant, form, l.tracker)
				if !tt.accept {
					if rec.Code != http.StatusForbidden || sessionCookieOf(rec) != nil {
						t.Fatalf("got status %d, want 403 without a session", rec.Code)
					}
					if got := f.logins(tenant, flowSP, "failure", ReasonSignature); got != 1 {
						t.Errorf("got %v signature failures, want 1", got)
					}
					return
				}
				if rec.Code != http.StatusSeeOther || sessionCookieOf(rec) == nil {
					t.Fatalf("got status %d, want 303 with a session: %s", rec.Code, rec.Body)
				}
			})
		}
	}

	// Without the previous key, what was encrypted to it no longer
	// decrypts: the rollover fixture is what makes it work.
	t.Run("previous certificate without SPPreviousKeys", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		l, form := encryptedLogin(t, f, acme, samltest.SignAssertion, samltest.Encryption{Cert: previousSPKeyPair().Cert}, nil)
		if rec := f.postACS(acme, form, l.tracker); rec.Code != http.StatusForbidden {
			t.Fatalf("got status %d, want 403", rec.Code)
		}
	})
}

// TestSPMetadataEncryptionKey: during a rollover the SP metadata offers only
// the current certificate for encryption; the previous key only decrypts.
func TestSPMetadataEncryptionKey(t *testing.T) {
	t.Parallel()
	f := spRolloverFixture(t)
	current := base64.StdEncoding.EncodeToString(encryptionCert().Raw)
	previous := base64.StdEncoding.EncodeToString(previousSPKeyPair().Cert.Raw)
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			rec := f.serve(httptest.NewRequest(http.MethodGet, MetadataPath+tenant, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", rec.Code)
			}
			if strings.Contains(strings.Join(strings.Fields(rec.Body.String()), ""), previous) {
				t.Error("the metadata publishes the previous certificate")
			}
			var ed crewsaml.EntityDescriptor
			if err := xml.Unmarshal(rec.Body.Bytes(), &ed); err != nil {
				t.Fatal(err)
			}
			var encryption []string
			var methods []string
			for _, kd := range ed.SPSSODescriptors[0].KeyDescriptors {
				if kd.Use != "encryption" {
					continue
				}
				for _, c := range kd.KeyInfo.X509Data.X509Certificates {
					encryption = append(encryption, strings.Join(strings.Fields(c.Data), ""))
				}
				for _, m := range kd.EncryptionMethods {
					methods = append(methods, m.Algorithm)
				}
			}
			if len(encryption) != 1 || encryption[0] != current {
				t.Errorf("got %d encryption certificates, want exactly the current one", len(encryption))
			}
			// An IdP that follows the metadata picks the first block
			// cipher it supports: AES-GCM, which needs no signed Response.
			if len(methods) == 0 || methods[0] != samltest.AES256GCM.Algorithm() {
				t.Errorf("got encryption methods %q, want AES-256-GCM first", methods)
			}
		})
	}
}

// spMetadataProvider gives crewjam's IdentityProvider the gateway's SP
// metadata, as an admin uploads it to the IdP.
type spMetadataProvider map[string]*crewsaml.EntityDescriptor

func (m spMetadataProvider) GetServiceProvider(_ *http.Request, id string) (*crewsaml.EntityDescriptor, error) {
	if ed, ok := m[id]; ok {
		return ed, nil
	}
	return nil, fmt.Errorf("unknown service provider %q: %w", id, os.ErrNotExist)
}

// TestIDPEncryptsToSPMetadata runs the demo's IdP code, crewjam's
// IdentityProvider, against the metadata the gateway serves: it encrypts the
// assertion to the metadata's encryption certificate with the first block
// cipher listed (AES-256-GCM), signs the Response and the assertion, and the
// gateway accepts the result.
func TestIDPEncryptsToSPMetadata(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const tenant = "crewjam"
	kp := testKeys()[1]
	idpURL, _ := url.Parse("https://idp.example/metadata")
	ssoURL, _ := url.Parse("https://idp.example/sso")
	idp := &crewsaml.IdentityProvider{
		Key: kp.Key, Certificate: kp.Cert,
		MetadataURL: *idpURL, SSOURL: *ssoURL,
		Clock: dsig.NewFakeClock(f.clock),
	}
	idpXML, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Parse(idpXML, f.clock.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := testKeys()[3]
	ts, err := f.p.NewTenants([]TenantOptions{{
		ID: tenant, URLs: TenantURLs(f.public, tenant), IDP: md, SPKey: sp.Key, SPCert: sp.Cert,
		NameIDFormat: emailNameIDFormat,
	}})
	if err != nil {
		t.Fatal(err)
	}
	f.p.SetTenants(ts)

	rec := f.serve(httptest.NewRequest(http.MethodGet, MetadataPath+tenant, nil))
	var spMD crewsaml.EntityDescriptor
	if err := xml.Unmarshal(rec.Body.Bytes(), &spMD); err != nil {
		t.Fatal(err)
	}
	idp.ServiceProviderProvider = spMetadataProvider{spMD.EntityID: &spMD}

	l := f.startLogin(tenant, "/after")
	req, err := crewsaml.NewIdpAuthnRequest(idp, httptest.NewRequest(http.MethodGet, l.redirect.String(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := req.Validate(); err != nil {
		t.Fatalf("the IdP refuses the AuthnRequest: %v", err)
	}
	session := &crewsaml.Session{
		ID: "s1", NameID: "b.simon@crewjam.example", NameIDFormat: emailNameIDFormat,
		UserEmail: "b.simon@crewjam.example", Index: "idx-1",
		CreateTime: f.clock.Now(), ExpireTime: f.clock.Now().Add(f.p.currentSettings().sessionLifetime),
	}
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, session); err != nil {
		t.Fatal(err)
	}
	if err := req.MakeResponse(); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.ResponseEl)
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("b.simon@")) {
		t.Fatal("the IdP did not encrypt the assertion")
	}
	enc := req.ResponseEl.FindElement("./EncryptedAssertion/EncryptedData/EncryptionMethod")
	if enc == nil || enc.SelectAttrValue("Algorithm", "") != samltest.AES256GCM.Algorithm() {
		t.Fatalf("got EncryptionMethod %v, want AES-256-GCM:\n%s", enc, raw)
	}

	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {l.relayState}}
	rec = f.postACS(tenant, form, l.tracker)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/after" {
		t.Fatalf("got %d to %q, want 303 to /after: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	s, ok := f.authenticate(sessionCookieOf(rec))
	if !ok || s.NameID != "b.simon@crewjam.example" || s.SessionIndex != "idx-1" {
		t.Fatalf("got session %+v (%v), want b.simon@crewjam.example with SessionIndex idx-1", s, ok)
	}
}
