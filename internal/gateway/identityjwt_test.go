package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
	"github.com/sso-gateway/sso-gateway/proxy"
)

// The identity JWT's settings in these tests; the issuer is public_url.
const (
	jwtIssuer   = "https://" + testPublicHost
	jwtAudience = "https://app.example.com"
)

// jwtKeyFiles writes an EC P-256 key (ec.pem) and a 2048-bit RSA key
// (rsa.pem, rsa2.pem is another) to a new folder and returns it.
func jwtKeyFiles(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	testfiles.Write(t, filepath.Join(dir, "ec.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	for _, name := range []string{"rsa.pem", "rsa2.pem"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		testfiles.Write(t, filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	}
	return dir
}

// identityJWTConfig is the identity_jwt section for newTestGateway's extra.
func identityJWTConfig(key, previous, audience string) string {
	s := "identity_jwt:\n  key_file: " + key + "\n  audience: " + audience + "\n"
	if previous != "" {
		s += "  previous_key_file: " + previous + "\n"
	}
	return s
}

// seenUpstream records the identity headers the upstream received.
type seenUpstream struct {
	mu      sync.Mutex
	headers []http.Header
}

func (u *seenUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.headers = append(u.headers, r.Header.Clone())
	u.mu.Unlock()
	io.WriteString(w, "upstream")
}

func (u *seenUpstream) last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.headers) == 0 {
		t.Fatal("the upstream got no request")
	}
	return u.headers[len(u.headers)-1]
}

// oneShotClient closes each connection after its response: a kept-alive
// one, or one the transport dials ahead and leaves unused, counts as in
// flight when the test's server drains, and a busy machine can make it
// outlast shutdown_timeout.
func oneShotClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// fetchJWKS gets a JWK Set over HTTP and decodes it, as an upstream does.
func fetchJWKS(t *testing.T, url, host string) (*jose.JSONWebKeySet, *http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := oneShotClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatalf("JWKS %s: %v", body, err)
		}
	}
	return &set, resp, body
}

// verifyAssertion verifies token as an upstream does with go-jose: ES256
// or RS256 by a key of set, issuer public_url, the audience, valid now.
func verifyAssertion(token string, set *jose.JSONWebKeySet, audience string) (identityjwt.Claims, string, error) {
	var claims identityjwt.Claims
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		return claims, "", err
	}
	var std jwt.Claims
	if err := tok.Claims(set, &std, &claims); err != nil {
		return claims, "", err
	}
	return claims, tok.Headers[0].KeyID, std.Validate(jwt.Expected{Issuer: jwtIssuer, AnyAudience: jwt.Audience{audience}, Time: time.Now()})
}

