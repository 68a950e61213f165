package config_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// Files the identity_jwt tests add to a fixture's folder.
const (
	ecKeyFile      = "jwt/ec.pem"       // P-256, SEC 1
	ecPKCS8File    = "jwt/ec-pkcs8.pem" // another P-256 key, PKCS #8
	p384KeyFile    = "jwt/p384.pem"     // P-384, SEC 1
	ed25519KeyFile = "jwt/ed25519.pem"  // PKCS #8
)

func newIdentityJWTFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t)
	write := func(name, typ string, der []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		testfiles.Write(t, fx.path(name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	ec := func(c elliptic.Curve) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	der, err := x509.MarshalECPrivateKey(ec(elliptic.P256()))
	write(ecKeyFile, "EC PRIVATE KEY", der, err)
	der, err = x509.MarshalPKCS8PrivateKey(ec(elliptic.P256()))
	write(ecPKCS8File, "PRIVATE KEY", der, err)
	der, err = x509.MarshalECPrivateKey(ec(elliptic.P384()))
	write(p384KeyFile, "EC PRIVATE KEY", der, err)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err = x509.MarshalPKCS8PrivateKey(edKey)
	write(ed25519KeyFile, "PRIVATE KEY", der, err)
	return fx
}

// TestIdentityJWTSettings: identity_jwt's keys land in typed fields, with
// the lifetime's default; without the section there is no signed identity.
func TestIdentityJWTSettings(t *testing.T) {
	t.Parallel()
	fx := newIdentityJWTFixture(t)
	c, err := config.Parse(marshal(t, baseDoc()), fx.dir, envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.IdentityJWT != nil {
		t.Errorf("without identity_jwt: got %+v, want nil", c.IdentityJWT)
	}
	for _, tt := range []struct {
		name         string
		section      map[string]any
		ec, previous bool // whether Key is EC; whether there is a PreviousKey
		lifetime     time.Duration
	}{
		{"EC key, default lifetime", map[string]any{"key_file": ecKeyFile, "audience": " https://docs.example.com "}, true, false, config.DefaultIdentityJWTLifetime},
		{"EC PKCS #8 key", map[string]any{"key_file": ecPKCS8File, "audience": "https://docs.example.com"}, true, false, config.DefaultIdentityJWTLifetime},
		{"RSA key, lifetime", map[string]any{"key_file": spKeyFile, "audience": "https://docs.example.com", "lifetime": "10m"}, false, false, 10 * time.Minute},
		{"rotation from RSA to EC", map[string]any{"key_file": ecKeyFile, "previous_key_file": spKeyFile, "audience": "https://docs.example.com"}, true, true, config.DefaultIdentityJWTLifetime},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse(marshal(t, apply(t, baseDoc(), edit{"identity_jwt", tt.section})), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, listProblems(config.Problems(err)))
			}
			j := c.IdentityJWT
			if j == nil {
				t.Fatal("got no IdentityJWT, want one")
			}
			if j.Audience != "https://docs.example.com" {
				t.Errorf("Audience: got %q, want %q", j.Audience, "https://docs.example.com")
			}
			if j.Lifetime != tt.lifetime {
				t.Errorf("Lifetime: got %s, want %s", j.Lifetime, tt.lifetime)
			}
			if _, ok := j.Key.(*ecdsa.PrivateKey); ok != tt.ec {
				t.Errorf("Key: got %T, want EC %v", j.Key, tt.ec)
			}
			if _, ok := j.Key.(*rsa.PrivateKey); ok == tt.ec {
				t.Errorf("Key: got %T, want RSA %v", j.Key, !tt.ec)
			}
			if (j.PreviousKey != nil) != tt.previous {
				t.Errorf("PreviousKey: got %T, want one: %v", j.PreviousKey, tt.previous)
			}
		})
	}
}

// TestIdentityJWTProblems: each mistake in identity_jwt is a global problem
// at its key path, and nothing else is reported.
func TestIdentityJWTProblems(t *testing.T) {
	t.Parallel()
	fx := newIdentityJWTFixture(t)
	section := func(kv ...string) map[string]any {
		m := map[string]any{"key_file": ecKeyFile, "audience": "https://docs.example.com"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	for _, tt := range []struct {
		name    string
		section map[string]any
		want    []problem
	}{
		{"empty section", map[string]any{}, []problem{
			{"identity_jwt.key_file", "is required"},
			{"identity_jwt.audience", "is required"},
		}},
		{"missing key file", section("key_file", "nope.pem"), []problem{{"identity_jwt.key_file", "file " + fx.path("nope.pem") + " does not exist"}}},
		{"key file is a folder", section("key_file", folderName), []problem{{"identity_jwt.key_file", "is not a regular file"}}},
		{"not PEM", section("key_file", garbageFile), []problem{{"identity_jwt.key_file", "no PEM block"}}},
		{"certificate, not key", section("key_file", spCertFile), []problem{{"identity_jwt.key_file", `PEM block is "CERTIFICATE"`}}},
		{"P-384 key", section("key_file", p384KeyFile), []problem{{"identity_jwt.key_file", "EC key is on P-384, want an EC P-256 key"}}},
		{"Ed25519 key", section("key_file", ed25519KeyFile), []problem{{"identity_jwt.key_file", "key is ed25519.PrivateKey, want an EC P-256 key"}}},
		{"small RSA key", section("key_file", smallKeyFile), []problem{{"identity_jwt.key_file", "RSA key has 1024 bits, want at least 2048"}}},
		{"small previous RSA key", section("previous_key_file", smallKeyFile), []problem{{"identity_jwt.previous_key_file", "RSA key has 1024 bits"}}},
		{"missing previous key file", section("previous_key_file", "old.pem"), []problem{{"identity_jwt.previous_key_file", "does not exist"}}},
		{"previous key is the key", section("previous_key_file", ecKeyFile), []problem{{"identity_jwt.previous_key_file", "is the same key as key_file"}}},
		{"no audience", section("audience", ""), []problem{{"identity_jwt.audience", "is required"}}},
		{"blank audience", section("audience", "  "), []problem{{"identity_jwt.audience", "is required"}}},
		{"lifetime too short", section("lifetime", "30s"), []problem{{"identity_jwt.lifetime", "must be between 1m0s and 1h0m0s (got 30s)"}}},
		{"lifetime too long", section("lifetime", "2h"), []problem{{"identity_jwt.lifetime", "must be between 1m0s and 1h0m0s (got 2h0m0s)"}}},
		{"lifetime not a duration", section("lifetime", "5 minutes"), []problem{{"identity_jwt.lifetime", `not a duration like 90s or 8h: "5 minutes"`}}},
		{"lifetime negative", section("lifetime", "-5m"), []problem{{"identity_jwt.lifetime", "must be positive"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse(marshal(t, apply(t, baseDoc(), edit{"identity_jwt", tt.section})), fx.dir, envOf(nil))
			checkProblems(t, err, tt.want)
			for _, p := range config.Problems(err) {
				if p.Tenant != "" {
					t.Errorf("%s: a tenant problem of %q, want a global one", p, p.Tenant)
				}
			}
		})
	}
}
