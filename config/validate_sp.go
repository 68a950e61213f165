package config

// The checks of sp, the service provider's key pair, and of the
// certificate and key files that it and the tenants name.

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

func (v *validator) sp(path string, f *spFile) SP {
	var sp SP
	sp.Certificate, sp.Key = v.keyPair(path, "cert_file", f.CertFile, "key_file", f.KeyFile)
	if f.PreviousCertFile != "" || f.PreviousKeyFile != "" {
		sp.PreviousCertificate, sp.PreviousKey = v.keyPair(path, "previous_cert_file", f.PreviousCertFile, "previous_key_file", f.PreviousKeyFile)
		if sp.PreviousKey != nil && sp.Key != nil && sp.PreviousKey.Equal(sp.Key) {
			v.add(path+".previous_key_file", "is the same key as key_file")
		}
	}
	return sp
}

// file resolves a path from the config against the config's folder and
// checks that it is a readable regular file.
func (v *validator) file(path, s string) string {
	if s == "" {
		v.add(path, "is required")
		return ""
	}
	s = v.path(s)
	st, err := os.Stat(s)
	if err != nil {
		v.add(path, "%v", pathErr(err, s))
		return ""
	}
	if !st.Mode().IsRegular() {
		v.add(path, "%s is not a regular file", s)
		return ""
	}
	return s
}

// pathErr renders an os error without Go's "stat" prefix.
func pathErr(err error, name string) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("file %s does not exist", name)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("file %s is not readable", name)
	}
	return err.Error()
}

func (v *validator) readFile(path, s string) []byte {
	name := v.file(path, s)
	if name == "" {
		return nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		v.add(path, "%s", pathErr(err, name))
		return nil
	}
	return data
}

// minRSABits is the smallest RSA key accepted anywhere: Entra itself issues
// 2048-bit signing keys, and anything smaller is breakable.
const minRSABits = 2048

// keyPair loads an RSA key pair of at least minRSABits whose certificate
// matches its key.
func (v *validator) keyPair(path, certKey, certFile, keyKey, keyFile string) (*x509.Certificate, *rsa.PrivateKey) {
	certPEM := v.readFile(path+"."+certKey, certFile)
	keyPEM := v.readFile(path+"."+keyKey, keyFile)
	if certPEM == nil || keyPEM == nil {
		return nil, nil
	}
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		v.add(path+"."+certKey, "%v", err)
		return nil, nil
	}
	key, err := parseRSAKeyPEM(keyPEM)
	if err != nil {
		v.add(path+"."+keyKey, "%v", err)
		return nil, nil
	}
	if key.N.BitLen() < minRSABits {
		v.add(path+"."+keyKey, "RSA key has %d bits, want at least %d", key.N.BitLen(), minRSABits)
		return nil, nil
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		v.add(path, "%s does not match %s", certKey, keyKey)
		return nil, nil
	}
	return cert, key
}

// certificates reads every certificate in a PEM file.
func (v *validator) certificates(path, name string) []*x509.Certificate {
	data := v.readFile(path, name)
	if data == nil {
		return nil
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			v.add(path, "parse certificate: %v", err)
			return nil
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		v.add(path, "no PEM CERTIFICATE block")
	}
	return certs
}

func parseCertificatePEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseRSAKeyPEM accepts PKCS#1 ("RSA PRIVATE KEY") and PKCS#8 ("PRIVATE
// KEY") RSA keys: the key decrypts XML encryption, which needs RSA.
func parseRSAKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want RSA (XML encryption needs RSA)", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("PEM block is %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
}
