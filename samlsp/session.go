package samlsp

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
)

// Session is a signed-in user, as held in the session cookie. It is
// everything the gateway needs to set the identity headers, so no server
// keeps any state and any replica can serve any request.
type Session struct {
	Tenant       string
	NameID       string
	NameIDFormat string
	Email        string
	Name         string
	Groups       []string
	// GroupsOverage means Entra sent the groups.link claim instead of the
	// groups: the user is in more than 150, and Groups is empty.
	GroupsOverage bool
	// Headers are the tenant's own identity headers (config "headers"),
	// by header name: the claim's values, as the IdP sent them. The proxy
	// joins them into one header value.
	Headers      map[string][]string
	SessionIndex string
	// IssuedAt and Expires are Unix seconds. Expires is the earlier of the
	// configured lifetime and the assertion's SessionNotOnOrAfter.
	IssuedAt int64
	Expires  int64

	// memo is set on the sessions the cache shares between requests; see
	// Memo. A copy of the struct keeps the pointer, but not its use: the
	// memo serves only the Session it was made for.
	memo *sessionMemo
}

// sessionMemo holds what Memo derived from one shared Session.
type sessionMemo struct {
	owner *Session
	value atomic.Pointer[any]
}

// Memo returns derive(s), computed once for a Session that Authenticate
// shares between requests (every request with the same cookie, while the
// tenant's configuration lasts) and kept with it, in the memory the
// session cache accounts for; for any other Session, derive runs on every
// call. It lets the proxy render the identity headers once per session
// rather than once per request. derive must depend on nothing but s, and
// every caller must pass the same derive: there is one memo per session.
// Like the Session, the result must not be modified.
func (s *Session) Memo(derive func(*Session) any) any {
	m := s.memo
	if m == nil || m.owner != s {
		return derive(s)
	}
	if v := m.value.Load(); v != nil {
		return *v
	}
	v := derive(s)
	// Two requests may derive at once; both results are equal, and the
	// first stored is kept.
	m.value.CompareAndSwap(nil, &v)
	return *m.value.Load()
}

// share marks s as shared between requests, with a memo of its own.
func (s *Session) share() {
	s.memo = &sessionMemo{owner: s}
}

// wireSession is a Session as serialized: short keys, and group object IDs
// packed into 16 bytes each rather than 36 characters, so that 150 of them
// fit in one cookie.
type wireSession struct {
	Tenant       string              `json:"t"`
	NameID       string              `json:"n"`
	NameIDFormat string              `json:"nf,omitempty"`
	Email        string              `json:"e,omitempty"`
	Name         string              `json:"dn,omitempty"`
	Groups       []string            `json:"g,omitempty"`
	GroupGUIDs   []byte              `json:"gg,omitempty"`
	Overage      bool                `json:"go,omitempty"`
	Headers      map[string][]string `json:"hv,omitempty"`
	// OldHeaders are Headers as earlier gateways kept them, the values
	// joined by commas, under the key they used; see UnmarshalJSON. A
	// new key for the lists keeps earlier gateways (mid-upgrade, or after
	// a rollback) reading new sessions, without these headers, rather
	// than refusing them.
	OldHeaders   map[string]string `json:"h,omitempty"`
	SessionIndex string            `json:"si,omitempty"`
	IssuedAt     int64             `json:"iat"`
	Expires      int64             `json:"exp"`
}

// MarshalJSON packs the groups as GUIDs when every one is a GUID, as Entra's
// group object IDs are; otherwise it keeps them as strings.
func (s Session) MarshalJSON() ([]byte, error) {
	w := wireSession{
		Tenant: s.Tenant, NameID: s.NameID, NameIDFormat: s.NameIDFormat, Email: s.Email, Name: s.Name,
		Overage: s.GroupsOverage, Headers: s.Headers, SessionIndex: s.SessionIndex, IssuedAt: s.IssuedAt, Expires: s.Expires,
	}
	if packed, ok := packGUIDs(s.Groups); ok {
		w.GroupGUIDs = packed
	} else {
		w.Groups = s.Groups
	}
	return json.Marshal(w)
}

// UnmarshalJSON reverses MarshalJSON.
func (s *Session) UnmarshalJSON(data []byte) error {
	var w wireSession
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if len(w.GroupGUIDs)%16 != 0 {
		return errors.New("samlsp: malformed packed groups")
	}
	*s = Session{
		Tenant: w.Tenant, NameID: w.NameID, NameIDFormat: w.NameIDFormat, Email: w.Email, Name: w.Name,
		Groups: w.Groups, GroupsOverage: w.Overage, Headers: w.Headers, SessionIndex: w.SessionIndex,
		IssuedAt: w.IssuedAt, Expires: w.Expires,
	}
	if n := len(w.GroupGUIDs) / 16; n > 0 {
		// Every GUID in one string, each group a slice of it: one
		// allocation rather than two per group, and less for a cached
		// session to hold.
		all := make([]byte, 0, 36*n)
		for i := 0; i < len(w.GroupGUIDs); i += 16 {
			all = appendGUID(all, w.GroupGUIDs[i:i+16])
		}
		joined := string(all)
		s.Groups = slices.Grow(s.Groups, n)
		for i := range n {
			s.Groups = append(s.Groups, joined[36*i:36*(i+1)])
		}
	}
	if s.Headers == nil && w.OldHeaders != nil {
		// A session made before the values were kept apart: the
		// upstream sees the comma-joined value as it used to, read as
		// the list it always was (a value with a comma in it was
		// already two). Such sessions end within the session lifetime.
		s.Headers = make(map[string][]string, len(w.OldHeaders))
		for name, v := range w.OldHeaders {
			s.Headers[name] = strings.Split(v, ",")
		}
	}
	return nil
}

// packGUIDs packs lower-case canonical GUIDs (as Entra sends group object
// IDs) into 16 bytes each. It reports false if any is not one, so that
// unpacking gives back exactly the strings it was given.
func packGUIDs(groups []string) ([]byte, bool) {
	if len(groups) == 0 {
		return nil, false
	}
	out := make([]byte, 0, 16*len(groups))
	for _, g := range groups {
		if len(g) != 36 || g[8] != '-' || g[13] != '-' || g[18] != '-' || g[23] != '-' {
			return nil, false
		}
		b, err := hex.DecodeString(g[0:8] + g[9:13] + g[14:18] + g[19:23] + g[24:36])
		if err != nil || formatGUID(b) != g {
			return nil, false
		}
		out = append(out, b...)
	}
	return out, true
}

func formatGUID(b []byte) string {
	return string(appendGUID(make([]byte, 0, 36), b))
}

// appendGUID appends the 16 bytes of b as a lower-case canonical GUID.
func appendGUID(dst, b []byte) []byte {
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:16])
}
