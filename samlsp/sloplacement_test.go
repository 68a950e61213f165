package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// deflated is b compressed as the HTTP-Redirect binding sends it.
func deflated(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSLOMessagePlacement: crewjam parses the logout message in the URL's
// query whatever the method, inflating it, and otherwise the one in a
// POSTed body; nobody reads a GET's body. A DOCTYPE or a deflate bomb, in
// SAMLRequest or SAMLResponse, in either binding and either place, is
// refused before crewjam parses anything: the gateway's own refusal is
// logged and counted, never crewjam's "not accepted", and the local
// session ends. A message in a GET's body is never read at all.
func TestSLOMessagePlacement(t *testing.T) {
	t.Parallel()
	const samlp = `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"`
	enc := base64.StdEncoding.EncodeToString
	for _, param := range []string{"SAMLRequest", "SAMLResponse"} {
		root, flow := "LogoutRequest", flowIDP
		if param == "SAMLResponse" {
			root, flow = "LogoutResponse", flowSP
		}
		benign := []byte(`<samlp:` + root + ` ` + samlp + ` ID="_benign" Version="2.0"/>`)
		doctype := []byte(`<!DOCTYPE samlp:` + root + ` [<!ENTITY e "x">]><samlp:` + root + ` ` + samlp + ` ID="_x" Version="2.0">&e;</samlp:` + root + `>`)
		bomb := samltest.DeflateBomb([]byte(`<samlp:`+root+` `+samlp+` ID="_bomb" Version="2.0" `), 10<<20)
		attacks := []struct {
			name string
			// plain is what the HTTP-POST binding sends (base64 of the
			// XML), deflated what HTTP-Redirect sends (inflated by the
			// reader). A bomb is the same bytes either way.
			plain, deflated []byte
			// redirect and post are in the refusal's log line, for the
			// message in a GET's query and in a POST's body.
			redirect, post string
		}{
			{"DOCTYPE", doctype, deflated(t, doctype), "DOCTYPE", "DOCTYPE"},
			{"deflate bomb", bomb, bomb, "inflates to more than", "not well-formed XML"},
		}
		for _, at := range attacks {
			form := func(v []byte) string { return url.Values{param: {enc(v)}, "RelayState": {"x"}}.Encode() }
			placements := []struct {
				name        string
				method      string
				query, body string
				logged      string // "": not read at all
			}{
				{"Redirect binding: GET, in the query", http.MethodGet, form(at.deflated), "", at.redirect},
				{"POST binding: in the body", http.MethodPost, "", form(at.plain), at.post},
				{"POST, in the query", http.MethodPost, form(at.deflated), "RelayState=x", errMessageInURL.Error()},
				// The shape of the bypass: the body's message passes the
				// checks, and crewjam would read the query's.
				{"POST, in the query, a harmless one in the body", http.MethodPost, form(at.deflated), form(benign), errMessageInURL.Error()},
				{"POST, in the query, deflated as in the body", http.MethodPost, form(at.plain), form(benign), errMessageInURL.Error()},
				{"GET, in the body", http.MethodGet, "", form(at.plain), ""},
			}
			for _, pl := range placements {
				t.Run(param+"/"+at.name+"/"+pl.name, func(t *testing.T) {
					t.Parallel()
					f := newFixture(t)
					var log bytes.Buffer
					f.p.log = slog.New(slog.NewTextHandler(&log, nil))
					session := f.sloSignIn(acme, nil)
					log.Reset()
					target := SLOPath + acme
					if pl.query != "" {
						target += "?" + pl.query
					}
					req := httptest.NewRequest(pl.method, target, strings.NewReader(pl.body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Accept", "text/html")
					req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
					rec := f.serve(req)
					if rec.Code != http.StatusBadRequest {
						t.Errorf("got status %d, want 400", rec.Code)
					}
					if strings.Contains(log.String(), "not accepted") {
						t.Errorf("crewjam parsed the message: log %q", log.String())
					}
					if pl.logged == "" {
						if log.Len() != 0 || !strings.Contains(rec.Body.String(), "The sign-out message is missing.") {
							t.Errorf("got log %q and page %q, want the message unread and missing", log.String(), rec.Body.String())
						}
						for _, result := range []string{"success", "failure", "local"} {
							if got := f.logoutCount(acme, flow, result); got != 0 {
								t.Errorf("got %v %s %s logouts, want none", got, flow, result)
							}
						}
						return
					}
					if !strings.Contains(log.String(), "logout message refused") || !strings.Contains(log.String(), pl.logged) {
						t.Errorf("got log %q, want the refusal, saying %q", log.String(), pl.logged)
					}
					if got := f.logoutCount(acme, flow, "failure"); got != 1 {
						t.Errorf("got %v %s logout failures, want 1", got, flow)
					}
					if !clearsSession(rec) {
						t.Errorf("the local session was not ended: %q", rec.Header().Values("Set-Cookie"))
					}
				})
			}
		}
	}
}

// TestSLOPostBinding: a signed LogoutRequest in a POSTed body (the
// HTTP-POST binding) is still accepted, also with unrelated parameters in
// the URL: only a logout message there is refused.
func TestSLOPostBinding(t *testing.T) {
	t.Parallel()
	for _, query := range []string{"", "?x=1&RelayState=ignored"} {
		t.Run("query "+query, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			session := f.sloSignIn(acme, func(r *samltest.Response) { r.SessionIndex = "_idp-session" })
			u, _ := f.idpLogoutRequest(acme, func(r *samltest.LogoutRequest) { r.Unsigned = true })
			doc := samltest.ParseXML(t, inflate(t, u.Query().Get("SAMLRequest")))
			f.idps[acme].Resign(t, doc.Root(), samltest.Signer{})
			body := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(samltest.XMLBytes(t, doc))}, "RelayState": {"idp-relay-state"}}.Encode()
			req := httptest.NewRequest(http.MethodPost, SLOPath+acme+query, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
			rec := f.serve(req)
			if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), f.tenant(acme).IDP().SLOURL) {
				t.Fatalf("got %d to %q, want 302 to the IdP: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
			}
			if got := f.logoutCount(acme, flowIDP, "success"); got != 1 {
				t.Errorf("got %v idp logout successes, want 1", got)
			}
			if !clearsSession(rec) {
				t.Errorf("the session was not ended: %q", rec.Header().Values("Set-Cookie"))
			}
		})
	}
}
