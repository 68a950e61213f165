package samlsp

// Attacks on the ACS (and the SLO endpoint), at every tenant: XML
// signature wrapping and its relatives, comments and CDATA sections that
// split signed values, DOCTYPEs, documents built to exhaust the parser,
// compression bombs, the artifact binding, and time limits at their
// boundaries. The XML security is crewjam's; these tests prove that it
// holds where the gateway uses it, configured as the gateway configures it.

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// adminOf is who the attacker wants to be at tenant.
func adminOf(tenant string) string { return "admin@" + tenant + ".example" }

// userOf is who the IdP signed in, in the fixture's genuine responses.
func userOf(tenant string) string { return "b.simon@" + tenant + ".example" }

// genuine returns a genuine response from tenant's IdP, signed as signing
// says, answering l (or unsolicited if l is nil), parsed for tampering.
func (f *fixture) genuine(t testing.TB, tenant string, l *login, signing samltest.Signing, change func(*samltest.Response)) *etree.Document {
	t.Helper()
	r := f.response(tenant, func(r *samltest.Response) {
		r.Signing = signing
		if l != nil {
			r.InResponseTo = l.requestID
		}
	})
	if change != nil {
		change(&r)
	}
	return samltest.ParseXML(t, f.idps[tenant].SignedResponse(t, r))
}

// parts returns a response's root and its (first) Assertion.
func parts(t testing.TB, doc *etree.Document) (*etree.Element, *etree.Element) {
	t.Helper()
	return doc.Root(), samltest.MustFind(t, doc.Root(), "Assertion")
}

// setIdentity makes assertion name name: its NameID and its email and name
// claims.
func setIdentity(t testing.TB, assertion *etree.Element, name string) {
	t.Helper()
	samltest.MustFind(t, assertion, "Subject", "NameID").SetText(name)
	for _, attr := range identityValues(assertion) {
		attr.SetText(name)
	}
}

// identityValues returns the AttributeValues of assertion's email and name
// claims.
func identityValues(assertion *etree.Element) []*etree.Element {
	var out []*etree.Element
	st := samltest.Find(assertion, "AttributeStatement")
	if st == nil {
		return nil
	}
	for _, attr := range st.ChildElements() {
		switch attr.SelectAttrValue("Name", "") {
		case ClaimEmail, samltest.ClaimName:
			out = append(out, attr.ChildElements()...)
		}
	}
	return out
}

// evil returns a copy of assertion without its signature, naming tenant's
// administrator, with a new ID unless keepID.
func evil(t testing.TB, assertion *etree.Element, tenant string, keepID bool) *etree.Element {
	t.Helper()
	e := assertion.Copy()
	samltest.Unsign(e)
	if !keepID {
		e.CreateAttr("ID", "_evil-"+hex.EncodeToString(randomBytes(t, 8)))
	}
	setIdentity(t, e, adminOf(tenant))
	return e
}

// replace puts with where old is in old's parent.
func replace(old, with *etree.Element) {
	parent := old.Parent()
	at := old.Index()
	parent.RemoveChild(old)
	parent.InsertChildAt(at, with)
}

// post posts doc to tenant's ACS as the answer to l (unsolicited if nil).
// A panic in the handler fails the test.
func (f *fixture) post(t testing.TB, tenant string, doc []byte, l *login) *httptest.ResponseRecorder {
	t.Helper()
	form := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}}
	var cookies []*http.Cookie
	if l != nil {
		form.Set("RelayState", l.relayState)
		cookies = append(cookies, l.tracker)
	}
	return f.postSafely(t, tenant, form, cookies...)
}

func (f *fixture) postSafely(t testing.TB, tenant string, form url.Values, cookies ...*http.Cookie) (rec *httptest.ResponseRecorder) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("the ACS panicked: %v\n%s", v, debug.Stack())
		}
	}()
	return f.postACS(tenant, form, cookies...)
}

// sessionCookiesSet returns the names of the session cookies rec sets:
// every Set-Cookie whose name contains "ssogw_session" and that does not
// delete it.
func sessionCookiesSet(rec *httptest.ResponseRecorder) []string {
	var names []string
	for _, ck := range rec.Result().Cookies() {
		deletes := ck.MaxAge < 0 || ck.Value == "" || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now()))
		if strings.Contains(ck.Name, "ssogw_session") && !deletes {
			names = append(names, ck.Name)
		}
	}
	return names
}

// failures returns the login failures counted at tenant, by reason.
func (f *fixture) failures(tenant string) map[string]float64 {
	out := map[string]float64{}
	for _, flow := range []string{flowSP, flowIDP} {
		for _, reason := range Reasons() {
			if n := f.logins(tenant, flow, "failure", reason); n > 0 {
				out[reason] += n
			}
		}
	}
	return out
}

// successes returns the logins counted as successful at every tenant.
func (f *fixture) successes() float64 {
	var n float64
	for _, tenant := range allTenants {
		for _, flow := range []string{flowSP, flowIDP} {
			n += f.logins(tenant, flow, "success", "none")
		}
	}
	return n
}

// checkRefused checks that rec refused a login at tenant: a 4xx status, no
// session cookie, one failure counted with one of reasons, and no success
// anywhere. It returns the reason counted.
func (f *fixture) checkRefused(t testing.TB, tenant string, rec *httptest.ResponseRecorder, reasons ...string) string {
	t.Helper()
	if rec.Code < 400 || rec.Code > 499 {
		t.Errorf("got status %d, want 4xx: %s", rec.Code, rec.Body)
	}
	if names := sessionCookiesSet(rec); len(names) > 0 {
		t.Errorf("got session cookies %q, want none", names)
	}
	if n := f.successes(); n != 0 {
		t.Errorf("got %v successful logins, want 0", n)
	}
	got := f.failures(tenant)
	var reason string
	var total float64
	for r, n := range got {
		reason, total = r, total+n
	}
	if total != 1 || !slices.Contains(reasons, reason) {
		t.Errorf("got failures %v, want one with reason in %q", got, reasons)
	}
	return reason
}

// checkSignedInAs checks that rec either refused the login (as
// checkRefused, with any reason) or signed in exactly want, and reports
// which.
func (f *fixture) checkSignedInAs(t testing.TB, tenant string, rec *httptest.ResponseRecorder, want string) bool {
	t.Helper()
	if rec.Code != http.StatusSeeOther {
		t.Logf("refused: %d %s", rec.Code, f.checkRefused(t, tenant, rec, Reasons()...))
		return false
	}
	s, ok := f.authenticate(sessionCookieOf(rec))
	if !ok {
		t.Fatalf("got status 303 without a session that authenticates")
	}
	if s.Tenant != tenant || s.NameID != want || s.Email != want {
		t.Errorf("signed in as tenant %q NameID %q email %q, want %q at %q", s.Tenant, s.NameID, s.Email, want, tenant)
	}
	return true
}

// forgery is an attack on a genuine response: forge changes it, in place,
// into one that would sign in the tenant's administrator if the service
// provider read an element other than the one that was verified.
type forgery struct {
	name    string
	signing samltest.Signing
	forge   func(t testing.TB, f *fixture, tenant string, doc *etree.Document)
	// reasons are those the refusal may be counted with; nil means
	// signature or malformed.
	reasons []string
	// rewrite, if set, changes the serialized forgery, for what etree
	// cannot write.
	rewrite func(raw []byte) []byte
	// harmless marks a forgery that leaves the genuine, verified content
	// where the service provider reads it, and adds content that is
	// ignored: the login may succeed, but only as the genuine user.
	harmless bool
}

