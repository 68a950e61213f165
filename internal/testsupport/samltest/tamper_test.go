package samltest

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// tamperResponse returns a fresh IdP, a crewjam SP that trusts it, and the
// XML of a response signed as signing says.
func tamperResponse(t *testing.T, signing Signing) (*IDP, *saml.ServiceProvider, []byte) {
	t.Helper()
	idp, now := newTestIDP(t)
	sp := newSP(t, idp, now)
	return idp, sp, idp.SignedResponse(t, Response{Destination: acsURL, Audience: spEntityID, Signing: signing})
}

func TestParseXMLRoundTrip(t *testing.T) {
	t.Parallel()
	_, sp, doc := tamperResponse(t, SignBoth)
	out := XMLBytes(t, ParseXML(t, doc))
	if !bytes.Equal(out, doc) {
		t.Fatalf("got %q, want the response unchanged", out)
	}
	if _, err := sp.ParseXMLResponse(out, nil, sp.AcsURL); err != nil {
		t.Fatalf("round-tripped response: %v", privateErr(err))
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	_, _, doc := tamperResponse(t, SignAssertion)
	root := ParseXML(t, doc).Root()
	if got := Find(root, "Assertion", "Subject", "NameID").Text(); got != defaultNameID {
		t.Errorf("got NameID %q, want %q", got, defaultNameID)
	}
	if Find(root) != root {
		t.Error("Find with no path is not the element itself")
	}
	if Find(root, "Assertion", "Nothing", "NameID") != nil {
		t.Error("Find of a missing path is not nil")
	}
	// Prefixes do not matter: the Status is samlp:, the Assertion unprefixed.
	if Find(root, "Status", "StatusCode") == nil || Find(root, "Assertion", "Signature", "SignedInfo") == nil {
		t.Error("Find does not follow prefixed and unprefixed elements")
	}
}

// TestResign: an edited assertion signed again verifies, and reads as
// edited; one that is edited but not signed again does not verify.
func TestResign(t *testing.T) {
	t.Parallel()
	for _, signing := range []Signing{SignAssertion, SignResponse, SignBoth, SignNone} {
		t.Run(signing.String(), func(t *testing.T) {
			t.Parallel()
			idp, sp, raw := tamperResponse(t, signing)
			doc := ParseXML(t, raw)
			MustFind(t, doc.Root(), "Assertion", "Subject", "NameID").SetText("carol@contoso.example")
			if _, err := sp.ParseXMLResponse(XMLBytes(t, doc), nil, sp.AcsURL); err == nil {
				t.Fatal("edited response accepted before it was signed again")
			}
			var signed []*etree.Element
			if signing.signsAssertion() || signing == SignNone {
				signed = append(signed, MustFind(t, doc.Root(), "Assertion"))
			}
			if signing.signsResponse() {
				signed = append(signed, doc.Root())
			}
			for _, el := range signed {
				idp.Resign(t, el, Signer{})
				if got := MustFind(t, el, "Signature").Index(); got != MustFind(t, el, "Issuer").Index()+1 {
					t.Errorf("<%s> Signature at index %d, want just after the Issuer", el.Tag, got)
				}
			}
			a, err := sp.ParseXMLResponse(XMLBytes(t, doc), nil, sp.AcsURL)
			if err != nil {
				t.Fatalf("resigned response: %v", privateErr(err))
			}
			if got := a.Subject.NameID.Value; got != "carol@contoso.example" {
				t.Errorf("got NameID %q, want the edited one", got)
			}
		})
	}
}

// TestResignWholeDocumentReference: with an ID attribute el does not have,
// the Reference URI is "", which goxmldsig accepts and crewjam refuses.
func TestResignWholeDocumentReference(t *testing.T) {
	t.Parallel()
	idp, sp, raw := tamperResponse(t, SignAssertion)
	doc := ParseXML(t, raw)
	assertion := MustFind(t, doc.Root(), "Assertion")
	idp.Resign(t, assertion, Signer{IDAttribute: "NoSuchAttribute"})
	if got := MustFind(t, assertion, "Signature", "SignedInfo", "Reference").SelectAttrValue("URI", "?"); got != "" {
		t.Fatalf("got URI %q, want empty", got)
	}
	_, err := sp.ParseXMLResponse(XMLBytes(t, doc), nil, sp.AcsURL)
	if !errors.Is(err, saml.ErrInvalidSignature) || !strings.Contains(privateErr(err).Error(), "Reference URI") {
		t.Fatalf("got %v, want the Reference URI refused", privateErr(err))
	}
}

// TestResignSignedInfo: an edited SignedInfo signed again passes goxmldsig's
// check of the SignatureValue, so what stops it is the check of what it
// references; the same edit without signing again fails on the signature.
func TestResignSignedInfo(t *testing.T) {
	t.Parallel()
	for _, resign := range []bool{false, true} {
		idp, sp, raw := tamperResponse(t, SignAssertion)
		doc := ParseXML(t, raw)
		sig := MustFind(t, doc.Root(), "Assertion", "Signature")
		ref := MustFind(t, sig, "SignedInfo", "Reference")
		// goxmldsig compares the URI after its first character with the ID,
		// whatever that character is; the SAML profile wants "#".
		ref.CreateAttr("URI", "x"+strings.TrimPrefix(ref.SelectAttrValue("URI", ""), "#"))
		if resign {
			idp.ResignSignedInfo(t, sig)
		}
		_, err := sp.ParseXMLResponse(XMLBytes(t, doc), nil, sp.AcsURL)
		msg := privateErr(err).Error()
		if !errors.Is(err, saml.ErrInvalidSignature) || strings.Contains(msg, "Reference URI") != resign {
			t.Errorf("resigned %v: got %v, want a refusal for the Reference URI only if resigned", resign, msg)
		}
	}
}

func TestSplitText(t *testing.T) {
	t.Parallel()
	idp, sp, raw := tamperResponse(t, SignBoth)
	for _, tt := range []struct {
		name  string
		split func(*testing.T, *etree.Element)
		want  string
	}{
		{"comment", func(t *testing.T, el *etree.Element) { SplitTextWithComment(t, el, 5, "x") }, "<NameID Format=\"" + emailNameIDFormat + "\">alice<!--x-->@contoso.example</NameID>"},
		{"CDATA", func(t *testing.T, el *etree.Element) { SplitTextWithCDATA(t, el, 5) }, "<NameID Format=\"" + emailNameIDFormat + "\">alice<![CDATA[@contoso.example]]></NameID>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := ParseXML(t, raw)
			tt.split(t, MustFind(t, doc.Root(), "Assertion", "Subject", "NameID"))
			out := XMLBytes(t, doc)
			if !bytes.Contains(out, []byte(tt.want)) {
				t.Fatalf("got %s, want it to contain %s", out, tt.want)
			}
			// The split survives parsing again.
			if !bytes.Equal(XMLBytes(t, ParseXML(t, out)), out) {
				t.Error("the split does not survive ParseXML")
			}
			// Neither changes the canonical form, so the signatures still
			// verify, and the value reads whole.
			a, err := sp.ParseXMLResponse(out, nil, sp.AcsURL)
			if err != nil {
				t.Fatalf("split response: %v", privateErr(err))
			}
			if got := a.Subject.NameID.Value; got != defaultNameID {
				t.Errorf("got NameID %q, want %q", got, defaultNameID)
			}
			// Signed again, as an IdP would sign it split, it verifies too.
			doc = ParseXML(t, out)
			idp.Resign(t, MustFind(t, doc.Root(), "Assertion"), Signer{})
			idp.Resign(t, doc.Root(), Signer{})
			out = XMLBytes(t, doc)
			if !bytes.Contains(out, []byte(tt.want)) {
				t.Fatalf("resigned: got %s, want it to contain %s", out, tt.want)
			}
			if _, err := sp.ParseXMLResponse(out, nil, sp.AcsURL); err != nil {
				t.Fatalf("resigned split response: %v", privateErr(err))
			}
		})
	}
}

