package identityjwt_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// identity is the upstream's side, as deploy/CONFIGURATION.md shows it
// ("An identity the application can verify"): keep the two the same.
func identity(r *http.Request, keys *jose.JSONWebKeySet) (sub, tenant string, groups []string, err error) {
	tok, err := jwt.ParseSigned(r.Header.Get("X-Remote-Jwt-Assertion"), []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return "", "", nil, err
	}
	var std jwt.Claims
	var id struct {
		Tenant string   `json:"tenant"`
		Groups []string `json:"groups"`
	}
	if err := tok.Claims(keys, &std, &id); err != nil { // signature, by the key the kid names
		return "", "", nil, err
	}
	err = std.Validate(jwt.Expected{Issuer: "https://cloudimanage.com", AnyAudience: jwt.Audience{"https://imanage-backend.internal"}, Time: time.Now()})
	return std.Subject, id.Tenant, id.Groups, err
}

// An upstream verifies X-Remote-Jwt-Assertion against the gateway's JWKS.
func Example_verify() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := identityjwt.New(identityjwt.Options{
		Key: key, Issuer: "https://cloudimanage.com", Audience: "https://imanage-backend.internal", Lifetime: 5 * time.Minute,
	})
	token, _ := signer.Token(&samlsp.Session{
		Tenant: "acme", NameID: "alice@acme.example", Groups: []string{"0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c"},
		Expires: time.Now().Add(time.Hour).Unix(),
	}, new(identityjwt.Cache))

	// What the upstream fetched from /auth/api/v1/saml/jwks.json.
	var keys jose.JSONWebKeySet
	_ = json.Unmarshal(signer.JWKS(), &keys)

	r := httptest.NewRequest(http.MethodGet, "/doc", nil)
	r.Header.Set("X-Remote-Jwt-Assertion", token)
	fmt.Println(identity(r, &keys))
	// One character of the signature changed.
	i := len(token) - 10
	changed := byte('A')
	if token[i] == 'A' {
		changed = 'B'
	}
	r.Header.Set("X-Remote-Jwt-Assertion", token[:i]+string(changed)+token[i+1:])
	_, _, _, err := identity(r, &keys)
	fmt.Println(err)
	// Output:
	// alice@acme.example acme [0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c] <nil>
	// go-jose/go-jose: error in cryptographic primitive
}