// prefixed gives el and every element under it the namespace prefix
// prefix.
func prefixed(el *etree.Element, prefix string) {
	el.Space = prefix
	for _, child := range el.ChildElements() {
		if child.Space == "" {
			prefixed(child, prefix)
		}
	}
}

// withAdvice puts an Advice holding advice into assertion, after its
// Conditions, where the schema puts it.
func withAdvice(t testing.TB, assertion, advice *etree.Element) {
	t.Helper()
	el := etree.NewElement("Advice")
	el.AddChild(advice)
	assertion.InsertChildAt(samltest.MustFind(t, assertion, "Conditions").Index()+1, el)
}

// assertionCount counts, in a serialized response, the elements whose local
// name is Assertion or EncryptedAssertion, with etree rather than the
// gateway's scanner; -1 if etree cannot read raw.
func assertionCount(raw []byte) int {
	doc := etree.NewDocument()
	if doc.ReadFromBytes(raw) != nil || doc.Root() == nil {
		return -1
	}
	n := 0
	var walk func(el *etree.Element)
	walk = func(el *etree.Element) {
		if el.Tag == "Assertion" || el.Tag == "EncryptedAssertion" {
			n++
		}
		for _, child := range el.ChildElements() {
			walk(child)
		}
	}
	walk(doc.Root())
	return n
}

// serialize writes a forged document.
func (fg forgery) serialize(t testing.TB, doc *etree.Document) []byte {
	t.Helper()
	raw := samltest.XMLBytes(t, doc)
	if fg.rewrite != nil {
		raw = fg.rewrite(raw)
	}
	return raw
}

