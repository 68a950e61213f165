// Package testfiles writes the files that tests hand the gateway (configs,
// metadata, the SP key pair) as an operator would: private, mode 0600, in
// folders that exist. One helper, so that the tests of every package write
// them alike.
package testfiles

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
)

// Write writes data to name, making its folder if need be, or fails the
// test.
func Write(tb testing.TB, name string, data []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// WriteAll writes each of files, by name, into dir.
func WriteAll(tb testing.TB, dir string, files map[string][]byte) {
	tb.Helper()
	for name, data := range files {
		Write(tb, filepath.Join(dir, name), data)
	}
}

// SPKeyPair writes a new self-signed SP certificate and its key into dir,
// as certName and keyName, and returns their paths.
func SPKeyPair(tb testing.TB, dir, certName, keyName string) (cert, key string) {
	tb.Helper()
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway SP"})
	if err != nil {
		tb.Fatal(err)
	}
	cert, key = filepath.Join(dir, certName), filepath.Join(dir, keyName)
	Write(tb, cert, sp.CertPEM())
	Write(tb, key, sp.KeyPEM())
	return cert, key
}
