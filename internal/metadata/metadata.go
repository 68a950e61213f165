// Package metadata loads, checks and keeps fresh each tenant's IdP
// metadata: Entra's Federation Metadata XML, from a file or from the
// enterprise app's App Federation Metadata Url.
//
// Metadata decides whose signatures a tenant trusts, so it is checked
// strictly when loaded (an IdP role, an HTTP-Redirect sign-on endpoint, RSA
// signing keys of at least 2048 bits, at least one certificate valid now,
// and, when configured, a valid signature by a pinned certificate), and a
// refresh that fails or yields unusable metadata keeps the last good copy.
package metadata

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
	crewsamlsp "github.com/crewjam/saml/samlsp"
)

// MaxSize bounds an IdP metadata document. Entra's app federation
// metadata is about 15 KB and its tenant-wide document about 25 KB; anything
// a hundred times larger is not an IdP's metadata.
const MaxSize = 2 << 20

// FetchTimeout bounds one fetch of idp_metadata_url.
const FetchTimeout = 15 * time.Second

// minIDPKeyBits is the smallest IdP signing key trusted. Entra issues 2048
// bit keys; a shorter key in metadata means the file is not Entra's or is
// ancient.
const minIDPKeyBits = 2048

// ErrUnusable is matched by every error about unusable IdP metadata.
var ErrUnusable = errors.New("unusable IdP metadata")

// IDP is a parsed and checked IdP metadata document. It is immutable.
type IDP struct {
	// Entity is the metadata as crewjam's ServiceProvider needs it: the
	// entity ID, validity and IdP role, without the WS-Federation roles and
	// the document signature, which would only take memory.
	Entity *crewsaml.EntityDescriptor
	// SigningCerts are every signing certificate in the metadata, in order.
	// All are trusted: Entra publishes the next certificate before it
	// starts signing with it.
	SigningCerts []*x509.Certificate
	// SSOURL is the HTTP-Redirect SingleSignOnService location.
	SSOURL string
	// SLOURL is the HTTP-Redirect SingleLogoutService location, or "".
	SLOURL string
	// ValidUntil (the earliest of the document's and its IdP role's) and
	// CacheDuration are the document's caching policy; zero when absent
	// (Entra sets neither).
	ValidUntil    time.Time
	CacheDuration time.Duration
}

// ReadFile reads and checks IdP metadata from a file. signers, when not
// empty, are the certificates one of which must have signed the document.
func ReadFile(name string, now time.Time, signers []*x509.Certificate) (*IDP, error) {
	data, err := ReadBytes(name)
	if err != nil {
		return nil, err
	}
	return Parse(data, now, signers)
}

// ReadBytes reads a metadata file, at most MaxSize+1 bytes of it (Parse
// refuses more). Its errors say what is wrong with the file in an
// operator's words, not the system call's.
func ReadBytes(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, readError(name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read IdP metadata: %s is not a regular file (a folder?): give the downloaded Federation Metadata XML file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, readError(name, err)
	}
	return data, nil
}

func readError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &fileError{msg: fmt.Sprintf("read IdP metadata: file %s does not exist", name), err: err}
	case errors.Is(err, fs.ErrPermission):
		return &fileError{msg: fmt.Sprintf("read IdP metadata: file %s is not readable by the gateway's user", name), err: err}
	}
	return fmt.Errorf("read IdP metadata: %w", err)
}

