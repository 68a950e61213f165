package samlsp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestDebugAssertionLog: with log.debug_assertion_tenant, that tenant's
// SAML responses are logged with what explains a failed login (issuer,
// audience, conditions, claim names) and without the user's identity,
// attribute values, signatures or certificates; other tenants' are not
// logged at all.
func TestDebugAssertionLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var log bytes.Buffer
	f.p.log = slog.New(slog.NewJSONHandler(&log, nil))
	set := *f.p.currentSettings()
	set.debugTenant = acme
	f.p.settings.Store(&set)

	for _, signing := range []samltest.Signing{samltest.SignAssertion, samltest.SignBoth} {
		log.Reset()
		resp := f.response(acme, func(r *samltest.Response) { r.Signing = signing })
		form := f.idps[acme].PostForm(t, resp, "")
		if ck := sessionCookieOf(f.postACS(acme, form)); ck == nil {
			t.Fatal("login failed")
		}
		raw, _ := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
		var got string
		for line := range strings.Lines(log.String()) {
			if strings.Contains(line, "SAML response (redacted") {
				got = line
			}
		}
		for _, want := range []string{"SAML response (redacted", `"tenant":"acme"`, "Issuer", "AudienceRestriction", ClaimEmail, "[redacted]"} {
			if !strings.Contains(got, want) {
				t.Errorf("%v: the debug line lacks %q:\n%s", signing, want, got)
			}
		}
		secrets := []string{"b.simon@acme.example", "b.simon", base64.StdEncoding.EncodeToString(f.idps[acme].Cert.Raw)[:40]}
		for _, v := range []string{"SignatureValue", "DigestValue"} {
			if i := bytes.Index(raw, []byte(v+">")); i >= 0 {
				end := bytes.IndexByte(raw[i+len(v)+1:], '<')
				secrets = append(secrets, string(raw[i+len(v)+1:i+len(v)+1+end]))
			}
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(got, s) {
				t.Errorf("%v: the debug line contains %q", signing, s)
			}
		}
	}

	log.Reset()
	if ck := sessionCookieOf(f.postACS(initech, f.idps[initech].PostForm(t, f.response(initech, nil), ""))); ck == nil {
		t.Fatal("login at initech failed")
	}
	if strings.Contains(log.String(), "SAML response (redacted") {
		t.Error("another tenant's response was logged")
	}
}

func TestRedactedXMLRefusesGarbage(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "not xml", "<a><b></a>"} {
		if _, err := redactedXML([]byte(doc)); err == nil {
			t.Errorf("redactedXML(%q): no error", doc)
		}
	}
}

// TestAuditLine: every login attempt gets one "login" line with tenant,
// flow, result, reason, client address, correlation ID and the assertion
// ID and NameID: verified on success, marked unverified on a refusal.
func TestAuditLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var log bytes.Buffer
	f.p.log = slog.New(slog.NewJSONHandler(&log, nil))
	line := func() map[string]any {
		t.Helper()
		var found map[string]any
		for l := range strings.Lines(log.String()) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			if m["msg"] == "login" {
				if found != nil {
					t.Fatalf("two login lines:\n%s", log.String())
				}
				found = m
			}
		}
		log.Reset()
		return found
	}

	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, nil), ""))
	ok := line()
	for k, want := range map[string]any{"tenant": "acme", "flow": "idp", "result": "success", "reason": "none",
		"name_id": "b.simon@acme.example", "client_ip": "192.0.2.1", "correlation_id": rec.Header().Get("X-Correlation-Id")} {
		if ok[k] != want {
			t.Errorf("success line %s: got %v, want %v", k, ok[k], want)
		}
	}
	if id, _ := ok["assertion_id"].(string); id == "" {
		t.Errorf("success line has no assertion_id: %v", ok)
	}

	l := f.startLogin(acme, "")
	f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
		r.InResponseTo = l.requestID
		r.Audience = "https://other.example/app"
	}), l.relayState), l.tracker)
	bad := line()
	for k, want := range map[string]any{"flow": "sp", "result": "failure", "reason": "audience", "name_id_unverified": "b.simon@acme.example"} {
		if bad[k] != want {
			t.Errorf("failure line %s: got %v, want %v", k, bad[k], want)
		}
	}
	if bad["name_id"] != nil || bad["assertion_id_unverified"] == "" || bad["error"] == nil {
		t.Errorf("failure line: %v", bad)
	}
}
