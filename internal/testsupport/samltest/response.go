package samltest

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// Claim types (attribute names) that Entra ID sends by default, and the one
// it sends for group membership when the application asks for it.
const (
	// ClaimTenantID is the user's directory (tenant) ID.
	ClaimTenantID = "http://schemas.microsoft.com/identity/claims/tenantid"
	// ClaimObjectID is the user's immutable object ID in the directory.
	ClaimObjectID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	// ClaimDisplayName is the user's display name.
	ClaimDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
	// ClaimIdentityProvider is who authenticated the user: the tenant's
	// issuer for members, another provider (such as "live.com") for guests.
	ClaimIdentityProvider = "http://schemas.microsoft.com/identity/claims/identityprovider"
	// ClaimAuthnMethods lists how the user authenticated (password, MFA).
	ClaimAuthnMethods = "http://schemas.microsoft.com/claims/authnmethodsreferences"
	// ClaimGivenName is the user's first name.
	ClaimGivenName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	// ClaimSurname is the user's last name.
	ClaimSurname = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	// ClaimEmailAddress is the user's mail address.
	ClaimEmailAddress = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	// ClaimName is the user's principal name (UPN).
	ClaimName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	// ClaimGroups holds one value per group: object IDs by default.
	ClaimGroups = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
)

// Values Entra uses in responses.
const (
	statusSuccess        = "urn:oasis:names:tc:SAML:2.0:status:Success"
	emailNameIDFormat    = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	passwordAuthnContext = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	passwordAuthnMethod  = "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
	bearerMethod         = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
	defaultNameID        = "alice@contoso.example"
)

// Signing says which elements of a response are signed. The values match
// Entra's "Signing Option" for an enterprise application, plus SignNone.
type Signing int

const (
	// SignAssertion signs the Assertion only: Entra's default, "Sign SAML
	// assertion".
	SignAssertion Signing = iota
	// SignResponse signs the Response only: "Sign SAML response".
	SignResponse
	// SignBoth signs the Assertion, then the Response that holds it: "Sign
	// SAML response and assertion".
	SignBoth
	// SignNone signs nothing, which Entra never does; a forged response
	// looks like this.
	SignNone
)

// String returns the name of the constant, for test names.
func (s Signing) String() string {
	switch s {
	case SignAssertion:
		return "SignAssertion"
	case SignResponse:
		return "SignResponse"
	case SignBoth:
		return "SignBoth"
	case SignNone:
		return "SignNone"
	}
	return fmt.Sprintf("Signing(%d)", int(s))
}

func (s Signing) signsAssertion() bool { return s == SignAssertion || s == SignBoth }
func (s Signing) signsResponse() bool  { return s == SignResponse || s == SignBoth }

// Attribute is one claim of the AttributeStatement: a name (a claim type URI
// for Entra) and its values, in order.
type Attribute struct {
	Name   string
	Values []string
}

