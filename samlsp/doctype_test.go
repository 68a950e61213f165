package samlsp

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestDOCTYPEAloneRefused: a genuine signed response with any DOCTYPE in
// front is refused as malformed, before its signature is checked, and no
// DTD or entity is ever fetched.
func TestDOCTYPEAloneRefused(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t, `<!ENTITY x "y">`)
			for _, doctype := range []string{
				`<!DOCTYPE samlp:Response>`,
				`<!DOCTYPE samlp:Response [<!ENTITY unused "x">]>`,
				`<!DOCTYPE samlp:Response SYSTEM "` + srv.URL + `/saml.dtd">`,
				`<!DOCTYPE samlp:Response [<!ENTITY % p SYSTEM "` + srv.URL + `/p.dtd"> %p;]>`,
				// A decoder without a CharsetReader stops at the
				// declaration, before the DOCTYPE; etree reads on.
				`<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE samlp:Response>`,
			} {
				t.Run(doctype, func(t *testing.T) {
					f := newFixture(t)
					l := f.startLogin(tenant, "")
					raw := append([]byte(doctype), samltest.XMLBytes(t, f.genuine(t, tenant, l, samltest.SignAssertion, nil))...)
					rec := f.post(t, tenant, raw, l)
					if rec.Code != http.StatusBadRequest {
						t.Errorf("got status %d, want 400", rec.Code)
					}
					f.checkRefused(t, tenant, rec, ReasonMalformed)
				})
			}
			srv.checkUntouched(t)
		})
	}
}

// TestSLODirectiveRefused: a logout message with a DOCTYPE, in either
// binding, is refused before crewjam parses it; the local session ends.
func TestSLODirectiveRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var log bytes.Buffer
	f.p.log = slog.New(slog.NewTextHandler(&log, nil))
	session := f.sloSignIn(acme, nil)
	u, _ := f.idpLogoutRequest(acme, nil)
	deflated, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflated)))
	if err != nil {
		t.Fatal(err)
	}
	doc = append([]byte(`<!DOCTYPE samlp:LogoutRequest [<!ENTITY e "x">]>`), doc...)
	var buf bytes.Buffer
	zw, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	zw.Write(doc)
	zw.Close()

	q := u.Query()
	q.Set("SAMLRequest", base64.StdEncoding.EncodeToString(buf.Bytes()))
	rec := f.sloGet(SLOPath+acme+"?"+q.Encode(), session)
	if rec.Code != http.StatusBadRequest || !strings.Contains(log.String(), "DOCTYPE") {
		t.Errorf("Redirect binding: %d, log %q", rec.Code, log.String())
	}
	if ck := sessionCookieOf(rec); ck != nil {
		t.Error("a session cookie was set")
	}
	if !clearsSession(rec) {
		t.Errorf("the local session was not ended: %q", rec.Header().Values("Set-Cookie"))
	}
	if got := f.logoutCount(acme, flowIDP, "failure"); got != 1 {
		t.Errorf("logouts{flow=idp,result=failure}: %v", got)
	}

	log.Reset()
	form := "SAMLRequest=" + strings.ReplaceAll(base64.StdEncoding.EncodeToString(doc), "+", "%2B")
	req := httptest.NewRequest(http.MethodPost, SLOPath+acme, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := f.serve(req); rec.Code != http.StatusBadRequest || !strings.Contains(log.String(), "DOCTYPE") {
		t.Errorf("POST binding: %d, log %q", rec.Code, log.String())
	}
}
