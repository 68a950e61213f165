// Package samltest plays a Microsoft Entra ID identity provider in tests.
//
// The gateway's SAML code can only be trusted if its tests feed it what a real
// Entra tenant sends, and what an attacker could send instead: responses
// signed on the assertion, the response or both, unsigned ones, ones signed
// with an unknown key or with SHA-1, expired or misaddressed ones, and
// metadata carrying a rollover certificate. Captured responses cannot cover
// that, since they are signed with keys nobody has and expire. This package
// makes them on demand, with fresh keys and the caller's clock.
//
// It does not implement XML signature. Messages are built from crewjam/saml's
// types and their Element methods, and signed with goxmldsig's SigningContext,
// as crewjam's own IdentityProvider does. Before signing, crewjam's output is
// only rearranged to look like Entra's: samlp: on the Response, the SAML
// assertion namespace as the default namespace of Issuer and Assertion, the
// AttributeStatement before the AuthnStatement, and Entra's attribute order.
// The tests check that shape against captured Entra messages in testdata.
//
// It is for tests only; nothing in it is safe for production use.
package samltest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/beevik/etree"
)

// Namespaces and bindings used in the messages and metadata.
const (
	metadataNS      = "urn:oasis:names:tc:SAML:2.0:metadata"
	protocolNS      = "urn:oasis:names:tc:SAML:2.0:protocol"
	assertionNS     = "urn:oasis:names:tc:SAML:2.0:assertion"
	dsigNS          = "http://www.w3.org/2000/09/xmldsig#"
	wsFedNS         = "http://docs.oasis-open.org/wsfed/federation/200706"
	wsAddressingNS  = "http://www.w3.org/2005/08/addressing"
	xsiNS           = "http://www.w3.org/2001/XMLSchema-instance"
	redirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
	postBinding     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
)

// utf8BOM starts every Federation Metadata XML document Entra serves.
const utf8BOM = "\uFEFF"

// IdP is a fake Entra ID tenant's enterprise application: it publishes
// metadata and issues signed SAML responses. Create one with NewIDP and change
// its fields before use; an IdP must not be changed while it is in use by
// concurrent tests.
type IDP struct {
	// TenantID is the Entra directory (tenant) ID, a GUID.
	TenantID string

	// EntityID is the IdP's entity ID and the Issuer of its responses. If
	// empty, it is https://sts.windows.net/<TenantID>/, as in Entra.
	EntityID string

	// SSOURL is where metadata says to send AuthnRequests and
	// LogoutRequests. If empty, it is
	// https://login.microsoftonline.com/<TenantID>/saml2, as in Entra; tests
	// that drive a browser flow set it to a local URL.
	SSOURL string

	// NoSingleLogout leaves the SingleLogoutService out of the metadata,
	// as the metadata of an IdP without single logout has none. The IdP
	// can still make logout messages.
	NoSingleLogout bool

	// Key signs responses, and Cert is its certificate, published in the
	// metadata. Response.SigningKey and Response.SigningCert override them
	// for one response.
	Key  *rsa.PrivateKey
	Cert *x509.Certificate

	// ExtraCerts are also published in the metadata as signing
	// certificates, after Cert, but never used to sign: Entra keeps the
	// inactive certificate of a rollover there. nil publishes Cert alone.
	ExtraCerts []*x509.Certificate

	// Now is the IdP's clock. nil means time.Now.
	Now func() time.Time
}

// NewIDP returns an IdP for a random tenant, with a fresh 2048-bit key and a
// certificate named "Microsoft Azure Federated SSO Certificate", like Entra's,
// valid from an hour ago for three years. EntityID and SSOURL are set to
// Entra's values for the tenant.
func NewIDP(tb testing.TB) *IDP {
	tb.Helper()
	now := time.Now()
	key, cert := NewKeyPair(tb, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(3, 0, 0))
	tenantID := newGUID()
	return &IDP{
		TenantID: tenantID,
		EntityID: entraEntityID(tenantID),
		SSOURL:   entraSSOURL(tenantID),
		Key:      key,
		Cert:     cert,
	}
}

func entraEntityID(tenantID string) string {
	return "https://sts.windows.net/" + tenantID + "/"
}

func entraSSOURL(tenantID string) string {
	return "https://login.microsoftonline.com/" + tenantID + "/saml2"
}

// entityID returns EntityID, or Entra's entity ID for TenantID if it is empty.
func (idp *IDP) entityID() string {
	if idp.EntityID != "" {
		return idp.EntityID
	}
	return entraEntityID(idp.TenantID)
}

// ssoURL returns SSOURL, or Entra's SAML endpoint for TenantID if it is empty.
func (idp *IDP) ssoURL() string {
	if idp.SSOURL != "" {
		return idp.SSOURL
	}
	return entraSSOURL(idp.TenantID)
}

// now returns the IdP's current time, in UTC like every SAML timestamp.
func (idp *IDP) now() time.Time {
	if idp.Now != nil {
		return idp.Now().UTC()
	}
	return time.Now().UTC()
}