func kidsOf(set *jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// TestIdentityJWTEndToEnd: through a real gateway on real listeners, every
// proxied request carries X-Remote-Jwt-Assertion, which go-jose verifies
// against the JWKS served on the public listener (and, the same bytes, on
// the admin listener); it names the same user as the identity headers, and
// is signed once for the session, not per request. A client's forged copy
// never reaches the upstream. For an EC key (ES256) and an RSA key (RS256).
func TestIdentityJWTEndToEnd(t *testing.T) {
	t.Parallel()
	keys := jwtKeyFiles(t)
	for _, tt := range []struct{ name, key, alg string }{
		{"ES256", "ec.pem", "ES256"},
		{"RS256", "rsa.pem", "RS256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := &seenUpstream{}
			tg := newTestGateway(t, up, identityJWTConfig(filepath.Join(keys, tt.key), "", jwtAudience))
			session := tg.signIn(t)
			srv := startServing(t, tg.gw)

			set, resp, body := fetchJWKS(t, "http://"+srv.public+JWKSPath, testPublicHost)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("public JWKS: got %d %q, want 200", resp.StatusCode, body)
			}
			for name, want := range map[string]string{"Content-Type": "application/jwk-set+json", "Cache-Control": "public, max-age=300"} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("public JWKS %s: got %q, want %q", name, got, want)
				}
			}
			if len(set.Keys) != 1 || set.Keys[0].Algorithm != tt.alg || !set.Keys[0].IsPublic() {
				t.Errorf("public JWKS: got %s, want one public %s key", body, tt.alg)
			}
			_, adminResp, adminBody := fetchJWKS(t, "http://"+srv.admin+"/jwks.json", "")
			if adminResp.StatusCode != http.StatusOK || string(adminBody) != string(body) {
				t.Errorf("admin JWKS: got %d %q, want 200 %q", adminResp.StatusCode, adminBody, body)
			}

			var tokens []string
			for range 3 {
				req, err := http.NewRequest(http.MethodGet, "http://"+srv.public+"/doc", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Host = testPublicHost
				req.AddCookie(session)
				req.Header.Set(proxy.HeaderJWTAssertion, "forged")
				req.Header["X_remote_jwt_assertion"] = []string{"forged"}
				resp, err := oneShotClient().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET /doc: got %d, want 200", resp.StatusCode)
				}
				h := up.last(t)
				if v := h["X_remote_jwt_assertion"]; v != nil {
					t.Errorf("the upstream got the client's X_remote_jwt_assertion %q", v)
				}
				if v := h[proxy.HeaderJWTAssertion]; len(v) != 1 || v[0] == "forged" {
					t.Fatalf("the upstream got %s %q, want the gateway's one", proxy.HeaderJWTAssertion, v)
				}
				tokens = append(tokens, h.Get(proxy.HeaderJWTAssertion))
			}
			h := up.last(t)
			claims, kid, err := verifyAssertion(tokens[0], set, jwtAudience)
			if err != nil {
				t.Fatalf("verify the assertion against the JWKS: %v", err)
			}
			if kid != set.Keys[0].KeyID {
				t.Errorf("kid: got %q, want the JWKS's %q", kid, set.Keys[0].KeyID)
			}
			for _, c := range []struct{ claim, got, want string }{
				{"sub", claims.Subject, h.Get(proxy.HeaderUser)},
				{"email", claims.Email, h.Get(proxy.HeaderEmail)},
				{"name", claims.Name, h.Get(proxy.HeaderName)},
				{"tenant", claims.Tenant, "acme"},
				{"groups", strings.Join(claims.Groups, ","), h.Get(proxy.HeaderGroups)},
			} {
				if c.got != c.want || c.claim == "sub" && c.got == "" {
					t.Errorf("claim %s: got %q, want %q", c.claim, c.got, c.want)
				}
			}
			if tokens[1] != tokens[0] || tokens[2] != tokens[0] {
				t.Error("each request got a new token; want one token per session while it is fresh")
			}
			if _, _, err := verifyAssertion(tokens[0], set, "https://other.example.com"); err == nil {
				t.Error("the assertion verified for another audience")
			}
		})
	}
}

// TestJWKSWithoutIdentityJWT: without identity_jwt, both JWKS paths are
// 404, and the upstream gets no assertion, not even the client's.
func TestJWKSWithoutIdentityJWT(t *testing.T) {
	t.Parallel()
	up := &seenUpstream{}
	tg := newTestGateway(t, up, "")
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
	}{{"public", tg.gw.PublicHandler(), JWKSPath}, {"admin", tg.gw.AdminHandler(), "/jwks.json"}} {
		if rec := get(t, tc.h, tc.path); rec.Code != http.StatusNotFound {
			t.Errorf("%s %s: got %d %q, want 404", tc.name, tc.path, rec.Code, rec.Body)
		}
	}
	session := tg.signIn(t)
	req := publicRequest(http.MethodGet, "/doc", nil)
	req.AddCookie(session)
	req.Header.Set(proxy.HeaderJWTAssertion, "forged")
	tg.gw.PublicHandler().ServeHTTP(httptest.NewRecorder(), req)
	if v, ok := up.last(t)[proxy.HeaderJWTAssertion]; ok {
		t.Errorf("the upstream got %s %q, want none", proxy.HeaderJWTAssertion, v)
	}
}

// TestJWKSMethods: the public JWKS answers GET and HEAD, and nothing else,
// without a session and without taking a slot of the login throttle.
func TestJWKSMethods(t *testing.T) {
	t.Parallel()
	keys := jwtKeyFiles(t)
	tg := newTestGateway(t, http.NotFoundHandler(), identityJWTConfig(filepath.Join(keys, "ec.pem"), "", jwtAudience)+
		"limits: {login_concurrency: 1, login_concurrency_per_client: 1}\n")
	tg.gw.admitted = func(r *http.Request) { t.Errorf("%s %s took a slot of the login throttle", r.Method, r.URL.Path) }
	for _, tc := range []struct {
		method string
		want   int
		body   bool
	}{{http.MethodGet, 200, true}, {http.MethodHead, 200, false}, {http.MethodPost, 405, true}} {
		rec := httptest.NewRecorder()
		tg.gw.PublicHandler().ServeHTTP(rec, publicRequest(tc.method, JWKSPath, nil))
		if rec.Code != tc.want || (rec.Body.Len() > 0) != tc.body {
			t.Errorf("%s: got %d with %d bytes, want %d with a body %v", tc.method, rec.Code, rec.Body.Len(), tc.want, tc.body)
		}
	}
}

