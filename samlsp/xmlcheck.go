package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// errDirective refuses a SAML message with a DOCTYPE or another <!...>
// directive. Go's XML parsers never expand or fetch entities, but SAML
// (SAML core §1.3, and every SAML security guide) has no use for a DTD, and
// a message that carries one is refused before its signature is checked,
// rather than handed to code whose behaviour on DTDs no test can pin.
var errDirective = errors.New("the message contains a DOCTYPE or another XML directive")

// errExtraAssertion refuses a Response that holds more than one Assertion
// or EncryptedAssertion element, wherever they are. crewjam verifies one
// and returns it, and ignores the others; but any code that later looks
// for "the assertion" in the document (the audit log's unverified
// identity, a future feature, a debugging aid) could find another one,
// which nobody signed. Entra sends exactly one, so a second one is refused
// rather than reasoned about.
var errExtraAssertion = errors.New("the response holds more than one Assertion or EncryptedAssertion element")

// xmlFacts is what scanXML learns of a message without building a tree.
// Nothing in it is verified.
type xmlFacts struct {
	// directive is set if the message has a DOCTYPE or another directive;
	// the scan stops there.
	directive bool
	// assertions counts the elements whose local name is Assertion or
	// EncryptedAssertion, in any namespace or none.
	assertions int
	// inResponseTo is the root element's InResponseTo attribute.
	inResponseTo string
	// malformed is the tokenizer's error, if the message is not
	// well-formed; the scan stops there.
	malformed error
}

// scanXML tokenizes doc once, as etree (and so crewjam) reads it: strictly,
// and taking any declared encoding as the bytes it is given. Reading it
// differently would let a message hide from the scan what crewjam then
// sees (a decoder without a CharsetReader stops at encoding="ISO-8859-1",
// before any DOCTYPE that follows).
func scanXML(doc []byte) xmlFacts {
	var facts xmlFacts
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	d.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	root := true
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return facts
		}
		if err != nil {
			facts.malformed = err
			return facts
		}
		switch tok := tok.(type) {
		case xml.Directive:
			facts.directive = true
			return facts
		case xml.StartElement:
			if isAssertion(tok.Name.Local) {
				facts.assertions++
			}
			if root {
				root = false
				for _, a := range tok.Attr {
					if a.Name.Space == "" && a.Name.Local == "InResponseTo" {
						facts.inResponseTo = a.Value
					}
				}
			}
		}
	}
}

// scanNames is scanXML's fast path, for a message without "<!": it learns
// the same facts, as an over-estimate, without tokenizing the whole
// message (for a response with 20 groups, 20 allocations rather than 450,
// some 5% of a login's CPU time). It reports false for a message with
// "<!", which scanXML must read.
//
// Only "<!" starts a directive, a comment or a CDATA section, and a parser
// reads the bytes as they are whatever encoding the message declares (see
// scanXML), so without it there is none of them. Every start tag is then
// '<' followed at once by the element's name, which the tokenizer reads as
// the longest run of name bytes; scanNames counts each such name that
// isAssertion accepts, after every '<'. It may count more than the
// tokenizer would (a '<' inside a processing instruction, or one in an
// attribute value, which is not well-formed anyway), never fewer. Only
// the root's InResponseTo is read with the tokenizer, up to the root's
// start tag.
func scanNames(doc []byte) (xmlFacts, bool) {
	var facts xmlFacts
	if bytes.Contains(doc, []byte("<!")) {
		return facts, false
	}
	for rest := doc; ; {
		i := bytes.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		n := 0
		for n < len(rest) && (rest[n] >= utf8.RuneSelf || isNameByte(rest[n])) {
			n++
		}
		if isAssertion(string(rest[:n])) {
			facts.assertions++
		}
		rest = rest[n:]
	}
	facts.inResponseTo = rootInResponseTo(doc)
	return facts, true
}

// isNameByte is encoding/xml's test for an ASCII byte of a name; any byte
// from utf8.RuneSelf up is read into a name too, and checked later.
func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

// rootInResponseTo returns the root element's InResponseTo attribute, read
// as scanXML reads it, or "" if the tokenizer fails before the root's
// start tag ends.
func rootInResponseTo(doc []byte) string {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	d.CharsetReader = func(_ string, input io.Reader) (io.Reader, error) { return input, nil }
	for {
		tok, err := d.RawToken()
		if err != nil {
			return ""
		}
		if start, ok := tok.(xml.StartElement); ok {
			for _, a := range start.Attr {
				if a.Name.Space == "" && a.Name.Local == "InResponseTo" {
					return a.Value
				}
			}
			return ""
		}
	}
}

// isAssertion reports whether local, an element's local name as the
// tokenizer gives it, names an Assertion or EncryptedAssertion. A name
// with more than one colon comes whole; its last part counts.
func isAssertion(local string) bool {
	if i := strings.LastIndexByte(local, ':'); i >= 0 {
		local = local[i+1:]
	}
	return local == "Assertion" || local == "EncryptedAssertion"
}

// checkLogoutXML scans a logout message, once and without building a
// tree, before crewjam parses it: it refuses directives and anything the
// tokenizer refuses, so that nothing after the point it stopped goes
// unseen (as checkResponse does at the ACS).
func checkLogoutXML(doc []byte) error {
	facts := scanXML(doc)
	switch {
	case facts.directive:
		return errDirective
	case facts.malformed != nil:
		return fmt.Errorf("the logout message is not well-formed XML: %w", facts.malformed)
	}
	return nil
}

// checkResponse scans a SAML response, once and without building a tree,
// before crewjam parses it: it refuses directives and more than one
// assertion. It returns the root's InResponseTo, unverified, even when it
// refuses the response.
//
// A response without "<!" (Entra's never has one) is scanned by scanNames;
// any other by scanXML, which also refuses anything its tokenizer refuses,
// so that nothing after the point it stopped goes unseen. scanNames sees
// every byte, and leaves well-formedness to crewjam, which checks it first
// (etree reads strictly, before any signature is looked at) and refuses
// the response with the same reason, malformed.
func checkResponse(doc []byte) (inResponseTo string, err error) {
	facts, ok := scanNames(doc)
	if !ok {
		facts = scanXML(doc)
	}
	switch {
	case facts.directive:
		return facts.inResponseTo, errDirective
	case facts.malformed != nil:
		return facts.inResponseTo, fmt.Errorf("the response is not well-formed XML: %w", facts.malformed)
	case facts.assertions > 1:
		return facts.inResponseTo, fmt.Errorf("%w: %d of them", errExtraAssertion, facts.assertions)
	}
	return facts.inResponseTo, nil
}

// maxLogoutMessage bounds an inflated logout message: a real one is a
// few kilobytes.
const maxLogoutMessage = MaxACSBody

// logoutMessageXML returns the XML of the SAMLRequest or SAMLResponse of a
// logout message: base64 for the HTTP-POST binding, deflated and base64
// for HTTP-Redirect (a GET).
func logoutMessageXML(value string, redirect bool) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, fmt.Errorf("logout message is not base64: %w", err)
	}
	if !redirect {
		return raw, nil
	}
	doc, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), maxLogoutMessage+1))
	if err != nil {
		return nil, fmt.Errorf("logout message does not inflate: %w", err)
	}
	if len(doc) > maxLogoutMessage {
		return nil, fmt.Errorf("logout message inflates to more than %d bytes", maxLogoutMessage)
	}
	return doc, nil
}