// Response describes one SAML response for IdP.SignedResponse and
// IdP.PostForm. Its zero value asks for what Entra sends for an
// IdP-initiated login of alice@contoso.example, except that the fields the
// service provider decides (Destination and Audience) are empty; each field
// says what its zero value means. Times are those of the IdP's clock.
type Response struct {
	// Destination is the Response's Destination, the SP's ACS URL. If
	// empty, the attribute is left out.
	Destination string
	// Recipient is the SubjectConfirmationData Recipient. If empty, it is
	// Destination.
	Recipient string
	// Audience is the Audience of the assertion's AudienceRestriction, the
	// SP's entity ID. If empty, there is no AudienceRestriction.
	Audience string

	// InResponseTo is the ID of the AuthnRequest answered, set on both the
	// Response and the SubjectConfirmationData. If empty, both leave it
	// out, as in an IdP-initiated response.
	InResponseTo string

	// NameID is the subject's NameID. If empty, it is
	// "alice@contoso.example".
	NameID string
	// NameIDFormat is the NameID's Format. If empty, it is
	// urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress.
	NameIDFormat string

	// Attributes are the claims of the AttributeStatement, in order. If
	// nil, they are DefaultAttributes for the IdP's tenant, with NameID as
	// the email address and the part of NameID before any "@" as the
	// display name. If empty but not nil, there is no AttributeStatement.
	Attributes []Attribute

	// Issuer is the Issuer of both the Response and the Assertion. If
	// empty, it is the IdP's EntityID.
	Issuer string

	// IssueInstant is the IssueInstant of the Response and the Assertion.
	// If zero, it is the IdP's current time.
	IssueInstant time.Time
	// AuthnInstant is when the user signed in, the AuthnStatement's
	// AuthnInstant. If zero, it is IssueInstant.
	AuthnInstant time.Time
	// NotBefore and NotOnOrAfter bound the assertion's Conditions. If
	// zero, they are five minutes before and one hour after the IdP's
	// current time, as Entra sets them.
	NotBefore, NotOnOrAfter time.Time
	// SubjectNotOnOrAfter is the SubjectConfirmationData NotOnOrAfter. If
	// zero, it is NotOnOrAfter.
	SubjectNotOnOrAfter time.Time
	// SessionNotOnOrAfter is the AuthnStatement's SessionNotOnOrAfter. If
	// zero, it is left out, as Entra does.
	SessionNotOnOrAfter time.Time

	// AssertionID and ResponseID are the elements' IDs. If empty, each is
	// "_" followed by a random GUID, like Entra's.
	AssertionID, ResponseID string
	// SessionIndex is the AuthnStatement's SessionIndex. If empty, it is
	// AssertionID, as Entra sets it.
	SessionIndex string

	// Signing says what is signed. The zero value signs the assertion only,
	// as Entra does by default.
	Signing Signing
	// SignatureMethod is the XML signature algorithm. If empty, it is
	// dsig.RSASHA256SignatureMethod. dsig.RSASHA1SignatureMethod makes the
	// digest SHA-1 too.
	SignatureMethod string
	// SigningKey signs the response instead of the IdP's Key, and
	// SigningCert is put in the signature's KeyInfo instead of the IdP's
	// Cert. Set both to sign with an untrusted key, or only SigningKey to
	// sign with an untrusted key while naming the trusted certificate.
	SigningKey  *rsa.PrivateKey
	SigningCert *x509.Certificate
	// OmitKeyInfo leaves the KeyInfo, and so the certificate, out of each
	// signature, so that the SP must try the certificates it trusts.
	OmitKeyInfo bool

	// StatusCode is the Response's top-level status code. If empty, it is
	// urn:oasis:names:tc:SAML:2.0:status:Success. Any other value makes an
	// error response, which has no assertion, so that SignAssertion leaves
	// it unsigned.
	StatusCode string
	// StatusMessage is the Status's StatusMessage, which Entra fills with
	// an AADSTS error for error responses. If empty, it is left out.
	StatusMessage string

	// AuthnContextClassRef is the AuthnStatement's AuthnContextClassRef. If
	// empty, it is urn:oasis:names:tc:SAML:2.0:ac:classes:Password.
	AuthnContextClassRef string

	// Encrypt, if set, replaces the assertion by an EncryptedAssertion
	// holding it, made as Encrypt says. Signing still applies: a signed
	// assertion is signed before it is encrypted, and a signed Response
	// covers the EncryptedAssertion. If nil, the assertion is sent in the
	// clear, as Entra does unless token encryption is configured.
	Encrypt *Encryption
}

// DefaultAttributes returns the claims Entra sends by default for a member of
// tenant tenantID with the given mail address and display name, in Entra's
// order: tenant ID, object ID, display name, identity provider (the tenant's
// issuer), authentication methods (password), given name and surname (the
// display name split at its first space), email address, and name (the UPN,
// here the mail address), then groups with one value per group if any are
// given. The object ID is a GUID derived from tenantID and email, so that one
// user keeps it across responses. A claim whose value would be empty is left
// out, as Entra does.
func DefaultAttributes(tenantID, email, displayName string, groups ...string) []Attribute {
	given, surname, _ := strings.Cut(displayName, " ")
	var attrs []Attribute
	add := func(name string, values ...string) {
		for _, v := range values {
			if v == "" {
				return
			}
		}
		if len(values) > 0 {
			attrs = append(attrs, Attribute{Name: name, Values: values})
		}
	}
	add(ClaimTenantID, tenantID)
	add(ClaimObjectID, objectID(tenantID, email))
	add(ClaimDisplayName, displayName)
	add(ClaimIdentityProvider, entraEntityID(tenantID))
	add(ClaimAuthnMethods, passwordAuthnMethod)
	add(ClaimGivenName, given)
	add(ClaimSurname, surname)
	add(ClaimEmailAddress, email)
	add(ClaimName, email)
	add(ClaimGroups, groups...)
	return attrs
}

