package samlsp

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"
	crewsamlsp "github.com/crewjam/saml/samlsp"
)

// MaxMetadataSize bounds an IdP metadata document. Entra's app federation
// metadata is about 15 KB and its tenant-wide document about 25 KB; anything
// a hundred times larger is not an IdP's metadata.
const MaxMetadataSize = 2 << 20

// MetadataFetchTimeout bounds one fetch of idp_metadata_url.
const MetadataFetchTimeout = 15 * time.Second

// minIDPKeyBits is the smallest IdP signing key trusted. Entra issues 2048
// bit keys; a shorter key in metadata means the file is not Entra's or is
// ancient.
const minIDPKeyBits = 2048

// ErrMetadata is matched by every error about unusable IdP metadata.
var ErrMetadata = errors.New("unusable IdP metadata")

// IDPMetadata is a parsed and checked IdP metadata document.
type IDPMetadata struct {
	Entity *crewsaml.EntityDescriptor
	// SigningCerts are every signing certificate in the metadata, in order.
	// All are trusted: Entra publishes the next certificate before it
	// starts signing with it.
	SigningCerts []*x509.Certificate
	// SSOURL is the HTTP-Redirect SingleSignOnService location.
	SSOURL string
}

// ReadMetadataFile reads and checks IdP metadata from a file.
func ReadMetadataFile(name string, now time.Time) (*IDPMetadata, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read IdP metadata: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("read IdP metadata: %w", err)
	}
	return ParseMetadata(data, now)
}

// FetchMetadata downloads and checks IdP metadata from u ("App Federation
// Metadata Url"), with a timeout and a size limit.
func FetchMetadata(ctx context.Context, client *http.Client, u *url.URL, now time.Time) (*IDPMetadata, error) {
	ctx, cancel := context.WithTimeout(ctx, MetadataFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch IdP metadata: HTTP status %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	return ParseMetadata(data, now)
}

// ParseMetadata parses IdP metadata and checks that a service provider can
// use it: an IdP entity with an HTTP-Redirect single sign-on endpoint and at
// least one currently valid RSA signing certificate of at least 2048 bits.
func ParseMetadata(data []byte, now time.Time) (*IDPMetadata, error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMetadata, MaxMetadataSize)
	}
	entity, err := crewsamlsp.ParseMetadata(data)
	if err != nil {
		return nil, fmt.Errorf("%w: not SAML metadata: %v", ErrMetadata, err)
	}
	if strings.Contains(entity.EntityID, "{tenantid}") {
		return nil, fmt.Errorf("%w: entityID %q is Entra's tenant-independent template; download the enterprise application's own Federation Metadata XML instead", ErrMetadata, entity.EntityID)
	}
	if entity.EntityID == "" {
		return nil, fmt.Errorf("%w: no entityID", ErrMetadata)
	}
	if len(entity.IDPSSODescriptors) == 0 {
		return nil, fmt.Errorf("%w: no IDPSSODescriptor (is this the IdP's metadata?)", ErrMetadata)
	}
	md := &IDPMetadata{Entity: entity}
	for _, d := range entity.IDPSSODescriptors {
		for _, s := range d.SingleSignOnServices {
			if s.Binding == crewsaml.HTTPRedirectBinding && md.SSOURL == "" {
				md.SSOURL = s.Location
			}
		}
		for _, k := range d.KeyDescriptors {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, c := range k.KeyInfo.X509Data.X509Certificates {
				cert, err := parseBase64Cert(c.Data)
				if err != nil {
					return nil, fmt.Errorf("%w: signing certificate: %v", ErrMetadata, err)
				}
				md.SigningCerts = append(md.SigningCerts, cert)
			}
		}
	}
	if md.SSOURL == "" {
		return nil, fmt.Errorf("%w: no HTTP-Redirect SingleSignOnService", ErrMetadata)
	}
	if u, err := url.Parse(md.SSOURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: SingleSignOnService location %q is not an http(s) URL", ErrMetadata, md.SSOURL)
	}
	if len(md.SigningCerts) == 0 {
		return nil, fmt.Errorf("%w: no signing certificate", ErrMetadata)
	}
	var usable int
	var latest time.Time
	for _, c := range md.SigningCerts {
		pub, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: signing certificate %q has a %T key, want RSA", ErrMetadata, c.Subject.CommonName, c.PublicKey)
		}
		if pub.N.BitLen() < minIDPKeyBits {
			return nil, fmt.Errorf("%w: signing certificate %q has a %d-bit key, want at least %d", ErrMetadata, c.Subject.CommonName, pub.N.BitLen(), minIDPKeyBits)
		}
		if c.NotAfter.After(latest) {
			latest = c.NotAfter
		}
		if !now.Before(c.NotBefore) && !now.After(c.NotAfter) {
			usable++
		}
	}
	if usable == 0 {
		return nil, fmt.Errorf("%w: no signing certificate is valid now (the latest expired %s); download the metadata again after renewing the certificate in Entra", ErrMetadata, latest.UTC().Format(time.DateOnly))
	}
	return md, nil
}

func parseBase64Cert(s string) (*x509.Certificate, error) {
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
