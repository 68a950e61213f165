package samlsp

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"
)

// trackedRequest is an AuthnRequest the gateway sent, remembered in a cookie
// until the IdP answers it. The cookie is named after a random key that
// travels as the RelayState, so several logins in several tabs do not
// interfere, and the response must answer the very request its RelayState
// names.
type trackedRequest struct {
	Tenant    string `json:"t"`
	RequestID string `json:"id"`
	ReturnTo  string `json:"r,omitempty"`
	// Host and Handoff are set when the login started on one of the
	// tenant's hosts while the IdP posts to another: the host to hand the
	// login to, and the key of its binding cookie there (see handoff.go).
	Host    string `json:"h,omitempty"`
	Handoff string `json:"ho,omitempty"`
	Issued  int64  `json:"iat"`
}

// maxTrackers bounds the tracking cookies a browser accumulates (for example
// from login pages left open in many tabs): at the next login the oldest
// beyond this are deleted.
const maxTrackers = 5

// newTrackerKey returns the RelayState of a new login: 16 random bytes,
// unguessable and well under the 80 bytes the SAML bindings allow.
func newTrackerKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validTrackerKey reports whether s could be a key made by newTrackerKey.
// The RelayState is attacker-controlled, and becomes part of a cookie name.
func validTrackerKey(s string) bool {
	if len(s) != 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tracker returns a tracking cookie (base is its name without prefix),
// valid for maxAge and sent only to path: the tenant's ACS or SLO endpoint.
// On https it is SameSite=None so that the browser sends it with the IdP's
// cross-site POST; on http that is not allowed and Lax is the best
// available.
func (c cookies) tracker(base, value, path string, maxAge time.Duration) *http.Cookie {
	sameSite := http.SameSiteLaxMode
	if c.secure {
		sameSite = http.SameSiteNoneMode
	}
	return &http.Cookie{
		Name:     c.pathName(base),
		Value:    value,
		Path:     path,
		MaxAge:   int(maxAge / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: sameSite,
	}
}

// foundTracker is a tracking cookie present in a request.
type foundTracker struct {
	name string
	req  *trackedRequest // nil if it did not decode
}

// trackers returns the tracking cookies in r, oldest first, with
// undecodable ones (wrong tenant, retired key, tampered) first of all.
func (p *Provider) trackers(r *http.Request, tenant string) []foundTracker {
	set := p.currentSettings()
	prefix := set.cookies.pathName(trackerCookie)
	var out []foundTracker
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, prefix) {
			continue
		}
		var tr trackedRequest
		ft := foundTracker{name: ck.Name}
		if err := set.codec.decode(ck.Name, ck.Value, &tr); err == nil && tr.Tenant == tenant {
			ft.req = &tr
		}
		out = append(out, ft)
	}
	slices.SortStableFunc(out, func(a, b foundTracker) int {
		switch {
		case a.req == nil && b.req == nil:
			return 0
		case a.req == nil:
			return -1
		case b.req == nil:
			return 1
		}
		return cmp.Compare(a.req.Issued, b.req.Issued)
	})
	return out
}

// trackedByRelayState returns the unexpired tracked request the RelayState
// names, or nil.
func (p *Provider) trackedByRelayState(r *http.Request, tenant, relayState string) *trackedRequest {
	set := p.currentSettings()
	if !validTrackerKey(relayState) {
		return nil
	}
	name := set.cookies.pathName(trackerCookie + relayState)
	ck, err := r.Cookie(name)
	if err != nil {
		return nil
	}
	var tr trackedRequest
	if err := set.codec.decode(name, ck.Value, &tr); err != nil {
		return nil
	}
	if tr.Tenant != tenant {
		return nil
	}
	issued := time.Unix(tr.Issued, 0)
	if p.clock.Now().After(issued.Add(set.loginTimeout)) {
		return nil
	}
	return &tr
}