// objectID returns a GUID that depends only on tenantID and email.
func objectID(tenantID, email string) string {
	sum := sha256.Sum256([]byte(tenantID + "\x00" + email))
	return formatGUID([16]byte(sum[:16]))
}

// SignedResponse returns the XML of a response made as r describes, as an SP
// receives it once it has base64-decoded the SAMLResponse form field. It
// fails tb if the response cannot be signed.
func (idp *IDP) SignedResponse(tb testing.TB, r Response) []byte {
	tb.Helper()
	buf, err := idp.Sign(r)
	if err != nil {
		tb.Fatal(err)
	}
	return buf
}

// Sign is SignedResponse for callers outside tests, such as the load
// benchmark (cmd/loadtest): it returns the error instead of failing a test.
// An IdP may sign several responses at once.
func (idp *IDP) Sign(r Response) ([]byte, error) {
	el, err := idp.responseElement(r)
	if err != nil {
		return nil, fmt.Errorf("samltest: make response: %w", err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(el)
	buf, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("samltest: write response: %w", err)
	}
	return buf, nil
}

// PostForm returns the form the browser posts to the SP's ACS URL with the
// HTTP-POST binding: SAMLResponse (SignedResponse, in standard base64) and,
// unless relayState is empty, RelayState.
func (idp *IDP) PostForm(tb testing.TB, r Response, relayState string) url.Values {
	tb.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(idp.SignedResponse(tb, r))}}
	if relayState != "" {
		form.Set("RelayState", relayState)
	}
	return form
}

