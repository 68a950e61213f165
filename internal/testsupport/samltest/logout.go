package samltest

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"net/url"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// QuerySigning says how the query string of a message sent with the
// HTTP-Redirect binding is signed. Its zero value signs it as the binding
// requires (saml-bindings-2.0-os §3.4.4.1): SigAlg RSA-SHA256, and a
// Signature that is the IdP Key's RSA PKCS #1 v1.5 signature over the
// SHA-256 digest of the query exactly as sent, from the message parameter
// through SigAlg.
type QuerySigning struct {
	// Unsigned leaves out SigAlg and Signature, as a forged message would.
	Unsigned bool
	// SigningKey signs instead of the IdP's Key, for example one nobody
	// trusts.
	SigningKey *rsa.PrivateKey
	// SignatureMethod is the SigAlg: dsig.RSASHA256SignatureMethod if
	// empty, or dsig.RSASHA1SignatureMethod or dsig.RSASHA512SignatureMethod.
	SignatureMethod string
}

// querySignatureHashes are the SigAlg values QuerySigning can sign with.
var querySignatureHashes = map[string]struct {
	hash crypto.Hash
	new  func() hash.Hash
}{
	dsig.RSASHA1SignatureMethod:   {crypto.SHA1, sha1.New},
	dsig.RSASHA256SignatureMethod: {crypto.SHA256, sha256.New},
	dsig.RSASHA512SignatureMethod: {crypto.SHA512, sha512.New},
}

// LogoutResponse describes a LogoutResponse for IdP.LogoutResponseURL: the
// IdP's answer to a LogoutRequest an SP sent it. Each field says what its
// zero value means. Times are those of the IdP's clock.
type LogoutResponse struct {
	// Destination is the SP's SingleLogoutService URL: the message's
	// Destination, and where the returned URL points. It must be set.
	Destination string
	// InResponseTo is the ID of the LogoutRequest answered. If empty, it
	// is left out.
	InResponseTo string
	// RelayState is the RelayState the SP sent with its request, which
	// the IdP returns as it is. If empty, there is none.
	RelayState string

	// Issuer is the Issuer. If empty, it is the IdP's EntityID. Entra
	// issues its LogoutResponses as IdP.LoginIssuer instead.
	Issuer string
	// StatusCode is the top-level status code. If empty, it is
	// urn:oasis:names:tc:SAML:2.0:status:Success.
	StatusCode string
	// StatusMessage is the Status's StatusMessage. If empty, it is left
	// out.
	StatusMessage string

	// ID is the message's ID. If empty, it is "_" followed by a random
	// GUID, like Entra's.
	ID string
	// IssueInstant is the message's IssueInstant. If zero, it is the
	// IdP's current time.
	IssueInstant time.Time

	// QuerySigning says how the URL is signed; the zero value signs it
	// with the IdP's Key and RSA-SHA256.
	QuerySigning
}

// LogoutRequest describes a LogoutRequest for IdP.LogoutRequestURL: the IdP
// asks an SP to end a user's session, because the user signed out at the
// IdP or at another SP (IdP-initiated single logout). Each field says what
// its zero value means. Times are those of the IdP's clock.
type LogoutRequest struct {
	// Destination is the SP's SingleLogoutService URL: the message's
	// Destination, and where the returned URL points. It must be set.
	Destination string
	// NameID identifies the user, as the assertion did. If empty, it is
	// "alice@contoso.example".
	NameID string
	// NameIDFormat is the NameID's Format. If empty, it is
	// urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress.
	NameIDFormat string
	// SessionIndex is the SessionIndex of the session to end, as in the
	// assertion's AuthnStatement. If empty, there is none: every session
	// of the user ends.
	SessionIndex string
	// RelayState is sent along for the SP to return. If empty, there is
	// none.
	RelayState string

	// Issuer is the Issuer. If empty, it is the IdP's EntityID.
	Issuer string
	// ID is the message's ID, which the SP's LogoutResponse answers. If
	// empty, it is "_" followed by a random GUID.
	ID string
	// IssueInstant is the message's IssueInstant. If zero, it is the
	// IdP's current time.
	IssueInstant time.Time
	// NotOnOrAfter is when the request expires. If zero, it is left out.
	NotOnOrAfter time.Time

	// QuerySigning says how the URL is signed; the zero value signs it
	// with the IdP's Key and RSA-SHA256.
	QuerySigning
}

// LoginIssuer returns https://login.microsoftonline.com/<TenantID>/, the
// Issuer of Entra's LogoutResponses: Entra issues assertions as
// https://sts.windows.net/<TenantID>/ (its metadata's entityID) but logout
// messages under this name, signed with the same certificates.
func (idp *IDP) LoginIssuer() string {
	return "https://login.microsoftonline.com/" + idp.TenantID + "/"
}

