package samlsp

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// signIn completes an IdP-initiated login at acme and returns the session
// cookie.
func (f *fixture) signIn() *http.Cookie {
	f.t.Helper()
	rec := f.postACS(acme, f.idps[acme].PostForm(f.t, f.response(acme, nil), ""))
	ck := sessionCookieOf(rec)
	if ck == nil {
		f.t.Fatalf("sign in: got %d: %s", rec.Code, rec.Body)
	}
	return ck
}

// TestSessionCookieRejects: anything but an intact, current cookie is no
// session; never a panic or an error.
func TestSessionCookieRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.signIn()
	remember, _ := f.p.rememberTenantCookie(acme)
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		return string(b)
	}
	tests := []struct {
		name  string
		value string
		cname string
	}{
		{"flipped byte at the start", flip(good.Value, 3), good.Name},
		{"flipped byte in the middle", flip(good.Value, len(good.Value)/2), good.Name},
		{"flipped byte at the end", flip(good.Value, len(good.Value)-2), good.Name},
		{"truncated", good.Value[:len(good.Value)-10], good.Name},
		{"empty", "", good.Name},
		{"garbage", "not-a-cookie", good.Name},
		{"base64 garbage", base64.URLEncoding.EncodeToString([]byte("1|2|3")), good.Name},
		{"another cookie's value", remember.Value, good.Name},
		{"session value under the tenant cookie's name", good.Value, remember.Name},
		{"without the __Host- prefix", good.Value, sessionCookie},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := f.authenticate(&http.Cookie{Name: tt.cname, Value: tt.value}); ok {
				t.Fatal("got a session, want none")
			}
		})
	}
	if _, ok := f.authenticate(good); !ok {
		t.Fatal("the intact cookie does not authenticate")
	}
}

func TestSessionCookieDuplicated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.signIn()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Add("Cookie", good.Name+"=forged")
	req.Header.Add("Cookie", good.Name+"="+good.Value)
	if _, ok := f.p.Authenticate(req); ok {
		t.Fatal("a planted cookie ahead of the real one yields a session; want none (fail closed)")
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.signIn()
	f.clock.Advance(8*time.Hour - time.Second)
	if _, ok := f.authenticate(good); !ok {
		t.Fatal("session expired before its lifetime")
	}
	f.clock.Advance(2 * time.Second)
	if _, ok := f.authenticate(good); ok {
		t.Fatal("session authenticates past its lifetime")
	}
}

// TestSessionKeyRotation: the first key encodes, every listed key decodes;
// a key that is no longer listed decodes nothing.
func TestSessionKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newSessionKey(t), newSessionKey(t)
	before := newFixture(t, withKeys(oldKey))
	cookie := before.signIn()

	for _, tt := range []struct {
		name string
		keys []SessionKey
		want bool
	}{
		{"old key only", []SessionKey{oldKey}, true},
		{"new key first, old key still listed", []SessionKey{newKey, oldKey}, true},
		{"old key retired", []SessionKey{newKey}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, withKeys(tt.keys...))
			if _, ok := f.authenticate(cookie); ok != tt.want {
				t.Fatalf("got authenticated %v, want %v", ok, tt.want)
			}
		})
	}

	rotated := newFixture(t, withKeys(newKey, oldKey))
	fresh := rotated.signIn()
	onlyOld := newFixture(t, withKeys(oldKey))
	if _, ok := onlyOld.authenticate(fresh); ok {
		t.Error("a cookie made after rotation is encoded with the old key; want the first (new) key")
	}
}

func TestSessionOfRemovedTenant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.signIn()
	ts, err := f.p.NewTenants(nil)
	if err != nil {
		t.Fatal(err)
	}
	f.p.SetTenants(ts)
	if _, ok := f.authenticate(good); ok {
		t.Fatal("session of a tenant that is no longer configured still authenticates")
	}
}

func TestSessionCookieOnPlainHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, withPublicURL("http://127.0.0.1:8080"))
	ck := f.signIn()
	if ck.Name != "ssogw_session" || ck.Secure {
		t.Fatalf("got %s Secure=%v, want ssogw_session without Secure on http", ck.Name, ck.Secure)
	}
}

// FuzzSessionCookie: arbitrary cookie values never authenticate and never
// panic.
func FuzzSessionCookie(f *testing.F) {
	fx := newFixture(f)
	good := fx.signIn()
	f.Add(good.Value)
	f.Add(good.Value[:len(good.Value)/2])
	f.Add("")
	f.Add("MTc5NTg3MjQ4NHxNa1lQ|AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", good.Name+"="+value)
		_, ok := fx.p.Authenticate(req)
		if ok && value != good.Value && strings.Trim(value, "\"") != good.Value {
			t.Fatalf("value %q authenticated", value)
		}
	})
}

// FuzzACS posts arbitrary SAMLResponse and RelayState values to a tenant
// that refuses unsolicited responses. Nothing may panic, and nothing may
// sign anyone in: every seed is signed, but answers no tracked request.
func FuzzACS(f *testing.F) {
	fx := newFixture(f)
	signed := fx.idps[globex].SignedResponse(f, fx.response(globex, func(r *samltest.Response) { r.InResponseTo = "id-untracked" }))
	f.Add(signed, "")
	f.Add(fx.idps[globex].SignedResponse(f, fx.response(globex, func(r *samltest.Response) { r.Signing = samltest.SignBoth })), "AAAAAAAAAAAAAAAAAAAAAA")
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&a;</samlp:Response>`), "")
	f.Add([]byte("<a><b><c></c></b></a>"), "/x")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, doc []byte, relayState string) {
		form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relayState}}
		rec := fx.postACS(globex, form)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusForbidden && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("got status %d, want 400, 403 or 413", rec.Code)
		}
		if ck := sessionCookieOf(rec); ck != nil {
			t.Fatalf("got a session cookie for %q", doc)
		}
	})
}
