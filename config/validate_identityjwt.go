package config

// The checks of identity_jwt: the keys that sign the identity the
// upstream can verify, its audience and its lifetime.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Bounds of identity_jwt.lifetime.
const (
	// DefaultIdentityJWTLifetime is how long a signed identity is valid:
	// short, because an upstream cannot revoke it, yet long enough that
	// the gateway signs once per session per few minutes, not per request.
	DefaultIdentityJWTLifetime = 5 * time.Minute
	// MinIdentityJWTLifetime keeps the gateway from signing on nearly
	// every request (it signs again when half the lifetime is left) and
	// leaves room for the upstream's clock skew.
	MinIdentityJWTLifetime = time.Minute
	// MaxIdentityJWTLifetime bounds how long a copied token stays good
	// after the user signed out or lost a group.
	MaxIdentityJWTLifetime = time.Hour
)

// IdentityJWT configures the signed identity, X-Remote-Jwt-Assertion. Its
// issuer is public_url.
type IdentityJWT struct {
	// Key signs: an *ecdsa.PrivateKey on P-256 (ES256) or an
	// *rsa.PrivateKey of at least 2048 bits (RS256).
	Key crypto.Signer
	// PreviousKey, if not nil, is a key being rotated out: it no longer
	// signs, but its public key stays in the JWKS, so that upstreams keep
	// accepting the tokens it signed until they expire.
	PreviousKey crypto.Signer
	// Audience is the aud claim, which the upstream checks.
	Audience string
	// Lifetime is how long a token is valid after it is signed.
	Lifetime time.Duration
}

func (v *validator) identityJWT(path string, f *identityJWTFile) *IdentityJWT {
	j := &IdentityJWT{
		Audience: strings.TrimSpace(f.Audience),
		Lifetime: v.duration(path+".lifetime", f.Lifetime, DefaultIdentityJWTLifetime),
	}
	if j.Audience == "" {
		v.add(path+".audience", "is required: the name the upstream checks in the token's aud claim, for example its URL")
	}
	if j.Lifetime < MinIdentityJWTLifetime || j.Lifetime > MaxIdentityJWTLifetime {
		v.add(path+".lifetime", "must be between %s and %s (got %s)", MinIdentityJWTLifetime, MaxIdentityJWTLifetime, j.Lifetime)
	}
	j.Key = v.signingKey(path+".key_file", f.KeyFile)
	if f.PreviousKeyFile != "" {
		j.PreviousKey = v.signingKey(path+".previous_key_file", f.PreviousKeyFile)
		if j.Key != nil && j.PreviousKey != nil && sameKey(j.Key, j.PreviousKey) {
			v.add(path+".previous_key_file", "is the same key as key_file")
		}
	}
	return j
}

// signingKey reads a PEM private key that signs identity tokens: EC P-256
// or RSA of at least minRSABits.
func (v *validator) signingKey(path, name string) crypto.Signer {
	data := v.readFile(path, name)
	if data == nil {
		return nil
	}
	key, err := parseSigningKeyPEM(data)
	if err != nil {
		v.add(path, "%v", err)
		return nil
	}
	if k, ok := key.(*rsa.PrivateKey); ok && k.N.BitLen() < minRSABits {
		v.add(path, "RSA key has %d bits, want at least %d", k.N.BitLen(), minRSABits)
		return nil
	}
	return key
}

// signingKeyTypes says which keys identity_jwt takes.
const signingKeyTypes = "want an EC P-256 key (ES256; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256) or an RSA key of at least 2048 bits (RS256)"

// parseSigningKeyPEM accepts SEC 1 ("EC PRIVATE KEY"), PKCS #1 ("RSA
// PRIVATE KEY") and PKCS #8 ("PRIVATE KEY") keys, of the two kinds the
// JWKS of every verifier understands.
func parseSigningKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want EC PRIVATE KEY, RSA PRIVATE KEY or PRIVATE KEY", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse key: %w", err)
	}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("EC key is on %s, %s", k.Curve.Params().Name, signingKeyTypes)
		}
		return k, nil
	case *rsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("key is %T, %s", key, signingKeyTypes)
}

// sameKey reports whether two signing keys have the same public key.
func sameKey(a, b crypto.Signer) bool {
	pa, ok := a.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pa.Equal(b.Public())
}
