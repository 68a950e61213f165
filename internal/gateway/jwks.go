package gateway

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/identityjwt"
	"github.com/sso-gateway/sso-gateway/internal/page"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// JWKSPath is where the public listener serves the public keys of the
// identity JWT (X-Remote-Jwt-Assertion) as a JWK Set; the admin listener
// serves them at /jwks.json.
const JWKSPath = samlsp.PathPrefix + "jwks.json"

// jwksMaxAge is how long verifiers may cache the JWK Set. A rotation adds
// the next key as previous_key_file at least this long before it signs
// (deploy/CONFIGURATION.md), so caches learn it in time.
const jwksMaxAge = 300

// identitySigner builds the signer of cfg's identity_jwt, or nil when it
// is off. A reload builds a new one: its key, audience and lifetime take
// effect at once, and sessions' cached tokens are signed again.
func (g *Gateway) identitySigner(cfg *config.Config) (*identityjwt.Signer, error) {
	j := cfg.IdentityJWT
	if j == nil {
		return nil, nil
	}
	s, err := identityjwt.New(identityjwt.Options{
		Key:         j.Key,
		PreviousKey: j.PreviousKey,
		Issuer:      cfg.PublicURL.String(),
		Audience:    j.Audience,
		Lifetime:    j.Lifetime,
		Clock:       g.clock,
	})
	if err != nil {
		return nil, &config.Problem{Path: "identity_jwt", Msg: err.Error()}
	}
	return s, nil
}

// serveJWKS answers with the JWK Set of st's identity_jwt: the key that
// signs, and the previous one during a rotation. Without identity_jwt it
// is 404, so that an upstream set up to verify tokens fails loudly rather
// than fetching a set that verifies nothing.
func serveJWKS(w http.ResponseWriter, r *http.Request, st *state) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		page.Write(w, r, page.Errorf(http.StatusMethodNotAllowed, "Only GET is supported here.",
			fmt.Errorf("gateway: %s %s", r.Method, r.URL.Path)))
		return
	}
	if st.jwt == nil {
		page.Write(w, r, page.Errorf(http.StatusNotFound, "The identity JWT is not configured on this gateway (identity_jwt).",
			fmt.Errorf("gateway: JWKS without identity_jwt")))
		return
	}
	body := st.jwt.JWKS()
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
