package metadata_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

const (
	responseFile = "entra_enterprise_app_SAMLResponse_assertion-signed_rsa-sha256.xml"
	spFile       = "gateway_sp_metadata.xml"
	// downloadHint ends every error about a wrong document.
	downloadHint = `; in Entra ID, open the enterprise application > Single sign-on > SAML Certificates and download "Federation Metadata XML" (or copy the App Federation Metadata Url for idp_metadata_url)`
)

// assertionOf is the Assertion inside Entra's real SAML Response, as a
// document of its own.
func assertionOf(t testing.TB, response []byte) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(response); err != nil {
		t.Fatal(err)
	}
	a := doc.Root().FindElement("./Assertion")
	if a == nil {
		t.Fatal("no Assertion in the response")
	}
	out := etree.NewDocument()
	out.SetRoot(a.Copy())
	data, err := out.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// aggregate wraps IdP metadata documents in an EntitiesDescriptor, each
// entity with its own entity ID.
func aggregate(t testing.TB, doc []byte, entityIDs ...string) []byte {
	t.Helper()
	out := etree.NewDocument()
	root := out.CreateElement("EntitiesDescriptor")
	root.CreateAttr("xmlns", "urn:oasis:names:tc:SAML:2.0:metadata")
	for _, id := range entityIDs {
		src := etree.NewDocument()
		if err := src.ReadFromBytes(bytes.TrimPrefix(doc, []byte(utf8BOM))); err != nil {
			t.Fatal(err)
		}
		e := src.Root().Copy()
		e.CreateAttr("entityID", id)
		root.AddChild(e)
	}
	data, err := out.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// wrongDocuments are the files an administrator gives instead of an IdP's
// metadata, and what the error must say of each.
func wrongDocuments(t testing.TB) []struct {
	name string
	data []byte
	want string
} {
	signerPEM := readTestdata(t, entraSignerFile)
	signer := entraSigner(t)
	// Entra's "Certificate (Base64)" is PEM with CRLF line ends.
	crlfPEM := bytes.ReplaceAll(signerPEM, []byte("\n"), []byte("\r\n"))
	idp := newIDP(t, time.Now())
	response := readTestdata(t, responseFile)
	return []struct {
		name string
		data []byte
		want string
	}{
		{"PEM certificate (Certificate (Base64))", signerPEM, `not SAML metadata: this is a certificate in PEM form (Entra's "Certificate (Base64)")`},
		{"PEM certificate with CRLF, a byte order mark and leading whitespace", append([]byte(utf8BOM+"\r\n  "), crlfPEM...), `this is a certificate in PEM form`},
		{"PEM private key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), `this is a PEM "PRIVATE KEY" block`},
		{"PEM armour that does not decode", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n"), "this is PEM text, not XML"},
		{"base64 certificate without PEM lines", []byte(base64.StdEncoding.EncodeToString(signer.Raw) + "\n"), `this is a base64 certificate`},
		{"DER certificate (Certificate (Raw))", signer.Raw, `not SAML metadata: this is a certificate in binary DER form (Entra's "Certificate (Raw)")`},
		{"DER, not a certificate", []byte{0x30, 0x82, 0x01, 0x00, 0x02, 0x01, 0x00}, "this is binary DER data"},
		{"empty", nil, "not SAML metadata: the document is empty"},
		{"whitespace only", []byte(" \r\n\t\n"), "the document is empty"},
		{"a byte order mark only", []byte(utf8BOM), "the document is empty"},
		{"UTF-16", []byte("\xff\xfe<\x00E\x00"), "the document is UTF-16 text"},
		{"plain text (a thumbprint)", []byte("Thumbprint: 3C1F0E6A9D\n"), "not SAML metadata: the document is not XML"},
		{"HTML with a doctype", []byte("<!DOCTYPE html>\n<html lang=en><head><title>Sign in to your account</title>"), "not SAML metadata: this is an HTML page"},
		{"HTML without a doctype, upper case", []byte("\n<HTML><BODY>Sign in"), "this is an HTML page"},
		{"XHTML", []byte(`<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>`), "this is an HTML page"},
		{"Entra's SAML Response", response, "not SAML metadata: this is a SAML Response (what Entra posts at sign-in)"},
		{"Entra's SAML Assertion", assertionOf(t, response), "not SAML metadata: this is a SAML Assertion"},
		{"a SAML AuthnRequest", []byte(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x"/>`), "this is a SAML protocol message <AuthnRequest>"},
		{"the gateway's own SP metadata", readTestdata(t, spFile), "not IdP metadata: this is a service provider's metadata (an SPSSODescriptor and no IDPSSODescriptor), perhaps the gateway's own"},
		{"other XML", []byte(`<?xml version="1.0"?><config><tenant/></config>`), "not SAML metadata: the root element is <config>, not <EntityDescriptor>"},
		{"an aggregate of two IdPs", aggregate(t, idp.MetadataXML(), "https://idp.one.example/", "https://idp.two.example/"),
			`not one IdP's metadata: this EntitiesDescriptor holds 2 IdP entities ("https://idp.one.example/", "https://idp.two.example/"), and the enterprise application's own document holds one`},
		{"an aggregate of seven IdPs", aggregate(t, idp.MetadataXML(), "a", "b", "c", "d", "e", "f", "g"), `holds 7 IdP entities ("a", "b", "c", "d", "e", and 2 more)`},
	}
}

// TestParseRecognisesWrongDocuments: what Entra's SAML Certificates panel
// offers beside the metadata, and other files admins give instead, are
// named, with what to download instead, on one line; pinned signers do not
// hide it behind a signature error.
func TestParseRecognisesWrongDocuments(t *testing.T) {
	t.Parallel()
	for _, tt := range wrongDocuments(t) {
		for _, signers := range [][]*x509.Certificate{nil, {entraSigner(t)}} {
			name := tt.name
			if signers != nil {
				name += ", pinned signer"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				md, err := metadata.Parse(tt.data, entraNow, signers)
				if err == nil {
					t.Fatalf("got metadata for %q, want an error containing %q", md.Entity.EntityID, tt.want)
				}
				if !errors.Is(err, metadata.ErrUnusable) {
					t.Errorf("got %q, want an error matching ErrUnusable", err)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.want) {
					t.Errorf("got %q, want it to contain %q", msg, tt.want)
				}
				if !strings.HasSuffix(msg, downloadHint) {
					t.Errorf("got %q, want it to end with %q", msg, downloadHint)
				}
				if strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, "EOF") {
					t.Errorf("got %q, want one line without parser internals", msg)
				}
			})
		}
	}
}

// TestParseStillAcceptsMetadata: the recognition of wrong documents lets
// real IdP metadata through, whatever its first bytes.
func TestParseStillAcceptsMetadata(t *testing.T) {
	t.Parallel()
	entra := readTestdata(t, entraFile)
	idp := newIDP(t, time.Now())
	tests := []struct {
		name    string
		data    []byte
		now     time.Time
		signers []*x509.Certificate
	}{
		{"real Entra file", entra, entraNow, nil},
		{"real Entra file, signed", entra, entraNow, []*x509.Certificate{entraSigner(t)}},
		{"real Entra file without its byte order mark, after blank lines", append([]byte("\r\n\n"), bytes.TrimPrefix(entra, []byte(utf8BOM))...), entraNow, nil},
		{"an aggregate of one IdP", aggregate(t, idp.MetadataXML(), idp.EntityID), time.Now(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := metadata.Parse(tt.data, tt.now, tt.signers); err != nil {
				t.Errorf("got %q, want no error", err)
			}
		})
	}
}