// fileError says what is wrong with a file in words, and keeps the cause
// for errors.Is.
type fileError struct {
	msg string
	err error
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// Parse parses IdP metadata and checks that a service provider can use it
// at now: Inspect's checks, and UsableAt(now). When signers is not empty,
// the document must carry an enveloped signature by one of them, and only
// what the signature covers is used.
func Parse(data []byte, now time.Time, signers []*x509.Certificate) (*IDP, error) {
	md, err := Inspect(data, signers)
	if err != nil {
		return nil, err
	}
	if err := md.UsableAt(now); err != nil {
		return nil, err
	}
	return md, nil
}

// Inspect parses IdP metadata and checks everything that does not change
// with time: one IdP entity, not Entra's tenant-independent template, with
// an http(s) HTTP-Redirect single sign-on endpoint and RSA signing
// certificates of at least 2048 bits, and, when signers is not empty, an
// enveloped signature by one of them. It does not check validUntil or the
// certificates' validity periods, so that a report can show the
// certificates of a document that has expired; use Parse (or UsableAt) for
// metadata a tenant will trust.
//
// A document that is plainly something else (a certificate, an HTML page,
// a SAML message, a service provider's metadata, ...) is refused with an
// error that says what it is and what to download instead.
func Inspect(data []byte, signers []*x509.Certificate) (*IDP, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrUnusable, MaxSize)
	}
	// Entra's file starts with a UTF-8 byte order mark.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := wrongDocument(data); err != nil {
		return nil, err
	}
	var entity *crewsaml.EntityDescriptor
	var err error
	if len(signers) > 0 {
		entity, err = crewsamlsp.ParseSignedMetadata(data, signers)
		if err != nil {
			return nil, fmt.Errorf("%w: signature does not verify against idp_metadata_signing_cert: %v", ErrUnusable, err)
		}
	} else {
		entity, err = crewsamlsp.ParseMetadata(data)
		if err != nil {
			return nil, fmt.Errorf("%w: not SAML metadata: %v", ErrUnusable, err)
		}
	}
	if strings.Contains(entity.EntityID, "{tenantid}") {
		return nil, fmt.Errorf("%w: entityID %q is Entra's tenant-independent template; download the enterprise application's own Federation Metadata XML instead", ErrUnusable, entity.EntityID)
	}
	if entity.EntityID == "" {
		return nil, fmt.Errorf("%w: no entityID", ErrUnusable)
	}
	if len(entity.IDPSSODescriptors) == 0 {
		return nil, fmt.Errorf("%w: no IDPSSODescriptor (is this the IdP's metadata?)", ErrUnusable)
	}
	md := &IDP{Entity: trim(entity), ValidUntil: entity.ValidUntil, CacheDuration: entity.CacheDuration}
	for _, d := range entity.IDPSSODescriptors {
		// The IdP role's own validUntil counts too: crewjam refuses
		// messages once it passes, so it is when the document stops
		// working.
		if d.ValidUntil != nil && !d.ValidUntil.IsZero() && (md.ValidUntil.IsZero() || d.ValidUntil.Before(md.ValidUntil)) {
			md.ValidUntil = *d.ValidUntil
		}
	}
	for _, d := range entity.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding == crewsaml.HTTPRedirectBinding && md.SSOURL == "" {
				md.SSOURL = s.Location
			}
		}
		for _, s := range d.SingleLogoutServices {
			if s.Binding == crewsaml.HTTPRedirectBinding && md.SLOURL == "" {
				md.SLOURL = s.Location
			}
		}
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				cert, err := ParseBase64Cert(c.Data)
				if err != nil {
					return nil, fmt.Errorf("%w: signing certificate: %v", ErrUnusable, err)
				}
				md.SigningCerts = append(md.SigningCerts, cert)
			}
		}
	}
	if md.SSOURL == "" {
		return nil, fmt.Errorf("%w: no HTTP-Redirect SingleSignOnService", ErrUnusable)
	}
	if u, err := url.Parse(md.SSOURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: SingleSignOnService location %q is not an http(s) URL", ErrUnusable, md.SSOURL)
	}
	if len(md.SigningCerts) == 0 {
		return nil, fmt.Errorf("%w: no signing certificate", ErrUnusable)
	}
	for _, c := range md.SigningCerts {
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: signing certificate %q has a %T key, want RSA", ErrUnusable, c.Subject.CommonName, c.PublicKey)
		}
		if pub.N.BitLen() < minIDPKeyBits {
			return nil, fmt.Errorf("%w: signing certificate %q has a %d-bit key, want at least %d", ErrUnusable, c.Subject.CommonName, pub.N.BitLen(), minIDPKeyBits)
		}
	}
	return md, nil
}

// trim keeps what a service provider uses of an IdP's entity: a tenant's
// parsed metadata stays in memory for the life of the process, and with
// thousands of tenants Entra's WS-Federation roles would dominate it.
func trim(e *crewsaml.EntityDescriptor) *crewsaml.EntityDescriptor {
	out := &crewsaml.EntityDescriptor{
		EntityID:      e.EntityID,
		ValidUntil:    e.ValidUntil,
		CacheDuration: e.CacheDuration,
	}
	for _, d := range e.IDPSSODescriptors {
		out.IDPSSODescriptors = append(out.IDPSSODescriptors, crewsaml.IDPSSODescriptor{
			SSODescriptor: crewsaml.SSODescriptor{
				RoleDescriptor: crewsaml.RoleDescriptor{
					ProtocolSupportEnumeration: d.ProtocolSupportEnumeration,
					ValidUntil:                 d.ValidUntil,
					KeyDescriptors:             d.KeyDescriptors,
				},
				SingleLogoutServices: d.SingleLogoutServices,
				NameIDFormats:        d.NameIDFormats,
			},
			WantAuthnRequestsSigned: d.WantAuthnRequestsSigned,
			SingleSignOnServices:    d.SingleSignOnServices,
		})
	}
	return out
}

// ParseBase64Cert parses a certificate as metadata and signatures carry
// it: base64 DER, whitespace allowed.
func ParseBase64Cert(s string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("not base64: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("not a certificate: %w", err)
	}
	return cert, nil
}

// entraEntityID is the entity ID Entra ID gives every directory's IdP.
var entraEntityID = regexp.MustCompile(`^https://sts\.windows\.net/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})/$`)

// EntraTenantID returns the directory ID in an Entra ID entity ID
// (https://sts.windows.net/<directory ID>/), lower case, or "" when the
// metadata is not Entra's.
func (m *IDP) EntraTenantID() string {
	if m.Entity == nil {
		return ""
	}
	if sub := entraEntityID.FindStringSubmatch(m.Entity.EntityID); sub != nil {
		return strings.ToLower(sub[1])
	}
	return ""
}