// forgeries returns the XSW family of Somorovsky et al., "On Breaking SAML:
// Be Whoever You Want to Be" (USENIX Security 2012), and relatives.
func forgeries() []forgery {
	sameID := map[bool]string{false: "new ID", true: "same ID"}
	var fs []forgery
	for _, keepID := range []bool{false, true} {
		fs = append(fs,
			forgery{name: "XSW1 signed Response inside its Signature, evil Response (" + sameID[keepID] + ") outside", signing: samltest.SignResponse,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					orig := resp.Copy()
					samltest.Unsign(orig)
					samltest.MustFind(t, resp, "Signature").AddChild(orig)
					if !keepID {
						resp.CreateAttr("ID", "_evil-response")
					}
					replace(a, evil(t, a, tenant, false))
				}},
			forgery{name: "XSW2 signed Response as a sibling before its Signature, evil Response (" + sameID[keepID] + ") outside", signing: samltest.SignResponse,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					orig := resp.Copy()
					samltest.Unsign(orig)
					sig := samltest.MustFind(t, resp, "Signature")
					resp.InsertChildAt(sig.Index(), orig)
					if !keepID {
						resp.CreateAttr("ID", "_evil-response")
					}
					replace(a, evil(t, a, tenant, false))
				}},
			forgery{name: "XSW3 evil assertion (" + sameID[keepID] + ") before the signed one", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					resp.InsertChildAt(a.Index(), evil(t, a, tenant, keepID))
				}},
			forgery{name: "evil assertion (" + sameID[keepID] + ") after the signed one", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					resp.InsertChildAt(a.Index()+1, evil(t, a, tenant, keepID))
				}},
			forgery{name: "XSW4 signed assertion inside the evil one (" + sameID[keepID] + ")", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					_, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					replace(a, e)
					e.AddChild(a)
				}},
			forgery{name: "XSW5 signature moved to the evil assertion (" + sameID[keepID] + "), unsigned original appended", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					samltest.InsertAfterIssuer(e, samltest.Unsign(a))
					replace(a, e)
					resp.AddChild(a)
				}},
			forgery{name: "XSW6 unsigned original inside the Signature the evil assertion (" + sameID[keepID] + ") carries", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					_, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					replace(a, e)
					sig := samltest.Unsign(a)
					samltest.InsertAfterIssuer(e, sig)
					sig.AddChild(a)
				}},
			forgery{name: "XSW7 signed assertion in Extensions, evil one (" + sameID[keepID] + ") in its place", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					replace(a, e)
					ext := etree.NewElement("samlp:Extensions")
					ext.AddChild(a)
					samltest.InsertAfterIssuer(resp, ext)
				}},
			forgery{name: "XSW8 unsigned original in an Object of the Signature the evil assertion (" + sameID[keepID] + ") carries", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					_, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					sig := samltest.Unsign(a)
					samltest.InsertAfterIssuer(e, sig)
					replace(a, e)
					sig.CreateElement("Object").AddChild(a)
				}},
			forgery{name: "decoy: the evil assertion (" + sameID[keepID] + ") alone, with a copy of the genuine Signature", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					_, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					samltest.InsertAfterIssuer(e, samltest.MustFind(t, a, "Signature").Copy())
					replace(a, e)
				}},
			forgery{name: "decoy: the genuine Signature nested deep in the evil assertion (" + sameID[keepID] + ")", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					_, a := parts(t, doc)
					e := evil(t, a, tenant, keepID)
					samltest.MustFind(t, e, "Subject", "SubjectConfirmation").AddChild(samltest.MustFind(t, a, "Signature").Copy())
					replace(a, e)
				}},
			forgery{name: "signature moved from the assertion to the Response (" + sameID[keepID] + "), evil assertion", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					samltest.InsertAfterIssuer(resp, samltest.Unsign(a))
					if keepID {
						resp.CreateAttr("ID", a.SelectAttrValue("ID", ""))
					}
					setIdentity(t, a, adminOf(tenant))
				}},
			forgery{name: "signature moved from the Response to the assertion (" + sameID[keepID] + "), evil assertion", signing: samltest.SignResponse,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					samltest.InsertAfterIssuer(a, samltest.Unsign(resp))
					if keepID {
						a.CreateAttr("ID", resp.SelectAttrValue("ID", ""))
					}
					setIdentity(t, a, adminOf(tenant))
				}},
		)
	}
	fs = append(fs,
		forgery{name: "evil assertion appended to a signed Response", signing: samltest.SignResponse,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				resp.AddChild(evil(t, a, tenant, false))
			}},
		forgery{name: "evil assertion before the signed one in a Response signed too", signing: samltest.SignBoth,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				resp.InsertChildAt(a.Index(), evil(t, a, tenant, false))
			}},
		forgery{name: "signed Response's assertion replaced by an evil one, the genuine one in an Object of its Signature", signing: samltest.SignResponse,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				replace(a, evil(t, a, tenant, true))
				samltest.MustFind(t, resp, "Signature").CreateElement("Object").AddChild(a)
			}},
		forgery{name: "evil assertion inside the signed one", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				a.AddChild(evil(t, a, tenant, false))
			}},
		forgery{name: "evil assertion inside the SignedInfo of the genuine Signature, which it carries", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				e := evil(t, a, tenant, true)
				replace(a, e)
				sig := samltest.Unsign(a)
				samltest.InsertAfterIssuer(e, sig)
				samltest.MustFind(t, sig, "SignedInfo").AddChild(a)
			}},
		forgery{name: "evil assertion validly signed by an untrusted key", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				e := evil(t, a, tenant, true)
				key, cert := untrustedKeyPair()
				f.idps[tenant].Resign(t, e, samltest.Signer{Key: key, Cert: cert})
				replace(a, e)
			}},
		forgery{name: "evil assertion validly signed by an untrusted key, before the genuine one", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				e := evil(t, a, tenant, false)
				key, cert := untrustedKeyPair()
				f.idps[tenant].Resign(t, e, samltest.Signer{Key: key, Cert: cert})
				resp.InsertChildAt(a.Index(), e)
			}},
		forgery{name: "evil assertion validly signed by an untrusted key, in a Response validly signed by the same key", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				e := evil(t, a, tenant, true)
				key, cert := untrustedKeyPair()
				f.idps[tenant].Resign(t, e, samltest.Signer{Key: key, Cert: cert})
				replace(a, e)
				f.idps[tenant].Resign(t, resp, samltest.Signer{Key: key, Cert: cert})
			}},
		forgery{name: "duplicate ID attribute on the evil assertion", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				setIdentity(t, a, adminOf(tenant))
				a.CreateAttr("id", a.SelectAttrValue("ID", ""))
				a.CreateAttr("ID", "_evil")
			},
			// etree keeps one attribute per name: rename the second.
			// Two attributes named ID are not well-formed XML.
			rewrite: func(raw []byte) []byte { return bytes.Replace(raw, []byte(` id="`), []byte(` ID="`), 1) }},
		forgery{name: "two SignedInfo elements, the second for the evil content", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				sig := samltest.MustFind(t, a, "Signature")
				si := samltest.MustFind(t, sig, "SignedInfo")
				sig.InsertChildAt(si.Index()+1, si.Copy())
				setIdentity(t, a, adminOf(tenant))
			}},
		forgery{name: "two SignedInfo elements, a forged one first", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				sig := samltest.MustFind(t, a, "Signature")
				si := samltest.MustFind(t, sig, "SignedInfo")
				forged := si.Copy()
				samltest.MustFind(t, forged, "Reference", "DigestValue").SetText(base64.StdEncoding.EncodeToString(make([]byte, 32)))
				sig.InsertChildAt(si.Index(), forged)
				setIdentity(t, a, adminOf(tenant))
			}},
		forgery{name: "comment inside DigestValue, evil content", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				samltest.SplitTextWithComment(t, samltest.MustFind(t, a, "Signature", "SignedInfo", "Reference", "DigestValue"), 8, "x")
				setIdentity(t, a, adminOf(tenant))
			}},
		forgery{name: "comment inside SignatureValue, evil content", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				samltest.SplitTextWithComment(t, samltest.MustFind(t, a, "Signature", "SignatureValue"), 8, "x")
				setIdentity(t, a, adminOf(tenant))
			}},
		forgery{name: "comment inside DigestValue and SignatureValue, genuine content", signing: samltest.SignBoth, harmless: true,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				for _, el := range []*etree.Element{resp, a} {
					samltest.SplitTextWithComment(t, samltest.MustFind(t, el, "Signature", "SignedInfo", "Reference", "DigestValue"), 8, "x")
					samltest.SplitTextWithComment(t, samltest.MustFind(t, el, "Signature", "SignatureValue"), 8, "x")
				}
			}},
		forgery{name: "signed Response Issuer changed", signing: samltest.SignResponse, reasons: []string{ReasonSignature},
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				samltest.MustFind(t, doc.Root(), "Issuer").SetText("https://sts.windows.net/00000000-0000-0000-0000-000000000000/")
			}},
		forgery{name: "unsigned Response around a signed assertion: Issuer changed", signing: samltest.SignAssertion, reasons: []string{ReasonIssuer},
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				samltest.MustFind(t, doc.Root(), "Issuer").SetText("https://sts.windows.net/00000000-0000-0000-0000-000000000000/")
			}},
		forgery{name: "unsigned Response around a signed assertion: Destination of another tenant", signing: samltest.SignAssertion, reasons: []string{ReasonDestination},
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				other := acme
				if tenant == acme {
					other = initech
				}
				doc.Root().CreateAttr("Destination", f.tenant(other).ACSURL.String())
			}},
		forgery{name: "unsigned Response around a signed assertion: InResponseTo changed", signing: samltest.SignAssertion, reasons: []string{ReasonInResponseTo},
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				doc.Root().CreateAttr("InResponseTo", "id-of-another-login")
			}},
		forgery{name: "unsigned Response around a signed assertion: error status", signing: samltest.SignAssertion, reasons: []string{ReasonIDPStatus},
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				samltest.MustFind(t, doc.Root(), "Status", "StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Requester")
			}},
	)
	// Exactly one assertion: crewjam verifies one and ignores the others,
	// which the gateway refuses before crewjam parses anything, wherever
	// they are and whatever their namespace. Where a signature covers the
	// second one, the IdP signed it (Resign): only the count refuses it.
	malformed := []string{ReasonMalformed}
	fs = append(fs,
		forgery{name: "evil assertion in an Object of the signed Response's Signature, genuine one in place", signing: samltest.SignResponse, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				samltest.MustFind(t, resp, "Signature").CreateElement("Object").AddChild(evil(t, a, tenant, false))
			}},
		forgery{name: "evil assertion in an Object of the signed assertion's Signature", signing: samltest.SignAssertion, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				samltest.MustFind(t, a, "Signature").CreateElement("Object").AddChild(evil(t, a, tenant, false))
			}},
		forgery{name: "evil assertion in Extensions, genuine one in place", signing: samltest.SignAssertion, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(evil(t, a, tenant, false))
				samltest.InsertAfterIssuer(resp, ext)
			}},
		forgery{name: "evil assertion in Extensions of a Response signed by the IdP", signing: samltest.SignResponse, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				ext := etree.NewElement("samlp:Extensions")
				ext.AddChild(evil(t, a, tenant, false))
				samltest.InsertAfterIssuer(resp, ext)
				f.idps[tenant].Resign(t, resp, samltest.Signer{})
			}},
		forgery{name: "evil assertion in a foreign namespace before the genuine one", signing: samltest.SignAssertion, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				e := evil(t, a, tenant, true)
				e.CreateAttr("xmlns", "urn:example:not-saml")
				resp.InsertChildAt(a.Index(), e)
			}},
		forgery{name: "evil assertion with a saml2 prefix before the genuine one, in a Response signed by the IdP", signing: samltest.SignResponse, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				e := evil(t, a, tenant, false)
				prefixed(e, "saml2")
				e.CreateAttr("xmlns:saml2", "urn:oasis:names:tc:SAML:2.0:assertion")
				resp.InsertChildAt(a.Index(), e)
				f.idps[tenant].Resign(t, resp, samltest.Signer{})
			}},
		forgery{name: "evil assertion in the Advice of the signed one, signed by the IdP", signing: samltest.SignAssertion, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				withAdvice(t, a, evil(t, a, tenant, false))
				f.idps[tenant].Resign(t, a, samltest.Signer{})
			}},
		forgery{name: "evil assertion in the Advice of the assertion of a Response signed by the IdP", signing: samltest.SignResponse, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				withAdvice(t, a, evil(t, a, tenant, false))
				f.idps[tenant].Resign(t, resp, samltest.Signer{})
			}},
		forgery{name: "evil EncryptedAssertion beside the signed assertion", signing: samltest.SignAssertion, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				resp.InsertChildAt(a.Index(), samltest.Encrypt(t, evil(t, a, tenant, false), samltest.Encryption{Cert: encryptionCert()}))
			}},
		forgery{name: "evil EncryptedAssertion beside the assertion, in a Response signed by the IdP", signing: samltest.SignResponse, reasons: malformed,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				resp, a := parts(t, doc)
				resp.InsertChildAt(a.Index()+1, samltest.Encrypt(t, evil(t, a, tenant, false), samltest.Encryption{Cert: encryptionCert()}))
				f.idps[tenant].Resign(t, resp, samltest.Signer{})
			}},
	)
	// The Reference: where it points, and how many there are.
	for _, ref := range []struct {
		name string
		uri  func(resp, a *etree.Element) string
	}{
		{"the Response", func(resp, _ *etree.Element) string { return "#" + resp.SelectAttrValue("ID", "") }},
		{"the whole document", func(*etree.Element, *etree.Element) string { return "" }},
		{"a non-existent ID", func(*etree.Element, *etree.Element) string { return "#_nothing-has-this-id" }},
		// goxmldsig compares the URI after its first character, whatever
		// that is, with the ID.
		{"the ID without '#'", func(_, a *etree.Element) string { return "x" + a.SelectAttrValue("ID", "") }},
	} {
		fs = append(fs,
			forgery{name: "Reference URI changed to " + ref.name + ", evil content", signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					samltest.MustFind(t, a, "Signature", "SignedInfo", "Reference").CreateAttr("URI", ref.uri(resp, a))
					setIdentity(t, a, adminOf(tenant))
				}},
			forgery{name: "IdP-signed SignedInfo with a Reference to " + ref.name, signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					sig := samltest.MustFind(t, a, "Signature")
					samltest.MustFind(t, sig, "SignedInfo", "Reference").CreateAttr("URI", ref.uri(resp, a))
					f.idps[tenant].ResignSignedInfo(t, sig)
				}},
			forgery{name: "IdP-signed SignedInfo with a second Reference, to " + ref.name, signing: samltest.SignAssertion,
				forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
					resp, a := parts(t, doc)
					sig := samltest.MustFind(t, a, "Signature")
					first := samltest.MustFind(t, sig, "SignedInfo", "Reference")
					second := first.Copy()
					second.CreateAttr("URI", ref.uri(resp, a))
					first.Parent().AddChild(second)
					f.idps[tenant].ResignSignedInfo(t, sig)
				}},
		)
	}
	fs = append(fs,
		forgery{name: "IdP-signed assertion whose Reference is the whole document", signing: samltest.SignAssertion,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				_, a := parts(t, doc)
				f.idps[tenant].Resign(t, a, samltest.Signer{IDAttribute: "NoSuchAttribute"})
			}},
		forgery{name: "IdP-signed Response whose Reference is the whole document", signing: samltest.SignResponse,
			forge: func(t testing.TB, f *fixture, tenant string, doc *etree.Document) {
				f.idps[tenant].Resign(t, doc.Root(), samltest.Signer{IDAttribute: "NoSuchAttribute"})
			}},
	)
	return fs
}