func TestDeflateBomb(t *testing.T) {
	t.Parallel()
	prefix := []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" `)
	for _, size := range []int64{1, int64(len(prefix)), 1000, 10 << 20} {
		bomb := DeflateBomb(prefix, size)
		r := flate.NewReader(bytes.NewReader(bomb))
		head := make([]byte, len(prefix)+10)
		n, err := io.ReadFull(r, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("size %d: inflate: %v", size, err)
		}
		rest, err := io.Copy(io.Discard, r)
		if err != nil {
			t.Fatalf("size %d: inflate: %v", size, err)
		}
		total := int64(n) + rest
		if total < size || total >= max(size, int64(len(prefix)))+258 {
			t.Errorf("size %d: inflates to %d bytes", size, total)
		}
		want := append(append([]byte{}, prefix...), bytes.Repeat([]byte{' '}, 10)...)
		if !bytes.Equal(head[:n], want[:n]) {
			t.Errorf("size %d: inflates to %q..., want %q...", size, head[:n], want[:n])
		}
		if size == 10<<20 && len(bomb) > 11<<10 {
			t.Errorf("10 MiB bomb is %d bytes, want about 10 KiB", len(bomb))
		}
	}
}

// TestEncrypt: an assertion a test has edited and signed again, encrypted
// with Encrypt in place of the plaintext, decrypts and verifies, and reads
// as edited; the plaintext is nowhere in the response.
func TestEncrypt(t *testing.T) {
	t.Parallel()
	idp, sp, raw := tamperResponse(t, SignAssertion)
	spKey, spCert := NewKeyPair(t, "gateway", 2048, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	sp.Key, sp.Certificate = spKey, spCert
	doc := ParseXML(t, raw)
	assertion := MustFind(t, doc.Root(), "Assertion")
	MustFind(t, assertion, "Subject", "NameID").SetText("carol@contoso.example")
	idp.Resign(t, assertion, Signer{})
	encrypted := Encrypt(t, assertion, Encryption{Cert: spCert})
	if encrypted.Tag != "EncryptedAssertion" {
		t.Fatalf("got <%s>, want <EncryptedAssertion>", encrypted.Tag)
	}
	doc.Root().InsertChildAt(assertion.Index(), encrypted)
	doc.Root().RemoveChild(assertion)
	out := XMLBytes(t, doc)
	if bytes.Contains(out, []byte("carol@")) {
		t.Fatalf("the NameID is readable in the response:\n%s", out)
	}
	a, err := sp.ParseXMLResponse(out, nil, sp.AcsURL)
	if err != nil {
		t.Fatalf("ParseXMLResponse: %v", privateErr(err))
	}
	if got, want := a.Subject.NameID.Value, "carol@contoso.example"; got != want {
		t.Errorf("got NameID %q, want %q", got, want)
	}
}