// LogoutResponseURL returns the URL that carries r to the SP with the
// HTTP-Redirect binding: r.Destination with the query SAMLResponse (the
// deflated, base64-encoded message), RelayState if any, and, unless
// r.Unsigned, SigAlg and Signature. The message has Entra's shape: samlp:
// on the LogoutResponse and its Status, and the assertion namespace as the
// default namespace of its Issuer. It fails tb if the URL cannot be made.
func (idp *IDP) LogoutResponseURL(tb testing.TB, r LogoutResponse) *url.URL {
	tb.Helper()
	now := idp.now()
	if r.Issuer == "" {
		r.Issuer = idp.entityID()
	}
	if r.StatusCode == "" {
		r.StatusCode = statusSuccess
	}
	if r.ID == "" {
		r.ID = "_" + newGUID()
	}
	if r.IssueInstant.IsZero() {
		r.IssueInstant = now
	}
	resp := &saml.LogoutResponse{
		ID:           r.ID,
		InResponseTo: r.InResponseTo,
		Version:      "2.0",
		IssueInstant: r.IssueInstant.UTC(),
		Destination:  r.Destination,
		Issuer:       &saml.Issuer{Value: r.Issuer},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: r.StatusCode}},
	}
	if r.StatusMessage != "" {
		resp.Status.StatusMessage = &saml.StatusMessage{Value: r.StatusMessage}
	}
	u, err := idp.redirectURL(r.Destination, "SAMLResponse", entraShape(resp.Element()), r.RelayState, r.QuerySigning)
	if err != nil {
		tb.Fatalf("samltest: LogoutResponse URL: %v", err)
	}
	return u
}

// LogoutRequestURL returns the URL that carries r to the SP with the
// HTTP-Redirect binding: r.Destination with the query SAMLRequest (the
// deflated, base64-encoded message, as crewjam's LogoutRequest.Element makes
// it), RelayState if any, and, unless r.Unsigned, SigAlg and Signature. It
// fails tb if the URL cannot be made.
func (idp *IDP) LogoutRequestURL(tb testing.TB, r LogoutRequest) *url.URL {
	tb.Helper()
	now := idp.now()
	if r.NameID == "" {
		r.NameID = defaultNameID
	}
	if r.NameIDFormat == "" {
		r.NameIDFormat = emailNameIDFormat
	}
	if r.Issuer == "" {
		r.Issuer = idp.entityID()
	}
	if r.ID == "" {
		r.ID = "_" + newGUID()
	}
	if r.IssueInstant.IsZero() {
		r.IssueInstant = now
	}
	req := &saml.LogoutRequest{
		ID:           r.ID,
		Version:      "2.0",
		IssueInstant: r.IssueInstant.UTC(),
		Destination:  r.Destination,
		Issuer:       &saml.Issuer{Value: r.Issuer},
		NameID:       &saml.NameID{Format: r.NameIDFormat, Value: r.NameID},
	}
	if !r.NotOnOrAfter.IsZero() {
		t := r.NotOnOrAfter.UTC()
		req.NotOnOrAfter = &t
	}
	if r.SessionIndex != "" {
		req.SessionIndex = &saml.SessionIndex{Value: r.SessionIndex}
	}
	u, err := idp.redirectURL(r.Destination, "SAMLRequest", req.Element(), r.RelayState, r.QuerySigning)
	if err != nil {
		tb.Fatalf("samltest: LogoutRequest URL: %v", err)
	}
	return u
}

// redirectURL returns destination with the HTTP-Redirect binding query for
// message in param, signed as s says. The parameters are written in the
// order the binding signs them, and the signature covers them exactly as
// they appear in the URL.
func (idp *IDP) redirectURL(destination, param string, message *etree.Element, relayState string, s QuerySigning) (*url.URL, error) {
	u, err := url.Parse(destination)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(message)
	var deflated bytes.Buffer
	w, err := flate.NewWriter(&deflated, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := doc.WriteTo(w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}

	query := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(deflated.Bytes()))
	if relayState != "" {
		query += "&RelayState=" + url.QueryEscape(relayState)
	}
	if !s.Unsigned {
		key := s.SigningKey
		if key == nil {
			key = idp.Key
		}
		if key == nil {
			return nil, fmt.Errorf("no signing key")
		}
		method := s.SignatureMethod
		if method == "" {
			method = dsig.RSASHA256SignatureMethod
		}
		h, ok := querySignatureHashes[method]
		if !ok {
			return nil, fmt.Errorf("unsupported signature method %q", method)
		}
		query += "&SigAlg=" + url.QueryEscape(method)
		digest := h.new()
		digest.Write([]byte(query))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, h.hash, digest.Sum(nil))
		if err != nil {
			return nil, fmt.Errorf("sign query: %w", err)
		}
		query += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	if u.RawQuery != "" {
		// The signature covers only the binding's parameters.
		query = u.RawQuery + "&" + query
	}
	u.RawQuery = query
	return u, nil
}
