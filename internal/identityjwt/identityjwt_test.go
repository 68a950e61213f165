package identityjwt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/jonboulle/clockwork"

	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

const (
	issuer   = "https://sso.example.com"
	audience = "https://docs.example.com"
	lifetime = 5 * time.Minute
)

var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigner(t testing.TB, key, previous crypto.Signer, clock clockwork.Clock) *identityjwt.Signer {
	t.Helper()
	sg, err := identityjwt.New(identityjwt.Options{
		Key: key, PreviousKey: previous, Issuer: issuer, Audience: audience, Lifetime: lifetime, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// session is a signed-in user whose session ends in eight hours.
func session() *samlsp.Session {
	return &samlsp.Session{
		Tenant: "acme", NameID: "alice@acme.example", Email: "alice@acme.example", Name: "Alice Liddell",
		Groups:   []string{"0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c", "Finance, \"EU\""},
		IssuedAt: start.Unix(), Expires: start.Add(8 * time.Hour).Unix(),
	}
}

// jwksOf decodes a Signer's JWKS, as an upstream fetches it.
func jwksOf(t *testing.T, sg *identityjwt.Signer) *jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(sg.JWKS(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", sg.JWKS(), err)
	}
	return &set
}

// verify checks token as an upstream does with go-jose: a signature of an
// expected algorithm by a key of the set, then iss, aud and the times at
// now. It returns the claims.
func verify(t *testing.T, token string, set *jose.JSONWebKeySet, now time.Time) (identityjwt.Claims, error) {
	t.Helper()
	var claims identityjwt.Claims
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return claims, err
	}
	var std jwt.Claims
	if err := tok.Claims(set, &std, &claims); err != nil {
		return claims, err
	}
	return claims, std.ValidateWithLeeway(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{audience}, Time: now}, 0)
}

// TestTokenVerifies: a standard JOSE library verifies a token against the
// JWKS, for an EC and an RSA key, and reads every claim; the header has
// the key's RFC 7638 thumbprint as kid and typ JWT.
func TestTokenVerifies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		alg  string
	}{
		{"ES256", ecKey(t), "ES256"},
		{"RS256", rsaKey(t), "RS256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := clockwork.NewFakeClockAt(start)
			sg := newSigner(t, tt.key, nil, clock)
			token, exp, err := sg.Sign(session())
			if err != nil {
				t.Fatal(err)
			}
			if want := start.Add(lifetime).Unix(); exp != want {
				t.Errorf("exp: got %d, want %d", exp, want)
			}
			set := jwksOf(t, sg)
			got, err := verify(t, token, set, start)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			want := identityjwt.Claims{
				Issuer: issuer, Audience: audience, Subject: "alice@acme.example",
				IssuedAt: start.Unix(), NotBefore: start.Unix(), Expiry: start.Add(lifetime).Unix(),
				Email: "alice@acme.example", Name: "Alice Liddell", Tenant: "acme",
				Groups: []string{"0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c", "Finance, \"EU\""},
			}
			if !equalClaims(got, want) {
				t.Errorf("claims: got %+v, want %+v", got, want)
			}

			jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Protected
			pub := jose.JSONWebKey{Key: tt.key.Public()}
			thumb, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(thumb); h.KeyID != want || sg.KeyID() != want {
				t.Errorf("kid: got %q (KeyID %q), want the thumbprint %q", h.KeyID, sg.KeyID(), want)
			}
			if h.Algorithm != tt.alg || sg.Algorithm() != tt.alg {
				t.Errorf("alg: got %q (Algorithm %q), want %q", h.Algorithm, sg.Algorithm(), tt.alg)
			}
			if typ := h.ExtraHeaders[jose.HeaderType]; typ != "JWT" {
				t.Errorf("typ: got %q, want %q", typ, "JWT")
			}
			if len(set.Keys) != 1 || set.Keys[0].KeyID != h.KeyID || set.Keys[0].Algorithm != tt.alg ||
				set.Keys[0].Use != "sig" || !set.Keys[0].IsPublic() {
				t.Errorf("JWKS: got %s, want the one public key, kid %q, alg %q, use sig", sg.JWKS(), h.KeyID, tt.alg)
			}
			if strings.Contains(string(sg.JWKS()), `"d"`) {
				t.Errorf("JWKS holds a private part: %s", sg.JWKS())
			}
		})
	}
}

func equalClaims(a, b identityjwt.Claims) bool {
	return a.Issuer == b.Issuer && a.Audience == b.Audience && a.Subject == b.Subject &&
		a.IssuedAt == b.IssuedAt && a.NotBefore == b.NotBefore && a.Expiry == b.Expiry &&
		a.Email == b.Email && a.Name == b.Name && a.Tenant == b.Tenant &&
		slices.Equal(a.Groups, b.Groups) && (a.Groups == nil) == (b.Groups == nil) && a.GroupsOverage == b.GroupsOverage
}