// withDefaults returns r with its zero fields set as their comments say,
// at IdP time now.
func (idp *IDP) withDefaults(r Response, now time.Time) Response {
	if r.Recipient == "" {
		r.Recipient = r.Destination
	}
	if r.NameID == "" {
		r.NameID = defaultNameID
	}
	if r.NameIDFormat == "" {
		r.NameIDFormat = emailNameIDFormat
	}
	if r.Attributes == nil {
		displayName, _, _ := strings.Cut(r.NameID, "@")
		r.Attributes = DefaultAttributes(idp.TenantID, r.NameID, displayName)
	}
	if r.Issuer == "" {
		r.Issuer = idp.entityID()
	}
	if r.IssueInstant.IsZero() {
		r.IssueInstant = now
	}
	if r.AuthnInstant.IsZero() {
		r.AuthnInstant = r.IssueInstant
	}
	if r.NotBefore.IsZero() {
		r.NotBefore = now.Add(-5 * time.Minute)
	}
	if r.NotOnOrAfter.IsZero() {
		r.NotOnOrAfter = now.Add(time.Hour)
	}
	if r.SubjectNotOnOrAfter.IsZero() {
		r.SubjectNotOnOrAfter = r.NotOnOrAfter
	}
	if r.AssertionID == "" {
		r.AssertionID = "_" + newGUID()
	}
	if r.ResponseID == "" {
		r.ResponseID = "_" + newGUID()
	}
	if r.SessionIndex == "" {
		r.SessionIndex = r.AssertionID
	}
	if r.SignatureMethod == "" {
		r.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	if r.SigningKey == nil {
		r.SigningKey = idp.Key
	}
	if r.SigningCert == nil {
		r.SigningCert = idp.Cert
	}
	if r.StatusCode == "" {
		r.StatusCode = statusSuccess
	}
	if r.AuthnContextClassRef == "" {
		r.AuthnContextClassRef = passwordAuthnContext
	}
	return r
}

// assertion returns the saml.Assertion r describes; r has its defaults.
func (r *Response) assertion() *saml.Assertion {
	a := &saml.Assertion{
		ID:           r.AssertionID,
		IssueInstant: r.IssueInstant,
		Version:      "2.0",
		Issuer:       saml.Issuer{Value: r.Issuer},
		Subject: &saml.Subject{
			NameID: &saml.NameID{Format: r.NameIDFormat, Value: r.NameID},
			SubjectConfirmations: []saml.SubjectConfirmation{{
				Method: bearerMethod,
				SubjectConfirmationData: &saml.SubjectConfirmationData{
					InResponseTo: r.InResponseTo,
					NotOnOrAfter: r.SubjectNotOnOrAfter,
					Recipient:    r.Recipient,
				},
			}},
		},
		Conditions: &saml.Conditions{
			NotBefore:    r.NotBefore,
			NotOnOrAfter: r.NotOnOrAfter,
		},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: r.AuthnInstant,
			SessionIndex: r.SessionIndex,
			AuthnContext: saml.AuthnContext{
				AuthnContextClassRef: &saml.AuthnContextClassRef{Value: r.AuthnContextClassRef},
			},
		}},
	}
	if r.Audience != "" {
		a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{{
			Audience: saml.Audience{Value: r.Audience},
		}}
	}
	if !r.SessionNotOnOrAfter.IsZero() {
		t := r.SessionNotOnOrAfter
		a.AuthnStatements[0].SessionNotOnOrAfter = &t
	}
	if len(r.Attributes) > 0 {
		attrs := make([]saml.Attribute, 0, len(r.Attributes))
		for _, attr := range r.Attributes {
			values := make([]saml.AttributeValue, 0, len(attr.Values))
			for _, v := range attr.Values {
				values = append(values, saml.AttributeValue{Value: v})
			}
			attrs = append(attrs, saml.Attribute{Name: attr.Name, Values: values})
		}
		a.AttributeStatements = []saml.AttributeStatement{{Attributes: attrs}}
	}
	return a
}

// response returns the saml.Response r describes, without its assertion; r
// has its defaults.
func (r *Response) response() *saml.Response {
	resp := &saml.Response{
		ID:           r.ResponseID,
		InResponseTo: r.InResponseTo,
		Version:      "2.0",
		IssueInstant: r.IssueInstant,
		Destination:  r.Destination,
		Issuer:       &saml.Issuer{Value: r.Issuer},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: r.StatusCode}},
	}
	if r.StatusMessage != "" {
		resp.Status.StatusMessage = &saml.StatusMessage{Value: r.StatusMessage}
	}
	return resp
}

// responseElement builds and signs the Response r describes the way crewjam's
// IdentityProvider does (MakeAssertionEl, MakeResponse): the element is made
// with Element, signed, and then made again from the struct with its
// Signature set, so that the Signature follows the Issuer as the schema
// requires. With r.Encrypt, the signed assertion is encrypted before the
// Response is signed, as MakeAssertionEl does.
func (idp *IDP) responseElement(r Response) (*etree.Element, error) {
	r = idp.withDefaults(r, idp.now())

	var assertionEl *etree.Element
	if r.StatusCode == statusSuccess {
		a := r.assertion()
		assertionEl = entraShape(a.Element())
		if r.Signing.signsAssertion() {
			sig, err := r.sign(assertionEl)
			if err != nil {
				return nil, fmt.Errorf("sign assertion: %w", err)
			}
			a.Signature = sig
			assertionEl = entraShape(a.Element())
		}
		if r.Encrypt != nil {
			encrypted, err := r.Encrypt.encrypt(assertionEl)
			if err != nil {
				return nil, fmt.Errorf("encrypt assertion: %w", err)
			}
			assertionEl = encrypted
		}
	}

	resp := r.response()
	responseEl := entraShape(resp.Element())
	if assertionEl != nil {
		responseEl.AddChild(assertionEl)
	}
	if r.Signing.signsResponse() {
		sig, err := r.sign(responseEl)
		if err != nil {
			return nil, fmt.Errorf("sign response: %w", err)
		}
		resp.Signature = sig
		responseEl = entraShape(resp.Element())
		if assertionEl != nil {
			responseEl.AddChild(assertionEl)
		}
	}
	return responseEl, nil
}

