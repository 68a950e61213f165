package samltest

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// KeyTransport says how the random key that encrypts an assertion is itself
// encrypted to the service provider's certificate.
type KeyTransport int

const (
	// RSAOAEPMGF1P is http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p with
	// a SHA-1 digest (and, as the name says, MGF1 with SHA-1): what Entra
	// and crewjam's IdentityProvider send.
	RSAOAEPMGF1P KeyTransport = iota
	// RSAOAEPSHA256 is XML Encryption 1.1's
	// http://www.w3.org/2009/xmlenc11#rsa-oaep with SHA-256 as both the
	// digest and the MGF1 hash.
	RSAOAEPSHA256
)

// String returns the name of the constant, for test names.
func (k KeyTransport) String() string {
	switch k {
	case RSAOAEPMGF1P:
		return "RSAOAEPMGF1P"
	case RSAOAEPSHA256:
		return "RSAOAEPSHA256"
	}
	return fmt.Sprintf("KeyTransport(%d)", int(k))
}

// BlockCipher says how the assertion itself is encrypted.
type BlockCipher int

const (
	// AES256GCM is http://www.w3.org/2009/xmlenc11#aes256-gcm, which is
	// authenticated: a modified ciphertext does not decrypt.
	AES256GCM BlockCipher = iota
	// AES128CBC is http://www.w3.org/2001/04/xmlenc#aes128-cbc, which is
	// not authenticated.
	AES128CBC
	// AES256CBC is http://www.w3.org/2001/04/xmlenc#aes256-cbc, which is
	// not authenticated.
	AES256CBC
)

// String returns the name of the constant, for test names.
func (b BlockCipher) String() string {
	switch b {
	case AES256GCM:
		return "AES256GCM"
	case AES128CBC:
		return "AES128CBC"
	case AES256CBC:
		return "AES256CBC"
	}
	return fmt.Sprintf("BlockCipher(%d)", int(b))
}

// Algorithm returns the block cipher's XML Encryption algorithm URI, as it
// appears in the EncryptedData's EncryptionMethod.
func (b BlockCipher) Algorithm() string {
	c, err := b.cipher()
	if err != nil {
		return ""
	}
	return c.Algorithm()
}

func (b BlockCipher) cipher() (xmlenc.BlockCipher, error) {
	switch b {
	case AES256GCM:
		return xmlenc.AES256GCM, nil
	case AES128CBC:
		return xmlenc.AES128CBC, nil
	case AES256CBC:
		return xmlenc.AES256CBC, nil
	}
	return nil, fmt.Errorf("unknown block cipher %v", b)
}

// Encryption says how Response.Encrypt encrypts a response's assertion. The
// assertion, once made and (with SignAssertion or SignBoth) signed, is
// replaced by an EncryptedAssertion holding it: a signature on the assertion
// is then inside the encryption, and a signature on the Response (SignResponse
// or SignBoth) covers the EncryptedAssertion. The encryption is done by
// crewjam's xmlenc package, as crewjam's IdentityProvider does it
// (MakeAssertionEl): an EncryptedData of Type Element, whose KeyInfo holds the
// EncryptedKey, which names Cert.
type Encryption struct {
	// Cert is the service provider's encryption certificate, which must
	// have an RSA key. It must not be nil.
	Cert *x509.Certificate
	// KeyTransport encrypts the content key to Cert. The zero value is
	// RSAOAEPMGF1P.
	KeyTransport KeyTransport
	// BlockCipher encrypts the assertion. The zero value is AES256GCM.
	BlockCipher BlockCipher
}

// encrypt returns an EncryptedAssertion holding assertion, which is not
// changed.
func (e *Encryption) encrypt(assertion *etree.Element) (*etree.Element, error) {
	if e.Cert == nil {
		return nil, errors.New("no certificate to encrypt to")
	}
	doc := etree.NewDocument()
	doc.SetRoot(assertion.Copy())
	plaintext, err := doc.WriteToBytes()
	if err != nil {
		return nil, err
	}

	var encrypter xmlenc.RSA
	switch e.KeyTransport {
	case RSAOAEPMGF1P:
		encrypter = xmlenc.OAEP()
		encrypter.DigestMethod = xmlenc.SHA1
	case RSAOAEPSHA256:
		encrypter = xmlenc.OAEP_SHA256()
	default:
		return nil, fmt.Errorf("unknown key transport %v", e.KeyTransport)
	}
	if encrypter.BlockCipher, err = e.BlockCipher.cipher(); err != nil {
		return nil, err
	}
	data, err := encrypter.Encrypt(e.Cert, plaintext, nil)
	if err != nil {
		return nil, err
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")

	// The Response no longer declares the assertion namespace (see
	// entraShape), so the EncryptedAssertion declares it as its default.
	encrypted := etree.NewElement("EncryptedAssertion")
	encrypted.CreateAttr("xmlns", assertionNS)
	encrypted.AddChild(data)
	return encrypted, nil
}
