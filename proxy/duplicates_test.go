package proxy_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDuplicateSessionCookieThroughProxy: with the real service provider
// behind the proxy, a request that names the session cookie twice, in one
// Cookie line or across two, reaches nothing upstream. A navigation is sent
// to sign in with every copy expired; a script's request gets 401. Each is
// counted as a duplicate.
func TestDuplicateSessionCookieThroughProxy(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	cookie := g.signIn(t, tenantDept, nil)
	session, _, _ := strings.Cut(cookie, ";")
	name, _, _ := strings.Cut(session, "=")
	// Signed in, one copy: the upstream answers.
	resp, body := g.raw(t, "GET /whoami HTTP/1.1", "Host: docs.example.com", "Cookie: "+cookie, "Connection: close")
	wantStatus(t, resp, body, http.StatusOK)

	navigation := []string{"Accept: text/html", "Sec-Fetch-Mode: navigate"}
	tests := []struct {
		name    string
		lines   []string
		status  int
		expired bool
	}{
		{"twice in one line, navigation", append([]string{"Cookie: " + cookie + "; " + name + "=planted"}, navigation...), http.StatusFound, true},
		{"across two lines, navigation", append([]string{"Cookie: " + name + "=planted", "Cookie: " + cookie}, navigation...), http.StatusFound, true},
		{"across two lines, a script's request", []string{"Cookie: " + cookie, "Cookie: " + name + "=planted", "Accept: application/json", "Sec-Fetch-Mode: cors"}, http.StatusUnauthorized, false},
	}
	for i, tt := range tests {
		lines := append([]string{"GET /docs/deep/page HTTP/1.1", "Host: docs.example.com", "Connection: close"}, tt.lines...)
		resp, body := g.raw(t, lines...)
		wantStatus(t, resp, body, tt.status)
		var expired []string
		for _, line := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(line, name+"=;") && strings.Contains(line, "Max-Age=0") {
				expired = append(expired, line)
			}
		}
		if tt.expired && (len(expired) != 2 || !strings.Contains(expired[1], "Partitioned")) {
			t.Errorf("%s: got expiring Set-Cookie %q, want the cookie and its partitioned twin", tt.name, expired)
		}
		if !tt.expired && len(expired) > 0 {
			t.Errorf("%s: got expiring Set-Cookie %q, want none", tt.name, expired)
		}
		if got := sessionRejections(t, g, "duplicate_cookie"); got != float64(i+1) {
			t.Errorf("%s: duplicate_cookie rejections: got %v, want %d", tt.name, got, i+1)
		}
	}
	wantMetrics(t, g.reg, map[string]int{"proxied": 1, "login_redirect": 2, "unauthenticated": 1}, map[string]int{"2xx": 1})
}

// sessionRejections is sso_gateway_session_rejections_total{reason} of g's
// service provider.
func sessionRejections(t *testing.T, g *samlGateway, reason string) float64 {
	t.Helper()
	families, err := g.samlReg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "sso_gateway_session_rejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no sso_gateway_session_rejections_total{reason=%q}", reason)
	return 0
}