// TestSignatureWrapping runs every forgery at every tenant, against a
// response to a tracked login (so that only the forgery can fail it).
func TestSignatureWrapping(t *testing.T) {
	t.Parallel()
	for _, fg := range forgeries() {
		for _, tenant := range allTenants {
			t.Run(fg.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				var log syncbuf.Buffer
				f.p.log = slog.New(slog.NewTextHandler(&log, nil))
				l := f.startLogin(tenant, "")
				doc := f.genuine(t, tenant, l, fg.signing, nil)
				fg.forge(t, f, tenant, doc)
				raw := fg.serialize(t, doc)
				rec := f.post(t, tenant, raw, l)
				if n := assertionCount(raw); n > 1 {
					// Refused by the gateway's own scan, before crewjam
					// could pick one of them.
					f.checkRefused(t, tenant, rec, ReasonMalformed)
					if !strings.Contains(log.String(), errExtraAssertion.Error()) {
						t.Errorf("%d assertions, but the log does not say %q: %s", n, errExtraAssertion, log.String())
					}
					return
				}
				if fg.harmless {
					if f.checkSignedInAs(t, tenant, rec, userOf(tenant)) {
						t.Logf("signed in as the genuine user")
					}
					return
				}
				reasons := fg.reasons
				if reasons == nil {
					reasons = []string{ReasonSignature, ReasonMalformed}
				}
				t.Logf("refused: %d %s", rec.Code, f.checkRefused(t, tenant, rec, reasons...))
			})
		}
	}
}

// TestAssertionInsideEncryptedAssertion pins a known limit of the
// "exactly one assertion" rule: the scan before crewjam cannot see into an
// EncryptedAssertion, and crewjam does not hand back the XML it decrypts.
// An Assertion hidden in the decrypted assertion's Advice, or in an Object
// of its Signature, is covered by the IdP's signature or put there by
// whoever encrypted it; either way crewjam's Assertion has no field for
// it (no Advice; a verified assertion's Signature is cut away), so the
// session is built from the verified assertion alone: the login succeeds
// as the user the IdP signed, never as the hidden one.
func TestAssertionInsideEncryptedAssertion(t *testing.T) {
	t.Parallel()
	hides := []struct {
		name string
		// hide puts evil inside assertion, which is still in the clear.
		hide func(t testing.TB, f *fixture, tenant string, assertion, evil *etree.Element)
	}{
		{"in the Advice, signed by the IdP", func(t testing.TB, f *fixture, tenant string, a, e *etree.Element) {
			withAdvice(t, a, e)
			f.idps[tenant].Resign(t, a, samltest.Signer{})
		}},
		{"in an Object of its Signature", func(t testing.TB, f *fixture, tenant string, a, e *etree.Element) {
			samltest.MustFind(t, a, "Signature").CreateElement("Object").AddChild(e)
		}},
	}
	for _, h := range hides {
		for _, signing := range []samltest.Signing{samltest.SignAssertion, samltest.SignBoth} {
			for _, tenant := range allTenants {
				t.Run(fmt.Sprintf("%s/%s/%s", h.name, signing, tenant), func(t *testing.T) {
					t.Parallel()
					f := newFixture(t)
					l := f.startLogin(tenant, "")
					doc := f.genuine(t, tenant, l, signing, nil)
					resp, a := parts(t, doc)
					h.hide(t, f, tenant, a, evil(t, a, tenant, false))
					replace(a, samltest.Encrypt(t, a, samltest.Encryption{Cert: encryptionCert()}))
					if signing == samltest.SignBoth {
						f.idps[tenant].Resign(t, resp, samltest.Signer{})
					}
					raw := samltest.XMLBytes(t, doc)
					if n := assertionCount(raw); n != 1 {
						t.Fatalf("the response shows %d assertions, want only the EncryptedAssertion", n)
					}
					rec := f.post(t, tenant, raw, l)
					if rec.Code != http.StatusSeeOther {
						t.Fatalf("got status %d, want 303: the hidden assertion should change nothing: %s", rec.Code, rec.Body)
					}
					f.checkSignedInAs(t, tenant, rec, userOf(tenant))
				})
			}
		}
	}
}