// sign returns an enveloped signature of el, as Entra makes it: exclusive
// canonicalization, r's signature method, and the signing certificate in
// KeyInfo (unless r.OmitKeyInfo), with the signature namespace as the
// default namespace rather than a "ds:" prefix.
func (r *Response) sign(el *etree.Element) (*etree.Element, error) {
	if r.SigningKey == nil || r.SigningCert == nil {
		return nil, fmt.Errorf("no signing key or certificate")
	}
	ctx, err := dsig.NewSigningContext(r.SigningKey, [][]byte{r.SigningCert.Raw})
	if err != nil {
		return nil, err
	}
	ctx.Prefix = ""
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(r.SignatureMethod); err != nil {
		return nil, err
	}
	// Sign a copy: canonicalizing el reorders the attributes of el's
	// descendants, which would spoil their Entra order.
	signed, err := ctx.SignEnveloped(el.Copy())
	if err != nil {
		return nil, err
	}
	children := signed.ChildElements()
	sig := children[len(children)-1]
	if r.OmitKeyInfo {
		// KeyInfo is outside SignedInfo, so removing it leaves the
		// signature valid.
		for _, child := range sig.ChildElements() {
			if child.Tag == "KeyInfo" {
				sig.RemoveChild(child)
			}
		}
	}
	return sig, nil
}

// entraShape rewrites el, a Response or Assertion made by crewjam's Element
// methods, to Entra's namespace prefixes, and returns it. crewjam declares
// saml: and samlp: (and xs:) on the Response and prefixes every element;
// Entra keeps samlp: on the Response and its Status, and makes the assertion
// namespace the default namespace of the Response's Issuer and of the
// Assertion. Only prefixes and declarations change, not names, so the result
// means the same.
func entraShape(el *etree.Element) *etree.Element {
	switch el.Space {
	case "samlp":
		el.RemoveAttr("xmlns:saml")
		el.RemoveAttr("xmlns:xs")
		// Entra's attribute order; etree writes them as listed.
		var attrs []etree.Attr
		for _, key := range []string{"ID", "Version", "IssueInstant", "Destination", "InResponseTo", "Consent", "xmlns:samlp"} {
			if a := el.SelectAttr(key); a != nil {
				attrs = append(attrs, *a)
			}
		}
		el.Attr = attrs
		for _, child := range el.ChildElements() {
			if child.Space == "saml" {
				assertionNSAsDefault(child)
			}
		}
	case "saml":
		assertionNSAsDefault(el)
		if el.Tag == "Assertion" {
			statementsInEntraOrder(el)
		}
	}
	return el
}

// statementsInEntraOrder moves the AttributeStatements of assertion before
// its first AuthnStatement, where Entra puts them; crewjam writes them after.
// The schema allows statements in any order.
func statementsInEntraOrder(assertion *etree.Element) {
	var authn *etree.Element
	for _, child := range assertion.ChildElements() {
		switch child.Tag {
		case "AuthnStatement":
			if authn == nil {
				authn = child
			}
		case "AttributeStatement":
			if authn != nil {
				assertion.RemoveChild(child)
				assertion.InsertChildAt(authn.Index(), child)
			}
		}
	}
}

// assertionNSAsDefault moves el and its descendants from the saml: prefix
// to the default namespace, declared on el.
func assertionNSAsDefault(el *etree.Element) {
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		if e.Space != "saml" {
			// A Signature, which declares its own default namespace.
			return
		}
		e.Space = ""
		e.RemoveAttr("xmlns:saml")
		if e.Tag == "AttributeValue" && e.SelectAttr("xsi:type") == nil && e.SelectAttr("xsi:nil") == nil {
			// crewjam declares these on every value; Entra sends none.
			e.RemoveAttr("xmlns:xs")
			e.RemoveAttr("xmlns:xsi")
		}
		for _, child := range e.ChildElements() {
			walk(child)
		}
	}
	walk(el)
	el.CreateAttr("xmlns", assertionNS)
}
