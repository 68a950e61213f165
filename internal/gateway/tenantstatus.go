package gateway

import (
	"strings"
	"time"

	"github.com/sso-gateway/sso-gateway/samlsp"
)

// tenantStatus is what is known about one tenant of the running gateway:
// one answer for /readyz, /tenants, the metrics and the page its users see.
type tenantStatus struct {
	ready bool
	// problems are the tenant's load problems and a failing metadata URL,
	// each with its key path.
	problems []string
	// kept means the tenant serves its last good metadata despite
	// problems.
	kept bool
	// transient means the tenant is not ready only because its metadata
	// URL has not delivered yet, which may change by itself.
	transient bool
	// loaded is when the metadata in use was loaded; zero if none.
	loaded time.Time
}

// tenantStatus describes tenant t under state st.
func (g *Gateway) tenantStatus(st *state, t *samlsp.Tenant) tenantStatus {
	s := tenantStatus{ready: t.Ready()}
	l := st.loads[t.ID]
	if l != nil {
		for _, p := range l.problems {
			s.problems = append(s.problems, p.Error())
		}
		s.kept = l.kept && s.ready
		s.loaded = l.loaded
	}
	if rs, ok := g.refresher.Status(t.ID); ok {
		s.loaded = rs.LastSuccess
		if rs.LastError != "" {
			s.problems = append(s.problems, urlKey(st, t.ID)+": "+rs.LastError)
		}
		// Waiting for its first document, or for a URL that does not
		// answer: another replica, or a later try, may do better. A
		// document that arrived and was refused will not mend itself.
		s.transient = !s.ready && (l == nil || len(l.problems) == 0) &&
			(rs.LastAttempt.IsZero() || rs.LastResult == "fetch_error")
	}
	return s
}

// urlKey is the key path of a tenant's idp_metadata_url.
func urlKey(st *state, id string) string {
	if l := st.loads[id]; l != nil {
		return l.key + ".idp_metadata_url"
	}
	return "idp_metadata_url"
}

// tenantProblem tells samlsp why a tenant has no metadata, and whether
// that may pass by itself.
func (g *Gateway) tenantProblem(id string) (string, bool) {
	st := g.state.Load()
	t, ok := g.provider.CurrentTenants().Get(id)
	if st == nil || !ok {
		return "unknown tenant", false
	}
	s := g.tenantStatus(st, t)
	if len(s.problems) == 0 {
		return "no IdP metadata yet", s.transient
	}
	return strings.Join(s.problems, "; "), s.transient
}
