package samlsp

import (
	"errors"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// TestCheckResponse: the scan before crewjam counts assertions wherever
// they are and in any namespace, reads the root's InResponseTo, and
// refuses directives and anything its tokenizer cannot read.
func TestCheckResponse(t *testing.T) {
	t.Parallel()
	const (
		samlp     = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"`
		assertion = `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"><Subject/></Assertion>`
	)
	tests := []struct {
		name         string
		doc          string
		inResponseTo string
		err          error // nil, errDirective, errExtraAssertion, or errMalformedXML for any other
	}{
		{"one assertion, solicited", `<samlp:Response ` + samlp + ` ID="_r" InResponseTo="id-1">` + assertion + `</samlp:Response>`, "id-1", nil},
		{"one assertion, unsolicited", `<samlp:Response ` + samlp + ` ID="_r">` + assertion + `</samlp:Response>`, "", nil},
		{"one encrypted assertion", `<samlp:Response ` + samlp + `><EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"><EncryptedData/></EncryptedAssertion></samlp:Response>`, "", nil},
		{"no assertion (an error response)", `<samlp:Response ` + samlp + ` InResponseTo="id-1"><samlp:Status/></samlp:Response>`, "id-1", nil},
		{"assertion-like names", `<samlp:Response ` + samlp + `><AssertionIDRef/><saml:AssertionURIRef xmlns:saml="x"/>` + assertion + `</samlp:Response>`, "", nil},
		{"assertions in a comment and a CDATA section", `<samlp:Response ` + samlp + `><!--` + assertion + `--><x><![CDATA[` + assertion + `]]></x>` + assertion + `</samlp:Response>`, "", nil},
		{"two sibling assertions", `<samlp:Response ` + samlp + ` InResponseTo="id-2">` + assertion + assertion + `</samlp:Response>`, "id-2", errExtraAssertion},
		{"assertion nested in Advice", `<samlp:Response ` + samlp + `><Assertion><Advice>` + assertion + `</Advice></Assertion></samlp:Response>`, "", errExtraAssertion},
		{"assertion in Extensions", `<samlp:Response ` + samlp + `><samlp:Extensions>` + assertion + `</samlp:Extensions>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"assertion in a Signature's Object", `<samlp:Response ` + samlp + `><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>` + assertion + `</ds:Object></ds:Signature>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"EncryptedAssertion beside an Assertion", `<samlp:Response ` + samlp + `><EncryptedAssertion/>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"another prefix", `<samlp:Response ` + samlp + `><saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion"/>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"a foreign namespace", `<samlp:Response ` + samlp + `><Assertion xmlns="urn:example:not-saml"/>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"no namespace at all", `<Response><Assertion/><Assertion/></Response>`, "", errExtraAssertion},
		{"a name with two colons", `<samlp:Response ` + samlp + `><a:b:Assertion xmlns:a="x"/>` + assertion + `</samlp:Response>`, "", errMalformedXML},
		{"the root is an assertion holding one", assertion[:len(assertion)-len(`</Assertion>`)] + assertion + `</Assertion>`, "", errExtraAssertion},
		{"InResponseTo of a child is not the root's", `<samlp:Response ` + samlp + `><x InResponseTo="id-3"/>` + assertion + `</samlp:Response>`, "", nil},
		{"a prefixed InResponseTo is not the attribute", `<samlp:Response ` + samlp + ` samlp:InResponseTo="id-4">` + assertion + `</samlp:Response>`, "", nil},
		{"DOCTYPE", `<!DOCTYPE samlp:Response><samlp:Response ` + samlp + `>` + assertion + `</samlp:Response>`, "", errDirective},
		{"DOCTYPE after a declaration of another encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE samlp:Response><samlp:Response ` + samlp + `>` + assertion + `</samlp:Response>`, "", errDirective},
		{"second assertion after a declaration of another encoding", `<?xml version="1.0" encoding="windows-1252"?><samlp:Response ` + samlp + `>` + assertion + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"directive after the root's start", `<samlp:Response ` + samlp + ` InResponseTo="id-5"><!ENTITY x "y">` + assertion + `</samlp:Response>`, "id-5", errDirective},
		{"unclosed tag before a second assertion", `<samlp:Response ` + samlp + ` InResponseTo="id-6">` + assertion + `<x` + assertion + `</samlp:Response>`, "id-6", errMalformedXML},
		{"undefined entity", `<samlp:Response ` + samlp + `>&who;` + assertion + `</samlp:Response>`, "", errMalformedXML},
		{"not XML", `SAMLResponse`, "", nil},
		{"empty", ``, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			irt, err := checkResponse([]byte(tt.doc))
			if irt != tt.inResponseTo {
				t.Errorf("got InResponseTo %q, want %q", irt, tt.inResponseTo)
			}
			switch {
			case tt.err == nil && err != nil:
				t.Errorf("got error %q, want none", err)
			case tt.err == errMalformedXML:
				if err == nil || errors.Is(err, errDirective) || errors.Is(err, errExtraAssertion) {
					t.Errorf("got error %v, want the tokenizer's", err)
				}
			case tt.err != nil && !errors.Is(err, tt.err):
				t.Errorf("got error %v, want %q", err, tt.err)
			}
		})
	}
}

// errMalformedXML stands, in TestCheckResponse, for any error of the
// tokenizer.
var errMalformedXML = errors.New("any tokenizer error")

// FuzzCheckResponse: whatever checkResponse lets through holds, as etree
// (and so crewjam) reads it, at most one element whose local name is
// Assertion or EncryptedAssertion, and no directive.
func FuzzCheckResponse(f *testing.F) {
	for _, seed := range []string{
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" InResponseTo="x"><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><R><Assertion/><EncryptedAssertion/></R>`,
		`<R><!DOCTYPE x><a:Assertion/><![CDATA[<Assertion/>]]><!--<Assertion/>--></R>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if _, err := checkResponse(doc); err != nil {
			return
		}
		d := etree.NewDocument()
		if d.ReadFromBytes(doc) != nil {
			return
		}
		n := 0
		for _, tok := range d.Child {
			if _, ok := tok.(*etree.Directive); ok {
				t.Fatalf("a directive passed: %q", doc)
			}
		}
		for _, el := range d.FindElements("//*") {
			tag := el.Tag
			if i := strings.LastIndexByte(tag, ':'); i >= 0 {
				tag = tag[i+1:]
			}
			if tag == "Assertion" || tag == "EncryptedAssertion" {
				n++
			}
		}
		if n > 1 {
			t.Fatalf("%d assertions passed: %q", n, doc)
		}
	})
}
