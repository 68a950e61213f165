package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// errDirective refuses a SAML message with a DOCTYPE or another <!...>
// directive. Go's XML parsers never expand or fetch entities, but SAML
// (SAML core §1.3, and every SAML security guide) has no use for a DTD, and
// a message that carries one is refused before its signature is checked,
// rather than handed to code whose behaviour on DTDs no test can pin.
var errDirective = errors.New("the message contains a DOCTYPE or another XML directive")

// refuseDirectives scans doc's tokens, without building a tree, for
// directives. It does not judge well-formedness otherwise: the SAML
// library does that next.
func refuseDirectives(doc []byte) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			// Malformed: the SAML library refuses it with its own error.
			return nil
		}
		if _, ok := tok.(xml.Directive); ok {
			return errDirective
		}
	}
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
