package proxy_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/proxy"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// recordingConn keeps the bytes the upstream server read from one
// connection since the last take.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := bytes.Clone(c.buf.Bytes())
	c.buf.Reset()
	return b
}

type recordingListener struct{ net.Listener }

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c}, nil
}

type connKey struct{}

// newRawUpstream starts an upstream, on 127.0.0.1, that answers each
// request (without a body) with the bytes of its head exactly as they
// arrived on the socket.
func newRawUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := r.Context().Value(connKey{}).(*recordingConn)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(c.take())
	}))
	srv.Listener = recordingListener{srv.Listener}
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// headerLines returns the lines of a raw request head that start with
// name and a colon, in any case, as they were sent.
func headerLines(head []byte, name string) []string {
	var out []string
	for line := range strings.SplitSeq(string(head), "\r\n") {
		if n, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(n, name) {
			out = append(out, line)
		}
	}
	return out
}

// TestIdentityHeaderBytes: what the upstream reads off the socket, byte
// for byte. Non-ASCII letters (UTF-8, obs-text to HTTP) go through
// unchanged; list values are quoted only where they would otherwise be
// ambiguous. The last case is why newSession refuses a NameID with white
// space at either end: the HTTP client trims it on the way.
func TestIdentityHeaderBytes(t *testing.T) {
	t.Parallel()
	const guid = "0b6e2b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c"
	sessions := map[string]*samlsp.Session{
		"unicode": {
			Tenant: "acme", NameID: "zoë.ångström@contoso.example", Email: "zoë.ångström@contoso.example", Name: "Zoë Ångström 日本",
			Groups: []string{guid, "Zürich Team"},
		},
		"lists": {
			Tenant: "acme", NameID: "b.simon@contoso.example",
			Groups:  []string{"Finance,00000000-0000-0000-0000-00000000ad01", `say "hi"`, " padded ", `DOMAIN\group`, "", guid},
			Headers: map[string][]string{"X-Remote-Department": {"Legal, EMEA", "Litigation Support"}},
		},
		"padded": {Tenant: "acme", NameID: "admin@contoso.example ", Name: " Admin"},
	}
	tests := []struct {
		session string
		want    []string // header lines, as sent
	}{
		{"unicode", []string{
			"X-Remote-User: zoë.ångström@contoso.example",
			"X-Remote-Email: zoë.ångström@contoso.example",
			"X-Remote-Name: Zoë Ångström 日本",
			"X-Remote-Groups: " + guid + ",Zürich Team",
		}},
		{"lists", []string{
			`X-Remote-Groups: "Finance,00000000-0000-0000-0000-00000000ad01","say \"hi\""," padded ","DOMAIN\\group","",` + guid,
			`X-Remote-Department: "Legal, EMEA",Litigation Support`,
		}},
		{"padded", []string{
			"X-Remote-User: admin@contoso.example",
			"X-Remote-Name: Admin",
		}},
	}
	up := newRawUpstream(t)
	g := newGateway(t, up.URL)
	g.auth.sessions = sessions
	for _, tt := range tests {
		t.Run(tt.session, func(t *testing.T) {
			resp, head := g.do(t, http.MethodGet, "/raw", http.Header{"Cookie": {"ssogw_session=" + tt.session}}, nil)
			wantStatus(t, resp, head, http.StatusOK)
			for _, want := range tt.want {
				name, _, _ := strings.Cut(want, ":")
				if got := headerLines(head, name); !slices.Equal(got, []string{want}) {
					t.Errorf("upstream %s: got %q, want %q", name, got, []string{want})
				}
			}
		})
	}
}

// TestListHeadersUpstream: after a real login, the upstream parses
// X-Remote-Groups (and a tenant's own header) back to exactly the values
// the IdP sent, which are the values allowed_groups was checked against:
// a group named with a comma and an allowed group's ID neither passes
// allowed_groups nor reaches the upstream as that ID.
func TestListHeadersUpstream(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	groupsOf := func(values ...string) samltest.Attribute {
		return samltest.Attribute{Name: samlsp.ClaimGroups, Values: values}
	}
	smuggler := "Finance," + allowedGroup

	resp, body := g.login(t, tenantPolicy, nil, groupsOf(smuggler))
	wantStatus(t, resp, body, http.StatusForbidden)
	if got := loginsCounted(t, g.samlReg, tenantPolicy, "failure", samlsp.ReasonGroupDenied); got != 1 {
		t.Errorf("logins of %s refused as %s: got %v, want 1", tenantPolicy, samlsp.ReasonGroupDenied, got)
	}

	tests := []struct {
		name   string
		tenant string
		groups []string
		dept   []string
	}{
		{"GUIDs only", tenantPolicy, []string{allowedGroup, "5f1d9a20-aaaa-4bbb-8ccc-dddddddddddd"}, nil},
		{"a comma, a quote, white space, an empty name and GUIDs", tenantPolicy,
			[]string{"Finance,00000000-0000-0000-0000-00000000ad01", `say "hi"`, " padded ", `DOMAIN\group`, "", allowedGroup, "5f1d9a20-aaaa-4bbb-8ccc-dddddddddddd"}, nil},
		{"the smuggling name beside the allowed group", tenantPolicy, []string{smuggler, allowedGroup}, nil},
		{"a tenant's own header", tenantDept, []string{"g1"}, []string{"Legal, EMEA", " Litigation ", `"quoted"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			extra := []samltest.Attribute{groupsOf(tt.groups...)}
			if tt.dept != nil {
				extra = append(extra, samltest.Attribute{Name: claimDepartment, Values: tt.dept})
			}
			h := g.upstreamSees(t, g.signIn(t, tt.tenant, nil, extra...))
			raw := only(h, proxy.HeaderGroups)
			if len(raw) != 1 {
				t.Fatalf("upstream %s: got %q, want one value", proxy.HeaderGroups, raw)
			}
			got, err := proxy.ParseList(raw[0])
			if err != nil || !slices.Equal(got, tt.groups) {
				t.Errorf("upstream %s %q parses to %q, %v; want %q", proxy.HeaderGroups, raw[0], got, err, tt.groups)
			}
			// allowed_groups saw the raw values; the upstream sees the
			// same set, so it holds an allowed ID exactly when the IdP
			// sent that ID.
			if gotAllowed, sent := slices.Contains(got, allowedGroup), slices.Contains(tt.groups, allowedGroup); gotAllowed != sent {
				t.Errorf("upstream groups %q: got the allowed group %v, want %v", got, gotAllowed, sent)
			}
			if tt.dept != nil {
				raw := only(h, "X-Remote-Department")
				if len(raw) != 1 {
					t.Fatalf("upstream X-Remote-Department: got %q, want one value", raw)
				}
				if got, err := proxy.ParseList(raw[0]); err != nil || !slices.Equal(got, tt.dept) {
					t.Errorf("upstream X-Remote-Department %q parses to %q, %v; want %q", raw[0], got, err, tt.dept)
				}
			}
		})
	}
}