// TestIdentityJWTRotation: a reload follows each step of a key rotation
// (deploy/CONFIGURATION.md). The new key is first published as
// previous_key_file while the old one signs; then it signs while the old
// one is published, and a token the old key signed still verifies; once
// previous_key_file is removed, the old kid is gone and the old token
// fails. The audience follows the reload too.
func TestIdentityJWTRotation(t *testing.T) {
	t.Parallel()
	keys := jwtKeyFiles(t)
	oldKey, newKey := filepath.Join(keys, "rsa.pem"), filepath.Join(keys, "ec.pem")
	up := &seenUpstream{}
	tg := newTestGateway(t, up, identityJWTConfig(oldKey, "", jwtAudience))
	session := tg.signIn(t)
	request := func() string {
		t.Helper()
		req := publicRequest(http.MethodGet, "/doc", nil)
		req.AddCookie(session)
		rec := httptest.NewRecorder()
		tg.gw.PublicHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /doc: got %d, want 200", rec.Code)
		}
		return up.last(t).Get(proxy.HeaderJWTAssertion)
	}
	jwks := func() *jose.JSONWebKeySet {
		t.Helper()
		rec := get(t, tg.gw.PublicHandler(), JWKSPath)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(rec.Body.Bytes(), &set); rec.Code != http.StatusOK || err != nil {
			t.Fatalf("JWKS: got %d %q (%v)", rec.Code, rec.Body, err)
		}
		admin := get(t, tg.gw.AdminHandler(), "/jwks.json")
		if admin.Body.String() != rec.Body.String() {
			t.Errorf("admin JWKS: got %q, want the public one %q", admin.Body, rec.Body)
		}
		return &set
	}
	reload := func(section string) {
		t.Helper()
		data, err := os.ReadFile(tg.cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		before, _, _ := strings.Cut(string(data), "identity_jwt:")
		if err := os.WriteFile(tg.cfg.Path, []byte(before+section), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(tg.cfg.Path, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		if err := tg.gw.Reload(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}

	oldToken := request()
	before := jwks()
	_, oldKid, err := verifyAssertion(oldToken, before, jwtAudience)
	if err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	// Step 1: the new key is published, and signs nothing yet.
	reload(identityJWTConfig(oldKey, newKey, jwtAudience))
	published := jwks()
	if kids := kidsOf(published); len(kids) != 2 || kids[0] != oldKid {
		t.Fatalf("JWKS with the new key published: got kids %q, want the old %q, then the new key's", kids, oldKid)
	}
	if _, kid, err := verifyAssertion(request(), published, jwtAudience); err != nil || kid != oldKid {
		t.Errorf("a token with the new key published: got kid %q (%v), want the old key's %q", kid, err, oldKid)
	}

	// Step 2: the new key signs; the old one is still published.
	reload(identityJWTConfig(newKey, oldKey, jwtAudience))
	during := jwks()
	if during.Keys[0].KeyID != published.Keys[1].KeyID {
		t.Errorf("JWKS during the rotation: got kid %q first, want the new key's %q", during.Keys[0].KeyID, published.Keys[1].KeyID)
	}
	if kids := kidsOf(during); len(kids) != 2 || kids[1] != oldKid || kids[0] == oldKid {
		t.Fatalf("JWKS during the rotation: got kids %q, want the new key's, then the old %q", kids, oldKid)
	}
	if _, _, err := verifyAssertion(oldToken, during, jwtAudience); err != nil {
		t.Errorf("the old key's token during the rotation: %v", err)
	}
	newToken := request()
	if _, kid, err := verifyAssertion(newToken, during, jwtAudience); err != nil || kid != during.Keys[0].KeyID {
		t.Errorf("a token after the reload: got kid %q (%v), want the new key's %q", kid, err, during.Keys[0].KeyID)
	}

	// Step 3: the old key is gone; the audience changes too.
	reload(identityJWTConfig(newKey, "", "https://app2.example.com"))
	after := jwks()
	if kids := kidsOf(after); slices.Contains(kids, oldKid) || len(kids) != 1 {
		t.Errorf("JWKS after the rotation: got kids %q, want only the new key's", kids)
	}
	if _, _, err := verifyAssertion(oldToken, after, jwtAudience); err == nil {
		t.Error("the old key's token verified after the old key was removed")
	}
	if _, _, err := verifyAssertion(request(), after, "https://app2.example.com"); err != nil {
		t.Errorf("a token after the audience changed: %v", err)
	}
}
