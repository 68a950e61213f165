package gateway

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TestLogsHoldNoSecrets runs logins (good and bad), proxied requests and
// a logout with the debug level on, and checks that the log names what
// happened (an audit line per login, an access line per request) but never
// holds a session cookie, a SAML response, a session key or the SP key.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	tg := newTestGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("doc")) }), "")
	var logs syncbuf.Buffer
	cfg := *tg.cfg
	cfg.Log.Level = slog.LevelDebug
	gw, err := Build(context.Background(), &cfg, Deps{
		Registry: prometheus.NewRegistry(),
		Logger:   slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	tenant, _ := gw.Provider().CurrentTenants().Get("acme")
	good := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: tenant.EntityID}, "")
	rec := postForm(gw, good)
	session := sessionOf(rec)
	if session == nil {
		t.Fatalf("login: %d", rec.Code)
	}
	bad := tg.idp.PostForm(t, samltest.Response{Destination: tenant.ACSURL.String(), Audience: "https://other.example"}, "")
	postForm(gw, bad)
	get(t, gw.PublicHandler(), "/docs?q=1", session)
	get(t, gw.PublicHandler(), samlsp.LoginPath+"acme?return_to=%2Fdocs")
	get(t, gw.PublicHandler(), samlsp.LogoutPath, session)

	out := logs.String()
	if n := strings.Count(out, `"msg":"login"`); n != 2 {
		t.Errorf("%d audit lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, `"msg":"request"`) || !strings.Contains(out, `"reason":"audience"`) {
		t.Errorf("the log lacks the access line or the failure's reason:\n%s", out)
	}
	keyFile, err := os.ReadFile(filepath.Join(filepath.Dir(tg.cfg.Path), "sp.key"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"session cookie":       session.Value,
		"SAML response":        good.Get("SAMLResponse")[:64],
		"failed SAML response": bad.Get("SAMLResponse")[:64],
		"hash key":             base64.StdEncoding.EncodeToString(tg.cfg.Session.Keys[0].Hash),
		"SP key":               strings.Split(string(keyFile), "\n")[1],
	}
	for what, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds the %s", what)
		}
	}
}
