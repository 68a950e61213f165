package samltest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// TestEncryptedResponse feeds encrypted responses to a crewjam
// ServiceProvider that decrypts with the SP key and refuses AES-CBC unless
// the Response is signed, as the gateway's tenants do: every key transport
// and block cipher decrypts, and CBC with only the assertion signed (the
// signature is inside the encryption) is refused before decryption.
func TestEncryptedResponse(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	spKey, spCert := NewKeyPair(t, "gateway", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))

	for _, transport := range []KeyTransport{RSAOAEPMGF1P, RSAOAEPSHA256} {
		for _, block := range []BlockCipher{AES256GCM, AES128CBC, AES256CBC} {
			for _, signing := range []Signing{SignAssertion, SignResponse, SignBoth} {
				t.Run(fmt.Sprintf("%v/%v/%v", transport, block, signing), func(t *testing.T) {
					t.Parallel()
					sp := newSP(t, idp, now)
					sp.Key, sp.Certificate = spKey, spCert
					sp.RequireSignedResponseForCBC = true
					r := Response{
						Destination: acsURL, Audience: spEntityID, NameID: "dave@contoso.example", Signing: signing,
						Encrypt: &Encryption{Cert: spCert, KeyTransport: transport, BlockCipher: block},
					}
					xmlBytes := idp.SignedResponse(t, r)
					checkEncryptedShape(t, xmlBytes, transport, block, signing)

					assertion, err := sp.ParseXMLResponse(xmlBytes, nil, sp.AcsURL)
					if block != AES256GCM && signing == SignAssertion {
						if !errors.Is(err, saml.ErrInvalidSignature) {
							t.Fatalf("CBC with only the assertion signed: got error %v, want one matching ErrInvalidSignature", privateErr(err))
						}
						return
					}
					if err != nil {
						t.Fatalf("ParseXMLResponse: got error %q, want success", privateErr(err))
					}
					if got, want := assertion.Subject.NameID.Value, "dave@contoso.example"; got != want {
						t.Errorf("NameID: got %q, want %q", got, want)
					}
				})
			}
		}
	}
}

// checkEncryptedShape checks that the response carries the assertion only
// encrypted, with the algorithms asked for, and signatures where signing
// puts them.
func checkEncryptedShape(t *testing.T, xmlBytes []byte, transport KeyTransport, block BlockCipher, signing Signing) {
	t.Helper()
	if bytes.Contains(xmlBytes, []byte("dave@contoso.example")) || bytes.Contains(xmlBytes, []byte("<Assertion")) {
		t.Error("the assertion is readable in the response")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xmlBytes); err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	encrypted := root.SelectElement("EncryptedAssertion")
	if encrypted == nil || encrypted.SelectAttrValue("xmlns", "") != assertionNS {
		t.Fatalf("no EncryptedAssertion in the assertion namespace:\n%s", xmlBytes)
	}
	data := encrypted.SelectElement("EncryptedData")
	if data == nil || data.SelectAttrValue("Type", "") != "http://www.w3.org/2001/04/xmlenc#Element" {
		t.Fatalf("no EncryptedData of Type Element:\n%s", xmlBytes)
	}
	if got, want := data.FindElement("./EncryptionMethod").SelectAttrValue("Algorithm", ""), block.Algorithm(); got != want {
		t.Errorf("block cipher: got %q, want %q", got, want)
	}
	keyMethod := data.FindElement("./KeyInfo/EncryptedKey/EncryptionMethod")
	if keyMethod == nil {
		t.Fatalf("no EncryptedKey in the EncryptedData's KeyInfo:\n%s", xmlBytes)
	}
	wantTransport, wantDigest := "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p", "http://www.w3.org/2000/09/xmldsig#sha1"
	if transport == RSAOAEPSHA256 {
		wantTransport, wantDigest = "http://www.w3.org/2009/xmlenc11#rsa-oaep", "http://www.w3.org/2001/04/xmlenc#sha256"
	}
	if got := keyMethod.SelectAttrValue("Algorithm", ""); got != wantTransport {
		t.Errorf("key transport: got %q, want %q", got, wantTransport)
	}
	if got := keyMethod.FindElement("./DigestMethod").SelectAttrValue("Algorithm", ""); got != wantDigest {
		t.Errorf("key transport digest: got %q, want %q", got, wantDigest)
	}
	if got, want := root.SelectElement("Signature") != nil, signing.signsResponse(); got != want {
		t.Errorf("Response signed: got %t, want %t", got, want)
	}
}

// TestEncryptedResponseWrongCertificate: an assertion encrypted to another
// certificate does not decrypt.
func TestEncryptedResponseWrongCertificate(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	spKey, spCert := NewKeyPair(t, "gateway", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	_, otherCert := NewKeyPair(t, "someone else", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	sp := newSP(t, idp, now)
	sp.Key, sp.Certificate = spKey, spCert
	xmlBytes := idp.SignedResponse(t, Response{Destination: acsURL, Audience: spEntityID, Encrypt: &Encryption{Cert: otherCert}})
	_, err := sp.ParseXMLResponse(xmlBytes, nil, sp.AcsURL)
	if !errors.Is(err, saml.ErrDecryptionFailed) {
		t.Fatalf("got error %v, want one matching ErrDecryptionFailed", privateErr(err))
	}
}

// TestEncryptedErrorResponse: an error response has no assertion, so there
// is nothing to encrypt.
func TestEncryptedErrorResponse(t *testing.T) {
	t.Parallel()
	idp, now := newTestIDP(t)
	_, spCert := NewKeyPair(t, "gateway", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	xmlBytes := idp.SignedResponse(t, Response{
		Destination: acsURL, Signing: SignResponse, StatusCode: "urn:oasis:names:tc:SAML:2.0:status:Requester",
		Encrypt: &Encryption{Cert: spCert},
	})
	if bytes.Contains(xmlBytes, []byte("EncryptedAssertion")) {
		t.Errorf("error response: got an EncryptedAssertion, want none")
	}
}