// TestGroupsClaim: groups is always there, [] for none, except when Entra
// sent the overage claim: then groups_overage is true and groups absent.
func TestGroupsClaim(t *testing.T) {
	t.Parallel()
	sg := newSigner(t, ecKey(t), nil, clockwork.NewFakeClockAt(start))
	for _, tt := range []struct {
		name    string
		groups  []string
		overage bool
		want    string // the claims' JSON, from "groups" on
	}{
		{"groups", []string{"a", "b"}, false, `"groups":["a","b"],"tenant"`},
		{"none", nil, false, `"groups":[],"tenant"`},
		{"overage", nil, true, `"groups_overage":true,"tenant"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := session()
			s.Groups, s.GroupsOverage = tt.groups, tt.overage
			token, _, err := sg.Sign(s)
			if err != nil {
				t.Fatal(err)
			}
			payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(payload), `"name":"Alice Liddell",`+tt.want) {
				t.Errorf("payload: got %s, want it to hold %s", payload, tt.want)
			}
		})
	}
}

// TestTamperedTokenRefused: a changed payload, header or signature, an
// alg the upstream does not expect (none, or HS256 keyed with the public
// key), another key under the same kid, and expired, early or foreign
// tokens fail verification.
func TestTamperedTokenRefused(t *testing.T) {
	t.Parallel()
	key := ecKey(t)
	sg := newSigner(t, key, nil, clockwork.NewFakeClockAt(start))
	set := jwksOf(t, sg)
	token, _, err := sg.Sign(session())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(t, token, set, start); err != nil {
		t.Fatalf("the untampered token: %v", err)
	}
	parts := strings.Split(token, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])

	forged := strings.Replace(string(payload), `"sub":"alice@acme.example"`, `"sub":"bob@acme.example"`, 1)
	if forged == string(payload) {
		t.Fatalf("payload %s has no sub to change", payload)
	}
	flipped := slices.Clone(sig)
	flipped[len(flipped)/2] ^= 1
	// alg confusion: HS256 with the public key's bytes as the secret.
	hsHeader := b64([]byte(strings.Replace(string(header), `"ES256"`, `"HS256"`, 1)))
	mac := hmac.New(sha256.New, []byte(string(set.Keys[0].Key.(*ecdsa.PublicKey).X.Bytes())))
	mac.Write([]byte(hsHeader + "." + parts[1]))
	// Another key that names the real key's kid.
	other, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ecKey(t), KeyID: sg.KeyID()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	impostor, err := other.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	impostorToken, _ := impostor.CompactSerialize()

	for _, tt := range []struct {
		name, token string
		at          time.Time
	}{
		{"payload changed", parts[0] + "." + b64([]byte(forged)) + "." + parts[2], start},
		{"header changed", b64([]byte(strings.Replace(string(header), `"JWT"`, `"jwt"`, 1))) + "." + parts[1] + "." + parts[2], start},
		{"signature changed", parts[0] + "." + parts[1] + "." + b64(flipped), start},
		{"signature removed", parts[0] + "." + parts[1] + ".", start},
		{"alg none", b64([]byte(strings.Replace(string(header), `"ES256"`, `"none"`, 1))) + "." + parts[1] + ".", start},
		{"alg HS256 with the public key", hsHeader + "." + parts[1] + "." + b64(mac.Sum(nil)), start},
		{"another key under the kid", impostorToken, start},
		{"expired", token, start.Add(lifetime + time.Second)},
		{"before nbf", token, start.Add(-time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if c, err := verify(t, tt.token, set, tt.at); err == nil {
				t.Errorf("verified, with claims %+v; want an error", c)
			}
		})
	}
	t.Run("other audience", func(t *testing.T) {
		t.Parallel()
		tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var std jwt.Claims
		if err := tok.Claims(set, &std); err != nil {
			t.Fatal(err)
		}
		if err := std.Validate(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{"https://other.example.com"}, Time: start}); err == nil {
			t.Error("validated for another audience; want an error")
		}
	})
}

// TestRotation: while previous_key_file is set, the JWKS has both keys and
// a token the previous key signed verifies; the new key signs; once the
// previous key is removed, its kid is gone and its tokens fail.
func TestRotation(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(start)
	oldKey, newKey := rsaKey(t), ecKey(t)
	before := newSigner(t, oldKey, nil, clock)
	oldToken, _, err := before.Sign(session())
	if err != nil {
		t.Fatal(err)
	}
	during := newSigner(t, newKey, oldKey, clock)
	after := newSigner(t, newKey, nil, clock)
	newToken, _, err := during.Sign(session())
	if err != nil {
		t.Fatal(err)
	}

	kids := func(sg *identityjwt.Signer) []string {
		var out []string
		for _, k := range jwksOf(t, sg).Keys {
			out = append(out, k.KeyID)
		}
		return out
	}
	if got, want := kids(during), []string{during.KeyID(), before.KeyID()}; !slices.Equal(got, want) {
		t.Errorf("JWKS during the rotation: got kids %q, want %q", got, want)
	}
	if got, want := kids(after), []string{after.KeyID()}; !slices.Equal(got, want) {
		t.Errorf("JWKS after the rotation: got kids %q, want %q", got, want)
	}
	if during.KeyID() != after.KeyID() || during.KeyID() == before.KeyID() {
		t.Errorf("kids: got %q before, %q during, %q after; want the new key's during and after", before.KeyID(), during.KeyID(), after.KeyID())
	}
	for _, tt := range []struct {
		name   string
		token  string
		signer *identityjwt.Signer
		ok     bool
	}{
		{"old token, JWKS during", oldToken, during, true},
		{"new token, JWKS during", newToken, during, true},
		{"new token, JWKS after", newToken, after, true},
		{"old token, JWKS after", oldToken, after, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(t, tt.token, jwksOf(t, tt.signer), start)
			if (err == nil) != tt.ok {
				t.Errorf("verify: got error %v, want success %v", err, tt.ok)
			}
		})
	}
}

// TestTokenCached: a session's token is signed once per half lifetime, not
// per request; a new Signer (a reload) signs again; no token handed out
// is expired, nor outlives the session.
func TestTokenCached(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClockAt(start)
	key := ecKey(t)
	sg := newSigner(t, key, nil, clock)
	set := jwksOf(t, sg)
	s := session()
	var c identityjwt.Cache
	first, err := sg.Token(s, &c)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := sg.Token(s, &c)
	if again != first {
		t.Error("second request: got a new token, want the cached one")
	}
	clock.Advance(lifetime/2 - time.Second)
	if got, _ := sg.Token(s, &c); got != first {
		t.Error("just before half the lifetime: got a new token, want the cached one")
	}
	clock.Advance(time.Second)
	second, _ := sg.Token(s, &c)
	if second == first {
		t.Error("at half the lifetime: got the cached token, want a new one")
	}
	if got, _ := sg.Token(s, &c); got != second {
		t.Error("after re-signing: got another token, want the new one cached")
	}
	if noCache, _ := sg.Token(s, nil); noCache == second {
		t.Error("without a cache: got the cached token, want a new one")
	}
	reloaded := newSigner(t, key, nil, clock)
	if got, _ := reloaded.Token(s, &c); got == second {
		t.Error("after a reload: got the old Signer's token, want a new one")
	}

	// Every token handed out over two hours is valid when handed out.
	signs := 0
	var last string
	for range 2 * 60 * 6 {
		clock.Advance(10 * time.Second)
		tok, err := sg.Token(s, &c)
		if err != nil {
			t.Fatal(err)
		}
		if tok != last {
			signs++
			last = tok
		}
		if _, err := verify(t, tok, set, clock.Now()); err != nil {
			t.Fatalf("at %s: the token handed out does not verify: %v", clock.Now(), err)
		}
	}
	if want := int(2 * time.Hour / (lifetime / 2)); signs < want-1 || signs > want+1 {
		t.Errorf("over two hours: signed %d times, want about %d (once per half lifetime)", signs, want)
	}

	// The clock goes back: a token issued in the future is not handed out.
	clock.Advance(-lifetime)
	if got, _ := sg.Token(s, &c); got == last {
		t.Error("after the clock went back: got the token issued later, want a new one")
	}

	// Near the session's end, the token ends with it.
	end := newSigner(t, key, nil, clockwork.NewFakeClockAt(start))
	s = session()
	s.Expires = start.Add(time.Minute).Unix()
	tok, err := end.Token(s, new(identityjwt.Cache))
	if err != nil {
		t.Fatal(err)
	}
	got, err := verify(t, tok, set, start)
	if err != nil {
		t.Fatal(err)
	}
	if got.Expiry != s.Expires {
		t.Errorf("exp of a session ending in a minute: got %d, want the session's end %d", got.Expiry, s.Expires)
	}
}

// TestNewRefusesBadOptions: New refuses missing options and keys that
// are neither EC P-256 nor RSA.
func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := identityjwt.Options{Key: ecKey(t), Issuer: issuer, Audience: audience, Lifetime: lifetime}
	for _, tt := range []struct {
		name string
		edit func(*identityjwt.Options)
	}{
		{"no key", func(o *identityjwt.Options) { o.Key = nil }},
		{"no issuer", func(o *identityjwt.Options) { o.Issuer = "" }},
		{"no audience", func(o *identityjwt.Options) { o.Audience = "" }},
		{"no lifetime", func(o *identityjwt.Options) { o.Lifetime = 0 }},
		{"P-384 key", func(o *identityjwt.Options) { o.Key = p384 }},
		{"P-384 previous key", func(o *identityjwt.Options) { o.PreviousKey = p384 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := good
			tt.edit(&o)
			if _, err := identityjwt.New(o); err == nil {
				t.Error("got a Signer, want an error")
			}
		})
	}
}

// BenchmarkAssertion: what a request pays for its token. cached is every
// request but about one per half lifetime per session; signing is what
// signing on every request would cost.
func BenchmarkAssertion(b *testing.B) {
	s := session()
	for _, k := range []struct {
		name string
		key  crypto.Signer
	}{{"ES256", ecKey(b)}, {"RS256", rsaKey(b)}} {
		sg := newSigner(b, k.key, nil, clockwork.NewRealClock())
		b.Run(k.name+"/cached", func(b *testing.B) {
			var c identityjwt.Cache
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sg.Token(s, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.name+"/signing", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sg.Token(s, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
