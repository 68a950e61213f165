package samltest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// NewKeyPair returns a fresh RSA key of the given size and a self-signed
// certificate for it with the given common name and validity period, shaped
// like the SAML signing certificates Entra ID issues: SHA-256 with RSA, a
// random 128-bit serial number and no extensions. A period that does not
// contain the current time makes an expired or not-yet-valid certificate.
// It fails tb if the key cannot be made, for example when bits is below the
// 1024 that crypto/rsa accepts.
func NewKeyPair(tb testing.TB, commonName string, bits int, notBefore, notAfter time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatalf("samltest: generate %d-bit RSA key: %v", bits, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		tb.Fatalf("samltest: certificate serial number: %v", err)
	}
	name := pkix.Name{CommonName: commonName}
	template := &x509.Certificate{
		SerialNumber:       serial,
		Subject:            name,
		Issuer:             name,
		NotBefore:          notBefore,
		NotAfter:           notAfter,
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("samltest: create certificate %q: %v", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("samltest: parse certificate %q: %v", commonName, err)
	}
	return key, cert
}

// WriteKeyPairPEM writes cert to dir/<name>-cert.pem as a PEM "CERTIFICATE"
// block and key to dir/<name>-key.pem as a PKCS #8 "PRIVATE KEY" block
// (mode 0600), and returns the two paths. tls.LoadX509KeyPair reads them.
// Pass t.TempDir() as dir so that the files are removed after the test.
func WriteKeyPairPEM(tb testing.TB, dir, name string, key *rsa.PrivateKey, cert *x509.Certificate) (certFile, keyFile string) {
	tb.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("samltest: marshal key %q: %v", name, err)
	}
	certFile = filepath.Join(dir, name+"-cert.pem")
	keyFile = filepath.Join(dir, name+"-key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		tb.Fatalf("samltest: write certificate: %v", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		tb.Fatalf("samltest: write key: %v", err)
	}
	return certFile, keyFile
}