// TestSplitIdentity: a comment, a CDATA section or a character reference
// inside a signed NameID and the claims naming the user does not change
// the canonical form, so the signature stays valid. A login may then
// succeed, but only as the whole value the IdP signed, never as the part
// before the split.
func TestSplitIdentity(t *testing.T) {
	t.Parallel()
	splits := []struct {
		name string
		// split changes the values whole, which start with prefix; it
		// returns the serialized response.
		split func(t testing.TB, doc *etree.Document, prefix string) []byte
		// resignable: the split survives parsing, so the IdP can sign
		// the response with it.
		resignable bool
	}{
		{"comment", func(t testing.TB, doc *etree.Document, prefix string) []byte {
			_, a := parts(t, doc)
			for _, el := range append(identityValues(a), samltest.MustFind(t, a, "Subject", "NameID")) {
				samltest.SplitTextWithComment(t, el, len(prefix), "x")
			}
			return samltest.XMLBytes(t, doc)
		}, true},
		{"CDATA", func(t testing.TB, doc *etree.Document, prefix string) []byte {
			_, a := parts(t, doc)
			for _, el := range append(identityValues(a), samltest.MustFind(t, a, "Subject", "NameID")) {
				samltest.SplitTextWithCDATA(t, el, len(prefix))
			}
			return samltest.XMLBytes(t, doc)
		}, true},
		{"decimal character reference", func(t testing.TB, doc *etree.Document, prefix string) []byte {
			return bytes.ReplaceAll(samltest.XMLBytes(t, doc), []byte(prefix+"."), []byte(prefix+"&#46;"))
		}, false},
		{"hexadecimal character references", func(t testing.TB, doc *etree.Document, prefix string) []byte {
			return bytes.ReplaceAll(samltest.XMLBytes(t, doc), []byte(prefix+".evil.example"), []byte(prefix+"&#x2E;evil&#x2e;example"))
		}, false},
	}
	for _, sp := range splits {
		for _, signing := range []samltest.Signing{samltest.SignAssertion, samltest.SignResponse, samltest.SignBoth} {
			for _, resign := range []bool{false, true} {
				if resign && !sp.resignable {
					continue
				}
				when := "after signing"
				if resign {
					when = "signed by the IdP"
				}
				for _, tenant := range allTenants {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", sp.name, signing, when, tenant), func(t *testing.T) {
						t.Parallel()
						f := newFixture(t)
						prefix := adminOf(tenant)
						whole := prefix + ".evil.example"
						l := f.startLogin(tenant, "")
						doc := f.genuine(t, tenant, l, signing, func(r *samltest.Response) {
							r.NameID = whole
							r.Attributes = samltest.DefaultAttributes(f.idps[tenant].TenantID, whole, "Admin", globexGroup)
						})
						raw := sp.split(t, doc, prefix)
						if resign {
							doc = samltest.ParseXML(t, raw)
							resp, a := parts(t, doc)
							if signing != samltest.SignResponse {
								f.idps[tenant].Resign(t, a, samltest.Signer{})
							}
							if signing != samltest.SignAssertion {
								f.idps[tenant].Resign(t, resp, samltest.Signer{})
							}
							raw = samltest.XMLBytes(t, doc)
						}
						if !bytes.Contains(raw, []byte(prefix+"<")) && !bytes.Contains(raw, []byte(prefix+"&")) {
							t.Fatalf("the response does not split %q: %s", whole, raw)
						}
						if f.checkSignedInAs(t, tenant, f.post(t, tenant, raw, l), whole) {
							t.Logf("signed in as %q", whole)
						}
					})
				}
			}
		}
	}
}

// countingServer counts every connection and request made to it: what an
// attacker would point the gateway at.
type countingServer struct {
	*httptest.Server
	conns, requests atomic.Int64
}

func newCountingServer(t testing.TB, body string) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.requests.Add(1)
		fmt.Fprint(w, body)
	}))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *countingServer) checkUntouched(t testing.TB) {
	t.Helper()
	if n, m := c.conns.Load(), c.requests.Load(); n != 0 || m != 0 {
		t.Errorf("got %d connections and %d requests to %s, want none", n, m, c.URL)
	}
}

// doctypes are DOCTYPEs whose entity "who" the NameID is made of. Each
// must be refused as malformed, before any signature work, without reading
// a file or opening a connection. (They are refused because the strict
// parser knows no entity but XML's own; nothing refuses a DOCTYPE whose
// entities the document does not use.)
func doctypes(tenant, dtdURL, fileURL string) []struct{ name, doctype string } {
	laughs := `<!ENTITY lol0 "lol">`
	for i := 1; i <= 9; i++ {
		laughs += fmt.Sprintf(`<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	return []struct{ name, doctype string }{
		{"internal entity", `<!DOCTYPE samlp:Response [<!ENTITY who "` + adminOf(tenant) + `">]>`},
		{"external entity, local file", `<!DOCTYPE samlp:Response [<!ENTITY who SYSTEM "` + fileURL + `">]>`},
		{"external entity, http", `<!DOCTYPE samlp:Response [<!ENTITY who SYSTEM "` + dtdURL + `/who">]>`},
		{"external DTD defining the entity", `<!DOCTYPE samlp:Response SYSTEM "` + dtdURL + `/saml.dtd">`},
		{"parameter entity, http", `<!DOCTYPE samlp:Response [<!ENTITY % dtd SYSTEM "` + dtdURL + `/p.dtd"> %dtd; <!ENTITY who "%name;">]>`},
		{"billion laughs", `<!DOCTYPE samlp:Response [` + laughs + `<!ENTITY who "&lol9;">]>`},
		{"internal entity after a declaration of another encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE samlp:Response [<!ENTITY who "` + adminOf(tenant) + `">]>`},
	}
}

// withDoctype puts doctype before the root of doc and the entity "who" in
// place of the NameID.
func withDoctype(t testing.TB, doc *etree.Document, doctype string) []byte {
	t.Helper()
	_, a := parts(t, doc)
	nameID := samltest.MustFind(t, a, "Subject", "NameID")
	nameID.SetText("NAMEID")
	raw := samltest.XMLBytes(t, doc)
	raw = bytes.Replace(raw, []byte(">NAMEID<"), []byte(">&who;<"), 1)
	return append([]byte(doctype), raw...)
}

// TestDOCTYPERefused: entities, internal or external, parameter entities
// and billion laughs never make it into an identity.
func TestDOCTYPERefused(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t, `<!ENTITY who "`+adminOf(tenant)+`"><!ENTITY name "`+adminOf(tenant)+`">`)
			file := filepath.Join(t.TempDir(), "who")
			if err := os.WriteFile(file, []byte(adminOf(tenant)), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, dt := range doctypes(tenant, srv.URL, "file://"+file) {
				t.Run(dt.name, func(t *testing.T) {
					f := newFixture(t)
					l := f.startLogin(tenant, "")
					raw := withDoctype(t, f.genuine(t, tenant, l, samltest.SignAssertion, nil), dt.doctype)
					start := time.Now()
					rec := f.post(t, tenant, raw, l)
					if elapsed := time.Since(start); elapsed > 5*time.Second {
						t.Errorf("took %v", elapsed)
					}
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

// TestDOCTYPENeverFetched: a DOCTYPE that only declares, around a forged
// response, is refused and fetches nothing: not its external DTD, not its
// parameter entities.
func TestDOCTYPENeverFetched(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t, `<!ENTITY x "y">`)
			for _, doctype := range []string{
				`<!DOCTYPE samlp:Response SYSTEM "` + srv.URL + `/saml.dtd">`,
				`<!DOCTYPE samlp:Response PUBLIC "-//OASIS//DTD SAML//EN" "` + srv.URL + `/saml.dtd">`,
				`<!DOCTYPE samlp:Response [<!ENTITY % dtd SYSTEM "` + srv.URL + `/p.dtd"> %dtd;]>`,
				`<!DOCTYPE samlp:Response [<!ENTITY unused SYSTEM "` + srv.URL + `/unused">]>`,
			} {
				f := newFixture(t)
				l := f.startLogin(tenant, "")
				doc := f.genuine(t, tenant, l, samltest.SignAssertion, nil)
				_, a := parts(t, doc)
				setIdentity(t, a, adminOf(tenant))
				rec := f.post(t, tenant, append([]byte(doctype), samltest.XMLBytes(t, doc)...), l)
				f.checkRefused(t, tenant, rec, ReasonSignature, ReasonMalformed)
			}
			srv.checkUntouched(t)
		})
	}
}

