package samlsp

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestCheckResponse: the scan before crewjam counts assertions wherever
// they are and in any namespace, reads the root's InResponseTo, and
// refuses directives; after a "<!" (scanXML), also anything its tokenizer
// cannot read. Without one (scanNames), well-formedness is crewjam's to
// check (TestMalformedResponseRefused), and a second assertion is still
// counted in a message that is not well-formed.
func TestCheckResponse(t *testing.T) {
	t.Parallel()
	const (
		samlp     = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"`
		assertion = `<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a"><Subject/></Assertion>`
		comment   = `<!-- sends the message to the tokenizer -->`
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
		{"a name with two colons", `<samlp:Response ` + samlp + `><a:b:Assertion xmlns:a="x"/>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"a name with two colons, after a comment", comment + `<samlp:Response ` + samlp + `><a:b:Assertion xmlns:a="x"/>` + assertion + `</samlp:Response>`, "", errMalformedXML},
		{"a non-ASCII prefix", `<samlp:Response ` + samlp + `><é:Assertion xmlns:é="x"/>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"a name ended by white space or a slash", "<samlp:Response " + samlp + "><Assertion\n/><EncryptedAssertion\t/><Assertion/></samlp:Response>", "", errExtraAssertion},
		{"an end tag is not counted", `<samlp:Response ` + samlp + `>` + assertion + `</Assertion></samlp:Response>`, "", nil},
		// Over-counted without a tokenizer: refused, as no IdP sends it.
		{"an assertion tag in a processing instruction", `<samlp:Response ` + samlp + `><?pi <Assertion ?>` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"an assertion tag in a processing instruction, after a comment", comment + `<samlp:Response ` + samlp + `><?pi <Assertion ?>` + assertion + `</samlp:Response>`, "", nil},
		{"the root is an assertion holding one", assertion[:len(assertion)-len(`</Assertion>`)] + assertion + `</Assertion>`, "", errExtraAssertion},
		{"InResponseTo of a child is not the root's", `<samlp:Response ` + samlp + `><x InResponseTo="id-3"/>` + assertion + `</samlp:Response>`, "", nil},
		{"a prefixed InResponseTo is not the attribute", `<samlp:Response ` + samlp + ` samlp:InResponseTo="id-4">` + assertion + `</samlp:Response>`, "", nil},
		{"DOCTYPE", `<!DOCTYPE samlp:Response><samlp:Response ` + samlp + `>` + assertion + `</samlp:Response>`, "", errDirective},
		{"DOCTYPE after a declaration of another encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE samlp:Response><samlp:Response ` + samlp + `>` + assertion + `</samlp:Response>`, "", errDirective},
		{"second assertion after a declaration of another encoding", `<?xml version="1.0" encoding="windows-1252"?><samlp:Response ` + samlp + `>` + assertion + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"directive after the root's start", `<samlp:Response ` + samlp + ` InResponseTo="id-5"><!ENTITY x "y">` + assertion + `</samlp:Response>`, "id-5", errDirective},
		{"comment after the root's start", `<samlp:Response ` + samlp + ` InResponseTo="id-7">` + comment + assertion + `</samlp:Response>`, "id-7", nil},
		{"unclosed tag before a second assertion", `<samlp:Response ` + samlp + ` InResponseTo="id-6">` + assertion + `<x` + assertion + `</samlp:Response>`, "id-6", errExtraAssertion},
		{"unclosed tag before a second assertion, after a comment", comment + `<samlp:Response ` + samlp + ` InResponseTo="id-6">` + assertion + `<x` + assertion + `</samlp:Response>`, "id-6", errMalformedXML},
		{"assertion tag in an attribute value", `<samlp:Response ` + samlp + ` InResponseTo="<Assertion">` + assertion + `</samlp:Response>`, "", errExtraAssertion},
		{"undefined entity", `<samlp:Response ` + samlp + `>&who;` + assertion + `</samlp:Response>`, "", nil},
		{"undefined entity, after a comment", comment + `<samlp:Response ` + samlp + `>&who;` + assertion + `</samlp:Response>`, "", errMalformedXML},
		{"a root that does not end", `<samlp:Response ` + samlp + ` InResponseTo="id-8"`, "", nil},
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
		"<R><a:Assertion\n/><?pi <Assertion?><é:EncryptedAssertion/></R>",
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

// FuzzScanNames: scanNames, where it answers, learns at least what
// scanXML's tokenizer does: no directive that the tokenizer would see, no
// fewer assertions, and the same InResponseTo, whenever the tokenizer
// reads the whole message.
func FuzzScanNames(f *testing.F) {
	for _, seed := range []string{
		`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" InResponseTo="x"><Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/></samlp:Response>`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><R><Assertion/><EncryptedAssertion/></R>`,
		"<R><a:Assertion\n/><?pi <Assertion?><é:EncryptedAssertion/></R>",
		`<R a="<Assertion"><Assertion></Assertion></R>`,
		`<R><!DOCTYPE x><a:Assertion/></R>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		fast, ok := scanNames(doc)
		if !ok {
			if !bytes.Contains(doc, []byte("<!")) {
				t.Fatalf("scanNames declined a message without \"<!\": %q", doc)
			}
			return
		}
		full := scanXML(doc)
		if full.directive {
			t.Fatalf("scanNames missed a directive: %q", doc)
		}
		if full.malformed != nil {
			return
		}
		if fast.assertions < full.assertions {
			t.Fatalf("scanNames counted %d assertions, the tokenizer %d: %q", fast.assertions, full.assertions, doc)
		}
		if fast.inResponseTo != full.inResponseTo {
			t.Fatalf("got InResponseTo %q, the tokenizer %q: %q", fast.inResponseTo, full.inResponseTo, doc)
		}
	})
}

// TestMalformedResponseRefused: a genuine signed response made not
// well-formed, without a "<!" that would send it through scanXML's
// tokenizer, is refused as malformed all the same: crewjam reads it
// strictly before it looks at any signature.
func TestMalformedResponseRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		old     string // replaced once by new in the signed response
		new     string
		wantLog string
	}{
		{"undefined entity in the NameID", ">NAMEID<", ">&who;<", "invalid character entity &who;"},
		{"unclosed tag", "</Assertion>", "<x</Assertion>", "XML syntax error"},
		{"'<' in an attribute value", "<samlp:Response ", `<samlp:Response x="<y" `, "XML syntax error"},
		{"mismatched end tag", "</samlp:Response>", "</samlp:Responsx>", "etree: invalid XML format"},
		{"a name with two colons", "</Assertion>", `<a:b:c xmlns:a="x"/></Assertion>`, "XML syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var log bytes.Buffer
			f.p.log = slog.New(slog.NewTextHandler(&log, nil))
			l := f.startLogin(acme, "")
			doc := f.genuine(t, acme, l, samltest.SignAssertion, nil)
			_, a := parts(t, doc)
			samltest.MustFind(t, a, "Subject", "NameID").SetText("NAMEID")
			raw := samltest.XMLBytes(t, doc)
			if !bytes.Contains(raw, []byte(tt.old)) {
				t.Fatalf("%q is not in the response", tt.old)
			}
			raw = bytes.Replace(raw, []byte(tt.old), []byte(tt.new), 1)
			if bytes.Contains(raw, []byte("<!")) {
				t.Fatal("the response has a \"<!\": it would not take scanNames' path")
			}
			rec := f.post(t, acme, raw, l)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("got status %d, want 400", rec.Code)
			}
			f.checkRefused(t, acme, rec, ReasonMalformed)
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("got log %q, want it to say %q", log.String(), tt.wantLog)
			}
		})
	}
}

// TestCheckResponseAllocations: an Entra response, which has no "<!", is
// scanned without tokenizing it whole; the tokenizer allocated some 400
// times for a response with 20 groups.
func TestCheckResponseAllocations(t *testing.T) {
	f := newFixture(t)
	raw := f.idps[acme].SignedResponse(t, f.response(acme, withGroups(f, acme, randomGUIDs(t, 20)...)))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := checkResponse(raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 40 {
		t.Errorf("got %v allocations per scan, want at most 40", allocs)
	}
}
