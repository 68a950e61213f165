package metadata

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// downloadHint ends every error about a document that is not an IdP's
// metadata at all. Entra's SAML Certificates panel offers the certificate
// (Base64 and Raw) beside the Federation Metadata XML, and administrators
// pick the wrong one.
const downloadHint = `in Entra ID, open the enterprise application > Single sign-on > SAML Certificates and download "Federation Metadata XML" (or copy the App Federation Metadata Url for idp_metadata_url)`

// SAML namespaces, to tell metadata from messages.
const (
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
)

// maxListedEntities bounds the entity IDs an error lists, so that a
// federation's aggregate of thousands does not make a log line of megabytes.
const maxListedEntities = 5

// wrongDocument returns an error saying what data is, and what to download
// instead, when it is recognisably something other than one IdP's
// metadata: a certificate, an empty file, an HTML page, a SAML message, a
// service provider's metadata, or an aggregate of several IdPs. It returns
// nil for anything else, broken XML included, which crewjam's parser then
// refuses with the position of the fault. data has no byte order mark.
//
// It only ever refuses, so looking at a document before its signature is
// checked is safe.
func wrongDocument(data []byte) error {
	what := identify(data)
	if what == "" {
		return nil
	}
	return fmt.Errorf("%w: %s; %s", ErrUnusable, what, downloadHint)
}

// identify names what data is when it is not IdP metadata, or returns "".
func identify(data []byte) string {
	text := bytes.TrimSpace(data)
	switch {
	case len(text) == 0:
		return "not SAML metadata: the document is empty"
	case bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")):
		// PowerShell 5's Out-File and > write UTF-16.
		return "not SAML metadata: the document is UTF-16 text (saved again by a Windows tool?), not the UTF-8 file Entra serves"
	case bytes.HasPrefix(text, []byte("-----BEGIN ")):
		return identifyPEM(text)
	case isDER(data):
		if _, err := x509.ParseCertificate(data); err == nil {
			return `not SAML metadata: this is a certificate in binary DER form (Entra's "Certificate (Raw)")`
		}
		return `not SAML metadata: this is binary DER data, like Entra's "Certificate (Raw)"`
	case bytes.HasPrefix(text, []byte("MII")):
		// Base64 of a DER SEQUENCE of 256 to 65535 bytes: a certificate
		// copied without its PEM lines.
		if _, err := ParseBase64Cert(string(text)); err == nil {
			return `not SAML metadata: this is a base64 certificate (the content of Entra's "Certificate (Base64)")`
		}
	}
	if text[0] != '<' {
		// An XML document starts with its declaration or an element.
		return "not SAML metadata: the document is not XML"
	}
	return identifyXML(text)
}

// isDER reports whether data starts like DER: a SEQUENCE with a long-form
// length, as every certificate does. No text starts so ('0' followed by a
// UTF-8 continuation byte).
func isDER(data []byte) bool {
	return len(data) >= 2 && data[0] == 0x30 && data[1] >= 0x81 && data[1] <= 0x84
}

func identifyPEM(text []byte) string {
	block, _ := pem.Decode(text)
	switch {
	case block == nil:
		return "not SAML metadata: this is PEM text, not XML"
	case block.Type == "CERTIFICATE":
		return `not SAML metadata: this is a certificate in PEM form (Entra's "Certificate (Base64)")`
	default:
		return fmt.Sprintf("not SAML metadata: this is a PEM %s block", strconv.Quote(block.Type))
	}
}

// identifyXML looks at the root element, and for metadata at the roles or
// entities under it.
func identifyXML(text []byte) string {
	d := xml.NewDecoder(bytes.NewReader(text))
	// Lenient, so that an HTML page is recognised too. crewjam parses
	// strictly afterwards.
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.Directive:
			if f := strings.Fields(strings.ToLower(string(t))); len(f) >= 2 && f[0] == "doctype" && f[1] == "html" {
				return "not SAML metadata: this is an HTML page (a saved sign-in or portal page?)"
			}
		case xml.StartElement:
			return identifyRoot(t.Name, text)
		}
	}
}

func identifyRoot(root xml.Name, text []byte) string {
	switch {
	case strings.EqualFold(root.Local, "html"):
		return "not SAML metadata: this is an HTML page (a saved sign-in or portal page?)"
	case root.Space == nsProtocol && root.Local == "Response":
		return "not SAML metadata: this is a SAML Response (what Entra posts at sign-in)"
	case root.Space == nsProtocol:
		return fmt.Sprintf("not SAML metadata: this is a SAML protocol message <%s>", root.Local)
	case root.Space == nsAssertion && (root.Local == "Assertion" || root.Local == "EncryptedAssertion"):
		return fmt.Sprintf("not SAML metadata: this is a SAML %s (part of what Entra posts at sign-in)", root.Local)
	case root.Local == "EntityDescriptor":
		return identifyEntity(text)
	case root.Local == "EntitiesDescriptor":
		return identifyEntities(text)
	default:
		return fmt.Sprintf("not SAML metadata: the root element is <%s>, not <EntityDescriptor>", root.Local)
	}
}

// identifyEntity recognises a service provider's metadata.
func identifyEntity(text []byte) string {
	var e struct {
		IDP []struct{} `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
		SP  []struct{} `xml:"urn:oasis:names:tc:SAML:2.0:metadata SPSSODescriptor"`
	}
	if xml.Unmarshal(text, &e) != nil || len(e.IDP) > 0 || len(e.SP) == 0 {
		return ""
	}
	return "not IdP metadata: this is a service provider's metadata (an SPSSODescriptor and no IDPSSODescriptor), perhaps the gateway's own"
}

// entitiesPeek is what identifyEntities reads of an EntitiesDescriptor.
type entitiesPeek struct {
	Entities []struct {
		EntityID string     `xml:"entityID,attr"`
		IDP      []struct{} `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	Nested []entitiesPeek `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntitiesDescriptor"`
}

// idps appends the entity IDs of the IdPs in p and the aggregates nested
// in it.
func (p *entitiesPeek) idps(ids []string) []string {
	for _, e := range p.Entities {
		if len(e.IDP) > 0 {
			ids = append(ids, e.EntityID)
		}
	}
	for i := range p.Nested {
		ids = p.Nested[i].idps(ids)
	}
	return ids
}

// identifyEntities recognises an aggregate of several IdPs, of which the
// gateway could not know which one the tenant means.
func identifyEntities(text []byte) string {
	var p entitiesPeek
	if xml.Unmarshal(text, &p) != nil {
		return ""
	}
	ids := p.idps(nil)
	if len(ids) < 2 {
		return ""
	}
	quoted := make([]string, 0, maxListedEntities+1)
	for _, id := range ids[:min(len(ids), maxListedEntities)] {
		quoted = append(quoted, strconv.Quote(id))
	}
	if more := len(ids) - maxListedEntities; more > 0 {
		quoted = append(quoted, fmt.Sprintf("and %d more", more))
	}
	return fmt.Sprintf("not one IdP's metadata: this EntitiesDescriptor holds %d IdP entities (%s), and the enterprise application's own document holds one", len(ids), strings.Join(quoted, ", "))
}