// deepNesting returns n nested elements.
func deepNesting(n int) string {
	return strings.Repeat("<a>", n) + strings.Repeat("</a>", n)
}

// namespaceFlood returns n namespace declarations.
func namespaceFlood(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:p%d"`, i, i)
	}
	return b.String()
}

// exhaustions are documents built to make the parser work hard, from a
// genuine response's XML.
func exhaustions(depth, decls int) []struct {
	name  string
	build func(genuine []byte) []byte
} {
	return []struct {
		name  string
		build func(genuine []byte) []byte
	}{
		{fmt.Sprintf("%d nested elements alone", depth), func([]byte) []byte {
			return []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">` + deepNesting(depth) + `</samlp:Response>`)
		}},
		{fmt.Sprintf("%d nested elements in a signed assertion", depth), func(g []byte) []byte {
			return bytes.Replace(g, []byte("</Subject>"), []byte("</Subject>"+deepNesting(depth)), 1)
		}},
		{fmt.Sprintf("%d namespace declarations on the Response", decls), func(g []byte) []byte {
			return bytes.Replace(g, []byte("<samlp:Response "), []byte("<samlp:Response"+namespaceFlood(decls)+" "), 1)
		}},
		{fmt.Sprintf("%d namespace declarations on a signed assertion", decls), func(g []byte) []byte {
			return bytes.Replace(g, []byte("<Assertion "), []byte("<Assertion"+namespaceFlood(decls)+" "), 1)
		}},
		{fmt.Sprintf("%d elements of 60 declarations each in a signed assertion", decls/60), func(g []byte) []byte {
			advice := "<Advice>" + strings.Repeat("<Advice"+namespaceFlood(60)+"/>", decls/60) + "</Advice>"
			return bytes.Replace(g, []byte("</Subject>"), []byte("</Subject>"+advice), 1)
		}},
	}
}

// TestParserExhaustion: documents deep or wide enough to cost the parser
// and canonicalizer dearly are refused promptly, never with a 5xx.
func TestParserExhaustion(t *testing.T) {
	t.Parallel()
	for _, ex := range exhaustions(10_000, 5_000) {
		for _, tenant := range allTenants {
			t.Run(ex.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				l := f.startLogin(tenant, "")
				raw := ex.build(samltest.XMLBytes(t, f.genuine(t, tenant, l, samltest.SignAssertion, nil)))
				if base64.StdEncoding.EncodedLen(len(raw)) > MaxACSBody {
					// The body limit would refuse it first: too easy.
					t.Fatalf("the document is %d bytes: over the body limit", len(raw))
				}
				start := time.Now()
				rec := f.post(t, tenant, raw, l)
				elapsed := time.Since(start)
				if elapsed > 5*time.Second {
					t.Errorf("took %v, want under 5s", elapsed)
				}
				t.Logf("refused: %d %s in %v", rec.Code, f.checkRefused(t, tenant, rec, ReasonMalformed, ReasonSignature), elapsed.Round(time.Millisecond))
			})
		}
	}
}

// TestSLODeflateBomb sends the SLO endpoint, with the HTTP-Redirect
// binding, messages that inflate to a gigabyte; and with the HTTP-POST
// binding, which is not compressed, the largest body it takes. Each must
// be answered promptly, with the signed-out page, allocating little.
// DEFLATE compresses at most about 1032 to 1, so a gigabyte takes a
// megabyte of query string; a few kilobytes inflate to megabytes.
//
// Not parallel: it measures the allocations of the whole process.
func TestSLODeflateBomb(t *testing.T) {
	prefix := []byte(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_bomb" Version="2.0" `)
	bombs := []struct {
		name string
		data []byte
	}{
		{"10 KB to 10 MB", samltest.DeflateBomb(prefix, 10<<20)},
		{"1 MB to 1 GB", samltest.DeflateBomb(prefix, 1<<30)},
	}
	for _, tenant := range allTenants {
		f := newFixture(t)
		var log bytes.Buffer
		f.p.log = slog.New(slog.NewTextHandler(&log, nil))
		slo := SLOPath + tenant
		for _, b := range bombs {
			encoded := base64.StdEncoding.EncodeToString(b.data)
			type request struct {
				name string
				req  func() *http.Request
				want []int
				// logged is in the log line of the refusal.
				logged string
			}
			requests := []request{
				{"Redirect SAMLRequest", func() *http.Request {
					return httptest.NewRequest(http.MethodGet, slo+"?"+url.Values{"SAMLRequest": {encoded}, "RelayState": {"x"}}.Encode(), nil)
				}, []int{http.StatusOK, http.StatusBadRequest}, "inflates to more than"},
				{"Redirect SAMLResponse", func() *http.Request {
					return httptest.NewRequest(http.MethodGet, slo+"?"+url.Values{"SAMLResponse": {encoded}, "RelayState": {newTrackerKey()}}.Encode(), nil)
				}, []int{http.StatusSeeOther, http.StatusBadRequest}, "inflates to more than"},
				// crewjam would read, and inflate, a message in a POST's
				// query: refused before anything decodes it.
				{"POST with SAMLRequest in the URL", func() *http.Request {
					r := httptest.NewRequest(http.MethodPost, slo+"?"+url.Values{"SAMLRequest": {encoded}}.Encode(), strings.NewReader("RelayState=x"))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}, []int{http.StatusBadRequest}, errMessageInURL.Error()},
				{"POST with SAMLResponse in the URL", func() *http.Request {
					r := httptest.NewRequest(http.MethodPost, slo+"?"+url.Values{"SAMLResponse": {encoded}}.Encode(), strings.NewReader("RelayState=x"))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}, []int{http.StatusBadRequest}, errMessageInURL.Error()},
			}
			if len(encoded) < MaxACSBody-100 {
				// The HTTP-POST binding is not compressed: the bomb is
				// refused as the XML it is not.
				requests = append(requests, request{"POST SAMLRequest", func() *http.Request {
					r := httptest.NewRequest(http.MethodPost, slo, strings.NewReader(url.Values{"SAMLRequest": {encoded}}.Encode()))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					return r
				}, []int{http.StatusBadRequest}, "not well-formed XML"})
			}
			for _, rq := range requests {
				t.Run(fmt.Sprintf("%s/%s/%s", tenant, b.name, rq.name), func(t *testing.T) {
					req := rq.req()
					log.Reset()
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					start := time.Now()
					rec := f.serve(req)
					elapsed := time.Since(start)
					runtime.ReadMemStats(&after)
					if !slices.Contains(rq.want, rec.Code) {
						t.Errorf("got status %d, want one of %v", rec.Code, rq.want)
					}
					if rec.Code == http.StatusSeeOther && rec.Header().Get("Location") != LogoutPath {
						t.Errorf("redirected to %q, want the signed-out page", rec.Header().Get("Location"))
					}
					if elapsed > 5*time.Second {
						t.Errorf("took %v, want under 5s", elapsed)
					}
					if !strings.Contains(log.String(), rq.logged) {
						t.Errorf("got log %q, want it to say %q", log.String(), rq.logged)
					}
					// The query string alone is a few megabytes once parsed
					// and copied; the inflated message would be a gigabyte.
					if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
						t.Errorf("allocated %d MiB, want under 64", alloc>>20)
					}
					t.Logf("%d: %v, %d KiB allocated", rec.Code, elapsed, (after.TotalAlloc-before.TotalAlloc)>>10)
				})
			}
		}
	}
}

