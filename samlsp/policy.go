package samlsp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// enforcePolicy holds a session to its tenant's attribute policy as the
// tenant is configured now. It is the one place that policy is applied:
// at login (atLogin), to the session newSession has just built from a
// verified assertion, and on every later request, to a copy of the
// decoded session (sessioncache.go), so that a reload takes effect at once.
//
// It refuses, with the reason for the log and metric:
//   - a NameID or email with white space at either end (checkIdentityEnds);
//   - a user none of whose groups is in allowed_groups, and a groups
//     overage while allowed_groups is set (the groups are then unknown).
//     Once a session exists, the groups are checked only when the tenant
//     keeps them in sessions: otherwise there are none left to check, and
//     allowed_groups was checked at login.
//
// Then it drops what the tenant does not keep: email, name and groups
// when not kept, and the headers of claims no longer mapped. A display
// name is trimmed, which also holds sessions made by earlier gateways to
// what newSession makes now.
func (t *Tenant) enforcePolicy(s *Session, atLogin bool) error {
	if err := checkIdentityEnds(s); err != nil {
		return err
	}
	s.Name = strings.TrimSpace(s.Name)
	if atLogin || t.keep.groups {
		switch {
		case s.GroupsOverage && t.allowedGroups != nil:
			return failure(ReasonGroupOverage, http.StatusForbidden,
				"Your account is in too many groups for Microsoft Entra ID to list them when you sign in, so this service cannot check that you may use it. Ask your administrator to send only the groups assigned to this application (Entra: Attributes & Claims, groups claim, \"Groups assigned to the application\").",
				errors.New("groups overage (groups.link claim) and allowed_groups is set"))
		case !t.groupAllowed(s.Groups):
			return failure(ReasonGroupDenied, http.StatusForbidden, "Your account is not in a group that may use this service. Ask your administrator for access.", fmt.Errorf("none of %d groups is allowed", len(s.Groups)))
		}
	}
	// Only now, after the checks saw them, drop what the tenant does not
	// keep in its sessions.
	if !t.keep.email {
		s.Email = ""
	}
	if !t.keep.name {
		s.Name = ""
	}
	if !t.keep.groups {
		s.Groups = nil
	}
	for name := range s.Headers {
		if _, ok := t.headers[name]; !ok {
			delete(s.Headers, name)
		}
	}
	return nil
}

// groupAllowed reports whether a user holding groups may sign in.
func (t *Tenant) groupAllowed(groups []string) bool {
	if t.allowedGroups == nil {
		return true
	}
	for _, g := range groups {
		if t.allowedGroups[g] {
			return true
		}
	}
	return false
}

// checkIdentityEnds refuses a session whose NameID or email has white
// space at either end. The HTTP client trims SP and HTAB from header
// values, and many upstreams trim any white space, so the upstream would
// see "admin@contoso.example" for the NameID "admin@contoso.example ": two
// identities of the IdP, one user upstream, while the session and the
// log kept them apart. These are identities, so they are refused rather
// than changed; a display name is trimmed instead, and group and header
// values keep their white space, which the proxy quotes.
func checkIdentityEnds(s *Session) error {
	for _, v := range []struct{ what, value string }{{"NameID", s.NameID}, {"email", s.Email}} {
		if v.value != strings.TrimSpace(v.value) {
			return failure(ReasonMalformed, http.StatusBadRequest,
				"Your organisation's sign-in service sent a user name or email address that begins or ends with a space, which this service cannot pass on unchanged. Ask your administrator to correct it in Microsoft Entra ID.",
				fmt.Errorf("%s %q has white space at its start or end", v.what, v.value))
		}
	}
	return nil
}
