package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// forgedAssertions are the spellings of X-Remote-Jwt-Assertion a client
// might send to pose as someone, each read by some backend as the header.
var forgedAssertions = []string{
	"X-Remote-Jwt-Assertion: forged.by.client",
	"x-remote-jwt-assertion: forged.by.lower",
	"X_Remote_Jwt_Assertion: forged.by.underscore",
}

// TestAssertionHeader: with an Asserter, the upstream receives exactly one
// X-Remote-Jwt-Assertion, the gateway's, which verifies against the JWKS
// and names the session's user; every copy the client sent is gone.
func TestAssertionHeader(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := identityjwt.New(identityjwt.Options{
		Key: key, Issuer: "https://sso.example.com", Audience: "docs", Lifetime: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(signer.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	up := newEcho(t)
	g := newGateway(t, up.srv.URL, func(o *proxy.Options) { o.Assertion = signer })
	alice := *alice
	alice.Expires = time.Now().Add(time.Hour).Unix()
	g.auth.sessions["valid"] = &alice
	lines := append([]string{"GET /doc HTTP/1.1", "Host: " + g.addr(), "Cookie: " + sessionCookie, "Connection: close"}, forgedAssertions...)
	resp, body := g.raw(t, lines...)
	wantStatus(t, resp, body, http.StatusOK)
	got := decodeJSON[echoed](t, body)
	var values []string
	for name, vs := range got.Header {
		if isAssertionName(name) {
			values = append(values, vs...)
		}
	}
	if len(values) != 1 || len(got.Header[proxy.HeaderJWTAssertion]) != 1 {
		t.Fatalf("upstream got assertion headers %q, want exactly one %s", values, proxy.HeaderJWTAssertion)
	}
	tok, err := jwt.ParseSigned(values[0], []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse %q: %v", values[0], err)
	}
	var std jwt.Claims
	var id identityjwt.Claims
	if err := tok.Claims(&set, &std, &id); err != nil {
		t.Fatalf("verify against the JWKS: %v", err)
	}
	if err := std.Validate(jwt.Expected{Issuer: "https://sso.example.com", AnyAudience: jwt.Audience{"docs"}, Time: time.Now()}); err != nil {
		t.Errorf("validate: %v", err)
	}
	if id.Subject != alice.NameID || id.Tenant != alice.Tenant || !slices.Equal(id.Groups, alice.Groups) {
		t.Errorf("claims: got sub %q, tenant %q, groups %q; want %q, %q, %q", id.Subject, id.Tenant, id.Groups, alice.NameID, alice.Tenant, alice.Groups)
	}
}

// isAssertionName reports whether a backend could read name as
// X-Remote-Jwt-Assertion (any case, '_' for '-').
func isAssertionName(name string) bool {
	if len(name) != len(proxy.HeaderJWTAssertion) {
		return false
	}
	for i := range len(name) {
		a, b := name[i], proxy.HeaderJWTAssertion[i]
		if a == '_' {
			a = '-'
		}
		if a|0x20 != b|0x20 {
			return false
		}
	}
	return true
}

// TestForgedAssertionNeverReachesUpstream: without identity_jwt, a
// client's X-Remote-Jwt-Assertion, in any spelling, is removed like every
// X-Remote- header, so an upstream that verifies tokens from elsewhere
// cannot be handed one through the gateway.
func TestForgedAssertionNeverReachesUpstream(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := newGateway(t, up.srv.URL)
	for _, forged := range forgedAssertions {
		t.Run(forged, func(t *testing.T) {
			t.Parallel()
			resp, body := g.raw(t, "GET /doc HTTP/1.1", "Host: "+g.addr(), "Cookie: "+sessionCookie, forged, "Connection: close")
			wantStatus(t, resp, body, http.StatusOK)
			for name, vs := range decodeJSON[echoed](t, body).Header {
				if isAssertionName(name) {
					t.Errorf("upstream got %s: %q, want no such header", name, vs)
				}
			}
		})
	}
}

// failingAsserter cannot sign.
type failingAsserter struct{}

func (failingAsserter) Token(*samlsp.Session, *identityjwt.Cache) (string, error) {
	return "", errors.New("no entropy today")
}

// TestAssertionFailureStopsRequest: a request whose identity could not be
// signed is answered 500 and never reaches the upstream, which would
// otherwise receive it without the token it expects.
func TestAssertionFailureStopsRequest(t *testing.T) {
	t.Parallel()
	up := newEcho(t)
	g := newGateway(t, up.srv.URL, func(o *proxy.Options) { o.Assertion = failingAsserter{} })
	resp, body := g.do(t, http.MethodGet, "/doc", http.Header{"Cookie": {sessionCookie}}, nil)
	wantStatus(t, resp, body, http.StatusInternalServerError)
	if n := up.hits.Load(); n != 0 {
		t.Errorf("upstream got %d requests, want none", n)
	}
	g.srv.Close()
	wantMetrics(t, g.reg, map[string]int{"refused": 1}, nil)
}