// withArtifactResolution makes tenant's IdP metadata advertise an
// ArtifactResolutionService at location: in the document, built with etree
// from the IdP's own, and (since the gateway keeps only what it uses of
// metadata) in the parsed entity too, so that crewjam would find it if it
// ever resolved artifacts.
func withArtifactResolution(t testing.TB, f *fixture, tenant, location string) {
	t.Helper()
	doc := samltest.ParseXML(t, bytes.TrimPrefix(f.idps[tenant].MetadataXML(), []byte("\uFEFF")))
	sso := samltest.MustFind(t, doc.Root(), "IDPSSODescriptor")
	ars := etree.NewElement("ArtifactResolutionService")
	ars.CreateAttr("Binding", "urn:oasis:names:tc:SAML:2.0:bindings:SOAP")
	ars.CreateAttr("Location", location)
	ars.CreateAttr("index", "0")
	ars.CreateAttr("isDefault", "true")
	// The schema puts it before the SingleLogoutService.
	sso.InsertChildAt(samltest.MustFind(t, sso, "SingleLogoutService").Index(), ars)
	md, err := metadata.Parse(samltest.XMLBytes(t, doc), f.clock.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range md.Entity.IDPSSODescriptors {
		d := &md.Entity.IDPSSODescriptors[i]
		if len(d.SSODescriptor.ArtifactResolutionServices) == 0 {
			d.SSODescriptor.ArtifactResolutionServices = []crewsaml.IndexedEndpoint{{Binding: crewsaml.SOAPBinding, Location: location, Index: 0}}
			d.ArtifactResolutionServices = []crewsaml.Endpoint{{Binding: crewsaml.SOAPBinding, Location: location}}
		}
	}
	f.tenant(tenant).SetIDP(md)
}

// artifact returns a SAML 2.0 artifact of type 0x0004 (saml-bindings
// §3.6.4): endpoint index 0, the SHA-1 of the IdP's entity ID as SourceID,
// and a random message handle.
func artifact(t testing.TB, entityID string) string {
	t.Helper()
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 0x0004)
	b = binary.BigEndian.AppendUint16(b, 0)
	source := sha1.Sum([]byte(entityID))
	b = append(b, source[:]...)
	b = append(b, randomBytes(t, 20)...)
	return base64.StdEncoding.EncodeToString(b)
}

// TestArtifactNeverResolved: however an artifact reaches the ACS, the
// gateway refuses it without calling the IdP, even when the IdP's metadata
// says where to resolve it.
func TestArtifactNeverResolved(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			srv := newCountingServer(t, "")
			tests := []struct {
				name string
				// request returns the form, the query of the POST, and
				// cookies.
				request func(t *testing.T, f *fixture) (url.Values, string, []*http.Cookie)
			}{
				{"sample artifact", func(*testing.T, *fixture) (url.Values, string, []*http.Cookie) {
					return url.Values{"SAMLart": {"AAQAAMFbLinlXaCM+FIxiDwGOLAy2T71gbpO7ZhNzAgEANlB90ECfpNEVLg="}}, "", nil
				}},
				{"type 0x0004 artifact from the IdP", func(t *testing.T, f *fixture) (url.Values, string, []*http.Cookie) {
					return url.Values{"SAMLart": {artifact(t, f.tenant(tenant).IDP().Entity.EntityID)}}, "", nil
				}},
				{"artifact answering a tracked login", func(t *testing.T, f *fixture) (url.Values, string, []*http.Cookie) {
					l := f.startLogin(tenant, "")
					return url.Values{"SAMLart": {artifact(t, f.tenant(tenant).IDP().Entity.EntityID)}, "RelayState": {l.relayState}}, "", []*http.Cookie{l.tracker}
				}},
				{"artifact beside a genuine SAMLResponse", func(t *testing.T, f *fixture) (url.Values, string, []*http.Cookie) {
					l := f.startLogin(tenant, "")
					form := f.idps[tenant].PostForm(t, f.response(tenant, func(r *samltest.Response) { r.InResponseTo = l.requestID }), l.relayState)
					form.Set("SAMLart", artifact(t, f.tenant(tenant).IDP().Entity.EntityID))
					return form, "", []*http.Cookie{l.tracker}
				}},
				{"artifact in the query string of the POST", func(t *testing.T, f *fixture) (url.Values, string, []*http.Cookie) {
					return url.Values{}, url.Values{"SAMLart": {artifact(t, f.tenant(tenant).IDP().Entity.EntityID)}}.Encode(), nil
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					f := newFixture(t)
					withArtifactResolution(t, f, tenant, srv.URL+"/ars")
					form, query, cookies := tt.request(t, f)
					target := LoginPath + tenant
					if query != "" {
						target += "?" + query
					}
					req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					for _, c := range cookies {
						req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
					}
					rec := f.serve(req)
					if rec.Code != http.StatusBadRequest {
						t.Errorf("got status %d, want 400", rec.Code)
					}
					f.checkRefused(t, tenant, rec, ReasonMalformed)
				})
			}
			// The binding also allows the artifact in a redirect to the
			// ACS URL, where a GET starts a login instead.
			t.Run("GET with an artifact", func(t *testing.T) {
				f := newFixture(t)
				withArtifactResolution(t, f, tenant, srv.URL+"/ars")
				rec := f.serve(httptest.NewRequest(http.MethodGet, LoginPath+tenant+"?"+url.Values{"SAMLart": {artifact(t, f.tenant(tenant).IDP().Entity.EntityID)}}.Encode(), nil))
				if rec.Code >= 500 || rec.Code == http.StatusOK || rec.Code == http.StatusSeeOther {
					t.Errorf("got status %d, want the start of a login or a refusal", rec.Code)
				}
				if names := sessionCookiesSet(rec); len(names) > 0 {
					t.Errorf("got session cookies %q, want none", names)
				}
				if n := f.successes(); n != 0 {
					t.Errorf("got %v successful logins", n)
				}
			})
			srv.checkUntouched(t)
		})
	}
}

// setTimeAttr sets el's attribute key to a SAML time.
func setTimeAttr(el *etree.Element, key string, at time.Time) {
	el.CreateAttr(key, at.UTC().Format(time.RFC3339Nano))
}