// certs returns the certificates the metadata publishes, Cert first.
func (idp *IDP) certs() []*x509.Certificate {
	certs := make([]*x509.Certificate, 0, 1+len(idp.ExtraCerts))
	if idp.Cert != nil {
		certs = append(certs, idp.Cert)
	}
	return append(certs, idp.ExtraCerts...)
}

// MetadataXML returns the IdP's metadata as the "Federation Metadata XML" of
// an Entra enterprise application: a UTF-8 byte order mark, an XML
// declaration, and an EntityDescriptor (with ID and entityID) holding the two
// WS-Federation RoleDescriptors Entra publishes and an IDPSSODescriptor with
// one signing KeyDescriptor per certificate (Cert, then ExtraCerts), a
// SingleLogoutService (HTTP-Redirect; none with NoSingleLogout) and
// SingleSignOnServices (HTTP-Redirect and HTTP-POST), all at SSOURL. Unlike
// Entra's, it is not signed.
func (idp *IDP) MetadataXML() []byte {
	certs := idp.certs()
	wsFedURL := "https://login.microsoftonline.com/" + idp.TenantID + "/wsfed"

	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="utf-8"`)
	ed := doc.CreateElement("EntityDescriptor")
	ed.CreateAttr("ID", "_"+newGUID())
	ed.CreateAttr("entityID", idp.entityID())
	ed.CreateAttr("xmlns", metadataNS)

	// Entra lists its WS-Federation roles first. A SAML SP must skip them,
	// and must not take signing certificates from them.
	sts := wsFedRole(ed, "fed:SecurityTokenServiceType", certs)
	wsFedEndpoint(sts.CreateElement("fed:SecurityTokenServiceEndpoint"), wsFedURL)
	wsFedEndpoint(sts.CreateElement("fed:PassiveRequestorEndpoint"), wsFedURL)
	app := wsFedRole(ed, "fed:ApplicationServiceType", certs)
	wsFedEndpoint(app.CreateElement("fed:TargetScopes"), idp.entityID())
	wsFedEndpoint(app.CreateElement("fed:ApplicationServiceEndpoint"), wsFedURL)
	wsFedEndpoint(app.CreateElement("fed:PassiveRequestorEndpoint"), wsFedURL)

	sso := ed.CreateElement("IDPSSODescriptor")
	sso.CreateAttr("protocolSupportEnumeration", protocolNS)
	signingKeyDescriptors(sso, certs)
	for _, s := range []struct{ tag, binding string }{
		{"SingleLogoutService", redirectBinding},
		{"SingleSignOnService", redirectBinding},
		{"SingleSignOnService", postBinding},
	} {
		if s.tag == "SingleLogoutService" && idp.NoSingleLogout {
			continue
		}
		el := sso.CreateElement(s.tag)
		el.CreateAttr("Binding", s.binding)
		el.CreateAttr("Location", idp.ssoURL())
	}

	buf, err := doc.WriteToBytes()
	if err != nil {
		// etree only fails to write to a failing io.Writer.
		panic(fmt.Sprintf("samltest: write metadata: %v", err))
	}
	return append([]byte(utf8BOM), buf...)
}

// wsFedRole adds to ed a RoleDescriptor of the WS-Federation type xsiType,
// with a signing KeyDescriptor for each of certs.
func wsFedRole(ed *etree.Element, xsiType string, certs []*x509.Certificate) *etree.Element {
	role := ed.CreateElement("RoleDescriptor")
	role.CreateAttr("xsi:type", xsiType)
	role.CreateAttr("protocolSupportEnumeration", wsFedNS)
	role.CreateAttr("xmlns:xsi", xsiNS)
	role.CreateAttr("xmlns:fed", wsFedNS)
	signingKeyDescriptors(role, certs)
	return role
}

// wsFedEndpoint fills el with a WS-Addressing EndpointReference to address.
func wsFedEndpoint(el *etree.Element, address string) {
	ref := el.CreateElement("wsa:EndpointReference")
	ref.CreateAttr("xmlns:wsa", wsAddressingNS)
	ref.CreateElement("wsa:Address").SetText(address)
}

// signingKeyDescriptors adds to role a KeyDescriptor use="signing" for each
// of certs, in order.
func signingKeyDescriptors(role *etree.Element, certs []*x509.Certificate) {
	for _, cert := range certs {
		kd := role.CreateElement("KeyDescriptor")
		kd.CreateAttr("use", "signing")
		keyInfo := kd.CreateElement("KeyInfo")
		keyInfo.CreateAttr("xmlns", dsigNS)
		keyInfo.CreateElement("X509Data").CreateElement("X509Certificate").
			SetText(base64.StdEncoding.EncodeToString(cert.Raw))
	}
}

// newGUID returns a random (version 4) GUID in Entra's lower-case form.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24; it crashes the program instead
	return formatGUID(b)
}

// formatGUID formats b as a version 4, RFC 4122 variant GUID.
func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
