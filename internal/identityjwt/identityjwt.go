// Package identityjwt signs the identity the gateway sends upstream as a
// JWT (X-Remote-Jwt-Assertion), and publishes the public keys that verify
// it as a JWK Set. An upstream that checks the token knows the identity
// came from the gateway, even when other routes than the gateway reach it.
//
// Every JOSE structure is made by github.com/go-jose/go-jose/v4: this
// package only chooses the claims, the keys and when to sign. A session's
// token is signed once per validity window, not per request (Signer.Token
// with a Cache kept beside the session).
package identityjwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jonboulle/clockwork"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Options configure a Signer.
type Options struct {
	// Key signs: an *ecdsa.PrivateKey on P-256 (ES256) or an
	// *rsa.PrivateKey (RS256). Required.
	Key crypto.Signer
	// PreviousKey, if not nil, is published in the JWKS beside Key but
	// signs nothing: tokens it signed before a rotation still verify.
	PreviousKey crypto.Signer
	// Issuer is the iss claim (the gateway's public_url); Audience the
	// aud claim. Both required.
	Issuer, Audience string
	// Lifetime is how long a token is valid; required.
	Lifetime time.Duration
	// Clock gives iat and exp; nil means the real clock.
	Clock clockwork.Clock
}

// Signer signs identity tokens with one key. It is immutable and safe for
// concurrent use; a configuration reload makes a new one.
type Signer struct {
	signer           jose.Signer
	kid              string
	alg              jose.SignatureAlgorithm
	jwks             []byte
	issuer, audience string
	lifetime         int64 // seconds
	clock            clockwork.Clock
}

// Claims are the claims of an identity token: the registered ones of RFC
// 7519 (times in Unix seconds, aud a single string), then the values of the
// identity headers.
type Claims struct {
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	Subject   string `json:"sub"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
	Email     string `json:"email"`
	Name      string `json:"name"`
	// Groups are the groups claim's values, [] for none. Absent (nil)
	// when GroupsOverage is true.
	Groups []string `json:"groups,omitzero"`
	// GroupsOverage is true when Entra sent no groups because the user is
	// in more than 150; absent otherwise.
	GroupsOverage bool   `json:"groups_overage,omitempty"`
	Tenant        string `json:"tenant"`
}

// New returns a Signer for o.
func New(o Options) (*Signer, error) {
	if o.Key == nil || o.Issuer == "" || o.Audience == "" || o.Lifetime <= 0 {
		return nil, errors.New("identityjwt: Key, Issuer, Audience and Lifetime are required")
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	current, err := publicKey(o.Key)
	if err != nil {
		return nil, err
	}
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{current}}
	if o.PreviousKey != nil {
		prev, err := publicKey(o.PreviousKey)
		if err != nil {
			return nil, fmt.Errorf("identityjwt: previous key: %w", err)
		}
		keys.Keys = append(keys.Keys, prev)
	}
	jwks, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("identityjwt: JWKS: %w", err)
	}
	alg := jose.SignatureAlgorithm(current.Algorithm)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: o.Key, KeyID: current.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("identityjwt: %w", err)
	}
	return &Signer{
		signer: signer, kid: current.KeyID, alg: alg, jwks: jwks,
		issuer: o.Issuer, audience: o.Audience, lifetime: int64(o.Lifetime / time.Second), clock: o.Clock,
	}, nil
}

// publicKey is key's public JWK: its kid the RFC 7638 thumbprint, its alg
// the one it signs with.
func publicKey(key crypto.Signer) (jose.JSONWebKey, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return jose.JSONWebKey{}, fmt.Errorf("identityjwt: EC key on %s, want P-256", k.Curve.Params().Name)
		}
		alg = jose.ES256
	case *rsa.PrivateKey:
		alg = jose.RS256
	default:
		return jose.JSONWebKey{}, fmt.Errorf("identityjwt: key is %T, want EC P-256 or RSA", key)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("identityjwt: thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	return jwk, nil
}

// KeyID is the kid of the key that signs: its RFC 7638 thumbprint.
func (sg *Signer) KeyID() string { return sg.kid }

// Algorithm is the alg the Signer signs with: ES256 or RS256.
func (sg *Signer) Algorithm() string { return string(sg.alg) }

// JWKS is the JWK Set of the public keys that verify the Signer's tokens:
// its key's, then the previous key's during a rotation. The caller must
// not modify it.
func (sg *Signer) JWKS() []byte { return sg.jwks }

// Sign signs a new token for s, valid from now for the lifetime and never
// past the session's end. It returns the compact token and its exp.
func (sg *Signer) Sign(s *samlsp.Session) (token string, expires int64, err error) {
	return sg.sign(s, sg.clock.Now().Unix())
}

// sign signs a token for s issued at now (Unix seconds).
func (sg *Signer) sign(s *samlsp.Session, now int64) (string, int64, error) {
	c := Claims{
		Issuer: sg.issuer, Audience: sg.audience, Subject: s.NameID,
		IssuedAt: now, NotBefore: now, Expiry: min(now+sg.lifetime, s.Expires),
		Email: s.Email, Name: s.Name, Tenant: s.Tenant,
	}
	if s.GroupsOverage {
		c.GroupsOverage = true
	} else {
		c.Groups = s.Groups
		if c.Groups == nil {
			c.Groups = []string{}
		}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", 0, fmt.Errorf("identityjwt: claims: %w", err)
	}
	jws, err := sg.signer.Sign(payload)
	if err != nil {
		return "", 0, fmt.Errorf("identityjwt: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", 0, fmt.Errorf("identityjwt: serialize: %w", err)
	}
	return token, c.Expiry, nil
}

// Cache keeps one session's token between requests. The zero value is
// empty and ready; keep one beside each session that requests share (the
// proxy keeps it with the session's rendered identity headers), and pass
// it with that session only.
type Cache struct {
	p atomic.Pointer[cached]
}

type cached struct {
	by      *Signer // a reload's new Signer signs again, with its key and audience
	token   string
	issued  int64
	refresh int64 // signed again from here on: half the validity left
}

// Token returns s's token from c, or signs a new one (and keeps it in c)
// when c has none from this Signer, or less than half of its validity is
// left. It never returns an expired token, unless the session itself has
// ended. c may be nil: then it signs every time.
func (sg *Signer) Token(s *samlsp.Session, c *Cache) (string, error) {
	now := sg.clock.Now().Unix()
	if c != nil {
		// Before issued: the clock went back, and the upstream could
		// read the token as not valid yet.
		if e := c.p.Load(); e != nil && e.by == sg && e.issued <= now && now < e.refresh {
			return e.token, nil
		}
	}
	token, exp, err := sg.sign(s, now)
	if err != nil || c == nil {
		return token, err
	}
	// Two requests may sign at once; either token is good.
	c.p.Store(&cached{by: sg, token: token, issued: now, refresh: now + (exp-now)/2})
	return token, nil
}