// TestTimeLimits tests the time checks at their boundaries: those
// acs_test.go leaves out. crewjam allows MaxClockSkew on every
// NotOnOrAfter, so the exclusive deadline is NotOnOrAfter + MaxClockSkew.
func TestTimeLimits(t *testing.T) {
	t.Parallel()
	skew := crewsaml.MaxClockSkew
	tests := []struct {
		name    string
		signing samltest.Signing
		change  func(r *samltest.Response, now time.Time)
		edit    func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time)
		ok      bool
	}{
		{name: "stale Response IssueInstant, fresh assertion", signing: samltest.SignAssertion,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				setTimeAttr(doc.Root(), "IssueInstant", now.Add(-10*time.Minute))
			}},
		{name: "stale Response IssueInstant, fresh assertion, both signed", signing: samltest.SignBoth,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				setTimeAttr(doc.Root(), "IssueInstant", now.Add(-10*time.Minute))
				f.idps[tenant].Resign(t, doc.Root(), samltest.Signer{})
			}},
		{name: "Response IssueInstant past MaxIssueDelay by a second", signing: samltest.SignAssertion,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				setTimeAttr(doc.Root(), "IssueInstant", now.Add(-crewsaml.MaxIssueDelay-time.Second))
			}},
		{name: "Response IssueInstant at MaxIssueDelay", signing: samltest.SignAssertion, ok: true,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				setTimeAttr(doc.Root(), "IssueInstant", now.Add(-crewsaml.MaxIssueDelay))
			}},
		{name: "Conditions NotOnOrAfter at now minus the skew", signing: samltest.SignAssertion,
			change: func(r *samltest.Response, now time.Time) {
				r.NotOnOrAfter, r.SubjectNotOnOrAfter = now.Add(-skew), now.Add(time.Hour)
			}},
		{name: "Conditions NotOnOrAfter a second later", signing: samltest.SignAssertion, ok: true,
			change: func(r *samltest.Response, now time.Time) {
				r.NotOnOrAfter, r.SubjectNotOnOrAfter = now.Add(-skew+time.Second), now.Add(time.Hour)
			}},
		{name: "Conditions NotOnOrAfter at now (within the skew)", signing: samltest.SignAssertion, ok: true,
			change: func(r *samltest.Response, now time.Time) {
				r.NotOnOrAfter, r.SubjectNotOnOrAfter = now, now.Add(time.Hour)
			}},
		{name: "SubjectConfirmationData NotOnOrAfter at now minus the skew", signing: samltest.SignAssertion,
			change: func(r *samltest.Response, now time.Time) {
				r.SubjectNotOnOrAfter = now.Add(-skew)
			}},
		{name: "SubjectConfirmationData NotOnOrAfter a second later", signing: samltest.SignAssertion, ok: true,
			change: func(r *samltest.Response, now time.Time) {
				r.SubjectNotOnOrAfter = now.Add(-skew + time.Second)
			}},
		{name: "SubjectConfirmationData NotBefore in the future", signing: samltest.SignAssertion,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				_, a := parts(t, doc)
				setTimeAttr(samltest.MustFind(t, a, "Subject", "SubjectConfirmation", "SubjectConfirmationData"), "NotBefore", now.Add(10*time.Minute))
				f.idps[tenant].Resign(t, a, samltest.Signer{})
			}},
		{name: "SubjectConfirmationData NotBefore a second past the skew", signing: samltest.SignBoth,
			edit: func(t testing.TB, f *fixture, tenant string, doc *etree.Document, now time.Time) {
				resp, a := parts(t, doc)
				setTimeAttr(samltest.MustFind(t, a, "Subject", "SubjectConfirmation", "SubjectConfirmationData"), "NotBefore", now.Add(skew+time.Second))
				f.idps[tenant].Resign(t, a, samltest.Signer{})
				f.idps[tenant].Resign(t, resp, samltest.Signer{})
			}},
	}
	for _, tt := range tests {
		for _, tenant := range allTenants {
			t.Run(tt.name+"/"+tenant, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t)
				now := f.clock.Now()
				l := f.startLogin(tenant, "")
				doc := f.genuine(t, tenant, l, tt.signing, func(r *samltest.Response) {
					if tt.change != nil {
						tt.change(r, now)
					}
				})
				if tt.edit != nil {
					tt.edit(t, f, tenant, doc, now)
				}
				rec := f.post(t, tenant, samltest.XMLBytes(t, doc), l)
				if tt.ok {
					if rec.Code != http.StatusSeeOther || sessionCookieOf(rec) == nil {
						t.Fatalf("got status %d, want 303 with a session: %s", rec.Code, rec.Body)
					}
					return
				}
				f.checkRefused(t, tenant, rec, ReasonExpired)
			})
		}
	}
}

// attackDocs returns, for tenant, the attack documents of this file as
// unsolicited responses: the seeds of the fuzz targets.
func attackDocs(t testing.TB, f *fixture, tenant string) map[string][]byte {
	t.Helper()
	docs := map[string][]byte{}
	for _, fg := range forgeries() {
		doc := f.genuine(t, tenant, nil, fg.signing, nil)
		fg.forge(t, f, tenant, doc)
		docs["forgery "+fg.name] = fg.serialize(t, doc)
	}
	prefix := adminOf(tenant)
	whole := prefix + ".evil.example"
	for name, sep := range map[string]string{"comment": "<!--x-->", "CDATA": "<![CDATA[", "character reference": "&#46;"} {
		doc := f.genuine(t, tenant, nil, samltest.SignAssertion, func(r *samltest.Response) { r.NameID = whole })
		raw := samltest.XMLBytes(t, doc)
		switch sep {
		case "<![CDATA[":
			raw = bytes.ReplaceAll(raw, []byte(prefix+".evil.example<"), []byte(prefix+"<![CDATA[.evil.example]]><"))
		case "&#46;":
			raw = bytes.ReplaceAll(raw, []byte(prefix+"."), []byte(prefix+"&#46;"))
		default:
			raw = bytes.ReplaceAll(raw, []byte(prefix+"."), []byte(prefix+sep+"."))
		}
		docs["split by a "+name] = raw
	}
	for _, dt := range doctypes(tenant, "http://127.0.0.1:9/dtd", "file:///etc/hostname") {
		docs["doctype "+dt.name] = withDoctype(t, f.genuine(t, tenant, nil, samltest.SignAssertion, nil), dt.doctype)
	}
	genuine := samltest.XMLBytes(t, f.genuine(t, tenant, nil, samltest.SignAssertion, nil))
	for _, ex := range exhaustions(100, 100) {
		docs["exhaustion "+ex.name] = ex.build(genuine)
	}
	return docs
}

// FuzzACSAttacks starts from the attack documents, freshly signed by the
// IdP of acme, which accepts unsolicited responses, so that the fuzzer
// mutates documents that are one step from a valid login. Nothing may
// panic or answer 5xx, and a login may only ever be of a user the IdP
// signed.
func FuzzACSAttacks(f *testing.F) {
	fx := newFixture(f)
	signed := map[string]bool{userOf(acme): true, adminOf(acme) + ".evil.example": true}
	docs := attackDocs(f, fx, acme)
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		f.Add(docs[name])
	}
	f.Add(samltest.XMLBytes(f, fx.genuine(f, acme, nil, samltest.SignBoth, nil)))
	f.Fuzz(func(t *testing.T, doc []byte) {
		rec := fx.postSafely(t, acme, url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}})
		switch rec.Code {
		case http.StatusSeeOther:
			s, ok := fx.authenticate(sessionCookieOf(rec))
			if !ok {
				t.Fatalf("got 303 without a session that authenticates")
			}
			if !signed[s.NameID] || (s.Email != "" && !signed[s.Email]) {
				t.Fatalf("signed in as %q (email %q), whom the IdP never signed: %q", s.NameID, s.Email, doc)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			if names := sessionCookiesSet(rec); len(names) > 0 {
				t.Fatalf("refused with status %d but set %q", rec.Code, names)
			}
		default:
			t.Fatalf("got status %d, want 303, 400, 403 or 413", rec.Code)
		}
	})
}

// TestFuzzACSSeeds writes the attack documents, made for globex (the
// tenant FuzzACS posts to), as seeds of FuzzACS in testdata/fuzz/FuzzACS,
// which the fuzz run in CI starts from. They are signed with this run's
// keys, which later runs do not trust, so they exercise the structure of
// the attacks rather than their signatures. Run with -update to rewrite
// them; otherwise it checks that they are there and well-formed.
func TestFuzzACSSeeds(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "fuzz", "FuzzACS")
	f := newFixture(t)
	docs := attackDocs(t, f, globex)
	for name, doc := range docs {
		file := filepath.Join(dir, "attack-"+seedName(name))
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(doc)) + ")\nstring(\"\")\n"
			if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		content, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%v (run go test -update to create it)", err)
			continue
		}
		lines := strings.Split(string(content), "\n")
		if len(lines) < 3 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasPrefix(lines[2], "string(") {
			t.Errorf("%s is not a FuzzACS seed", file)
		}
	}
}

// seedName makes a file name of an attack's name.
func seedName(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
