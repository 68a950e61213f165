package demo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/gateway"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// startDemo runs the demo on free ports and returns its URLs, output and
// logs (as "sso-gateway demo" shows them without -v).
func startDemo(t *testing.T) (URLs, *syncbuf.Buffer, *syncbuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan URLs, 1)
	out, logs := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", IDPListen: "127.0.0.1:0", UpstreamListen: "127.0.0.1:0",
			Dir:   t.TempDir(),
			LogTo: logs,
			Ready: func(u URLs) { ready <- u },
			Build: buildGateway,
		}, out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo.Run: %v", err)
		}
	})
	select {
	case u := <-ready:
		return u, out, logs
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not start")
	}
	return URLs{}, nil, nil
}

// browser is an HTTP client with cookies that asks for HTML like a browser.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

func (b *browser) do(method, target string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// The IdP refuses cross-origin credential posts; a browser sends
		// its own origin.
		u, _ := url.Parse(target)
		req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// submit posts the page's first form with its fields, overridden by set,
// as a browser would (including the IdP's auto-submitting form).
func (b *browser) submit(page, base string, set map[string]string) (*http.Response, string) {
	b.t.Helper()
	action, fields := parseForm(b.t, page)
	for k, v := range set {
		fields.Set(k, v)
	}
	u, err := url.Parse(base)
	if err != nil {
		b.t.Fatal(err)
	}
	a, err := u.Parse(action)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(http.MethodPost, a.String(), fields)
}

func parseForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var action string
	fields := url.Values{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			attr := map[string]string{}
			for _, a := range n.Attr {
				attr[a.Key] = a.Val
			}
			switch n.Data {
			case "form":
				if action == "" {
					action = attr["action"]
				}
			case "input":
				if attr["name"] != "" {
					fields.Set(attr["name"], attr["value"])
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if action == "" {
		t.Fatalf("no form in page:\n%s", page)
	}
	return action, fields
}

// TestDemo drives the running demo like a user: SP-initiated login through
// the organisation page and the IdP's form, an upload and download through
// the gateway, IdP-initiated login from My Apps into the second tenant,
// and logout. B.Simon signs in at the IdP with the email address, as the
// README says, in whatever case.
func TestDemo(t *testing.T) {
	u, out, logs := startDemo(t)
	for _, want := range []string{u.Gateway + "/", "password " + u.Password, "B.Simon@contoso.example", "/auth/api/v1/saml/login/contoso"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("welcome text lacks %q:\n%s", want, out)
		}
	}
	b := newBrowser(t)

	resp, _ := b.do(http.MethodGet, u.Gateway+"/?from=test", nil)
	if !strings.HasPrefix(resp.Request.URL.Path, "/auth/api/v1/saml/select") {
		t.Fatalf("an anonymous visit landed on %s, want the organisation page", resp.Request.URL)
	}
	resp, page := b.do(http.MethodGet, u.Gateway+"/auth/api/v1/saml/select?"+url.Values{"q": {UserEmail}, "return_to": {"/?from=test"}}.Encode(), nil)
	if !strings.HasPrefix(resp.Request.URL.String(), u.IDP) {
		t.Fatalf("the organisation page led to %s, want the IdP", resp.Request.URL)
	}
	// The IdP's page pre-fills the user field from login_hint (a script;
	// the browser test runs it).
	if got := resp.Request.URL.Query().Get("login_hint"); got != UserEmail {
		t.Errorf("login_hint at the IdP: got %q, want %q", got, UserEmail)
	}
	resp, page = b.submit(page, resp.Request.URL.String(), map[string]string{"user": strings.ToUpper(UserEmail), "password": u.Password})
	resp, page = b.submit(page, resp.Request.URL.String(), nil) // the auto-posting form
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != u.Gateway+"/?from=test" {
		t.Fatalf("after login: got %d at %s, want the requested page", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{UserEmail, "contoso", "B. Simon", GroupDocUsers} {
		if !strings.Contains(page, want) {
			t.Errorf("the document page does not show %q", want)
		}
	}

	body := strings.Repeat("privileged and confidential\n", 1000)
	req, _ := http.NewRequest(http.MethodPut, u.Gateway+"/documents/demo-test.txt", strings.NewReader(body))
	put, err := b.client.Do(req)
	if err != nil || put.StatusCode != http.StatusCreated {
		t.Fatalf("upload through the gateway: %v %v", err, put)
	}
	put.Body.Close()
	if _, got := b.do(http.MethodGet, u.Gateway+"/documents/demo-test.txt", nil); got != body {
		t.Errorf("download through the gateway returned %d bytes, want %d", len(got), len(body))
	}

	resp, page = b.do(http.MethodGet, u.IDP+"/login/fabrikam", nil)
	resp, page = b.submit(page, resp.Request.URL.String(), nil)
	if resp.Request.URL.String() != u.Gateway+"/" || !strings.Contains(page, `id="remote-tenant">fabrikam<`) {
		t.Fatalf("IdP-initiated login ended at %s, want / signed in to fabrikam", resp.Request.URL)
	}

	_, page = b.do(http.MethodGet, u.Gateway+"/auth/api/v1/saml/logout", nil)
	if !strings.Contains(page, "You have been signed out") {
		t.Fatalf("logout page: %s", page)
	}
	req, _ = http.NewRequest(http.MethodGet, u.Gateway+"/api/whoami", nil)
	req.Header.Set("Accept", "application/json")
	after, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	after.Body.Close()
	if after.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: got %d, want 401", after.StatusCode)
	}

	// A user who is not signed in at the IdP clicks a My Apps tile: the
	// IdP asks for the password, then finishes the IdP-initiated login.
	fresh := newBrowser(t)
	resp, page = fresh.do(http.MethodGet, u.IDP+"/login/contoso", nil)
	resp, page = fresh.submit(page, resp.Request.URL.String(), map[string]string{"user": strings.ToLower(UserEmail), "password": u.Password, "next": "/login/contoso"})
	resp, page = fresh.submit(page, resp.Request.URL.String(), nil)
	if resp.Request.URL.String() != u.Gateway+"/" || !strings.Contains(page, `id="remote-tenant">contoso<`) {
		t.Fatalf("IdP-initiated login from a fresh browser ended at %s, want / signed in to contoso", resp.Request.URL)
	}

	_, metrics := b.do(http.MethodGet, u.Admin+"/metrics", nil)
	for _, want := range []string{
		`sso_gateway_logins_total{flow="sp",reason="none",result="success",tenant="contoso"} 1`,
		`sso_gateway_logins_total{flow="idp",reason="none",result="success",tenant="fabrikam"} 1`,
		`sso_gateway_logins_total{flow="idp",reason="none",result="success",tenant="contoso"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Without -v the demo shows each login's audit line, and not the
	// access log or the start-up chatter.
	audit := 0
	for l := range strings.Lines(logs.String()) {
		switch {
		case strings.Contains(l, "msg=login ") && strings.Contains(l, "result=success"):
			audit++
		case strings.Contains(l, "level=WARN"), strings.Contains(l, "level=ERROR"):
		default:
			t.Errorf("the demo logged %q, want only logins, warnings and errors", l)
		}
	}
	if audit != 3 {
		t.Errorf("got %d successful login lines, want 3:\n%s", audit, logs)
	}
}

// TestDemoAddressInUse: an address another process holds is reported with
// the flag that changes it.
func TestDemoAddressInUse(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	addr := taken.Addr().String()
	free := "127.0.0.1:0"
	tests := []struct {
		flag string
		o    Options
	}{
		{"-listen", Options{Listen: addr, AdminListen: free, IDPListen: free, UpstreamListen: free}},
		{"-admin-listen", Options{Listen: free, AdminListen: addr, IDPListen: free, UpstreamListen: free}},
		{"-idp-listen", Options{Listen: free, AdminListen: free, IDPListen: addr, UpstreamListen: free}},
		{"-upstream-listen", Options{Listen: free, AdminListen: free, IDPListen: free, UpstreamListen: addr}},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			t.Parallel()
			tt.o.Dir = t.TempDir()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			o := tt.o
			o.Build = buildGateway
			err := Run(ctx, o, io.Discard)
			want := "demo: listen " + addr + ": address already in use: another process holds it; change the " + tt.flag + " flag"
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

// TestQuietLogger: without -v the demo's logger passes on login audit
// lines, warnings and errors, as text with durations in seconds.
func TestQuietLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		verbose bool
		want    []string
		notWant []string
	}{
		{false, []string{"msg=login component=gateway tenant=contoso", "level=WARN msg=\"IdP metadata refresh failed\" component=gateway retry_in_seconds=30", "level=ERROR msg=broken"}, []string{"serving", "msg=request"}},
		{true, []string{"msg=login component=gateway tenant=contoso", "msg=serving", "msg=request", "msg=broken"}, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("verbose=%t", tt.verbose), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := NewLogger(&buf, tt.verbose).With("component", "gateway")
			log.Info("serving", "public", "127.0.0.1:8080")
			log.Info("request", "path", "/")
			log.Info("login", "tenant", "contoso", "result", "success")
			log.Warn("IdP metadata refresh failed", slog.Duration("retry_in", 30*time.Second))
			log.Error("broken")
			for _, w := range tt.want {
				if !strings.Contains(buf.String(), w) {
					t.Errorf("got %q, want it to contain %q", buf.String(), w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(buf.String(), w) {
					t.Errorf("got %q, want no %q", buf.String(), w)
				}
			}
		})
	}
}

// TestWriteConfigTenantHosts: ConfigOptions.TenantHosts become the tenants'
// hosts in the generated config, which loads.
func TestWriteConfigTenantHosts(t *testing.T) {
	t.Parallel()
	idpURL, _ := url.Parse("http://127.0.0.1:8081")
	identity, err := NewIDP(idpURL, "secret", nil)
	if err != nil {
		t.Fatal(err)
	}
	name, err := WriteConfig(t.TempDir(), ConfigOptions{
		PublicURL:   "http://127.0.0.1:8080",
		Listen:      "127.0.0.1:8080",
		AdminListen: "127.0.0.1:9090",
		Upstream:    "http://127.0.0.1:8082",
		TenantHosts: map[string][]string{"fabrikam": {"docs.fabrikam.test", "fabrikam.example.net"}},
	}, identity)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(name, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("generated config: %v", err)
	}
	for _, tn := range cfg.Tenants {
		want := map[string]string{"contoso": "", "fabrikam": "docs.fabrikam.test fabrikam.example.net"}[tn.ID]
		if got := strings.Join(tn.Hosts, " "); got != want {
			t.Errorf("tenant %s hosts: got %q, want %q", tn.ID, got, want)
		}
	}
}

// buildGateway is what cmd/sso-gateway passes the demo as Options.Build.
func buildGateway(ctx context.Context, cfg *config.Config, log *slog.Logger) (Gateway, error) {
	return gateway.Build(ctx, cfg, gateway.Deps{Logger: log, Registry: prometheus.NewRegistry()})
}
