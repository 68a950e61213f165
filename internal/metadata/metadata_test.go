package metadata_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	crewsamlsp "github.com/crewjam/saml/samlsp"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// The real Entra file and the certificate that signed it. Its certificate is
// valid from 2023-11-16 to 2026-11-16, so tests that accept it run at
// entraNow.
const (
	entraFile       = "entra_federationmetadata.xml"
	entraSignerFile = "entra_federationmetadata_signer.pem"
	entraCommonFile = "entra_common_tenant-independent_federationmetadata_multi-cert.xml"
	entraEntityID   = "https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec/"
	entraSSOURL     = "https://login.microsoftonline.com/a9054a0f-2011-4e31-b3ac-fd8c354146ec/saml2"
)

var entraNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

const utf8BOM = "\xef\xbb\xbf"

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// entraSigner is the certificate that signed the real Entra file.
func entraSigner(t testing.TB) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(readTestdata(t, entraSignerFile))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("testdata/%s: no CERTIFICATE block", entraSignerFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// editXML parses metadata (with or without a byte order mark), lets edit
// change its root element, and writes it back with the byte order mark, as
// Entra serves it.
func editXML(t testing.TB, data []byte, edit func(root *etree.Element)) []byte {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(bytes.TrimPrefix(data, []byte(utf8BOM))); err != nil {
		t.Fatal(err)
	}
	edit(doc.Root())
	out, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(utf8BOM), out...)
}

// removeAll removes every element at path under root, and fails if there
// is none, so that an edit cannot silently miss.
func removeAll(t testing.TB, root *etree.Element, path string) {
	t.Helper()
	els := root.FindElements(path)
	if len(els) == 0 {
		t.Fatalf("no element at %s", path)
	}
	for _, el := range els {
		el.Parent().RemoveChild(el)
	}
}

// newIDP is a samltest IdP whose certificate is valid from an hour before
// now for a year.
func newIDP(t testing.TB, now time.Time) *samltest.IDP {
	t.Helper()
	idp := samltest.NewIDP(t)
	idp.Key, idp.Cert = samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	return idp
}

// ecdsaCert is a self-signed certificate for a P-256 key, valid around now.
func ecdsaCert(t testing.TB, now time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ECDSA signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestParseAcceptsEntraFile(t *testing.T) {
	t.Parallel()
	data := readTestdata(t, entraFile)
	if !bytes.HasPrefix(data, []byte(utf8BOM)) {
		t.Fatalf("testdata/%s does not start with a byte order mark; the test would not cover it", entraFile)
	}
	md, err := metadata.Parse(data, entraNow, nil)
	if err != nil {
		t.Fatal(err)
	}
	signer := entraSigner(t)
	for _, c := range []struct{ what, got, want string }{
		{"Entity.EntityID", md.Entity.EntityID, entraEntityID},
		{"SSOURL", md.SSOURL, entraSSOURL},
		{"SLOURL", md.SLOURL, entraSSOURL},
		{"EntraTenantID()", md.EntraTenantID(), "a9054a0f-2011-4e31-b3ac-fd8c354146ec"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.what, c.got, c.want)
		}
	}
	if len(md.SigningCerts) != 1 || !md.SigningCerts[0].Equal(signer) {
		t.Errorf("SigningCerts: got %d certificates, want the one in testdata/%s", len(md.SigningCerts), entraSignerFile)
	}
	if !md.ValidUntil.IsZero() || md.CacheDuration != 0 {
		t.Errorf("caching policy: got validUntil %v and cacheDuration %v, want neither (Entra sets none)", md.ValidUntil, md.CacheDuration)
	}
	if got, want := md.EarliestExpiry(entraNow), signer.NotAfter; !got.Equal(want) {
		t.Errorf("EarliestExpiry: got %q, want %q", got, want)
	}
}

// TestEntraTenantID: only an Entra entity ID names a directory.
func TestEntraTenantID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ entityID, want string }{
		{"https://sts.windows.net/A9054A0F-2011-4E31-B3AC-FD8C354146EC/", "a9054a0f-2011-4e31-b3ac-fd8c354146ec"},
		{"https://sts.windows.net/{tenantid}/", ""}, // the tenant-independent document
		{"https://sts.windows.net/a9054a0f-2011-4e31-b3ac-fd8c354146ec", ""},
		{"https://sts.windows.net.evil.example/a9054a0f-2011-4e31-b3ac-fd8c354146ec/", ""},
		{"https://idp.example.com/saml", ""},
	} {
		md := &metadata.IDP{Entity: &crewsaml.EntityDescriptor{EntityID: tc.entityID}}
		if got := md.EntraTenantID(); got != tc.want {
			t.Errorf("EntraTenantID(%q): got %q, want %q", tc.entityID, got, tc.want)
		}
	}
}

// TestParseTrimsEntity: the parsed entity keeps what a service provider
// uses (keys, sign-on and logout endpoints) and drops Entra's WS-Federation
// roles.
func TestParseTrimsEntity(t *testing.T) {
	t.Parallel()
	now := time.Now()
	rollover := newIDP(t, now)
	_, next := samltest.NewKeyPair(t, "next", 2048, now.Add(-time.Hour), now.AddDate(2, 0, 0))
	rollover.ExtraCerts = append(rollover.ExtraCerts, next)
	tests := []struct {
		name     string
		data     []byte
		now      time.Time
		keys     int
		sso, slo int
	}{
		{"real Entra file", readTestdata(t, entraFile), entraNow, 1, 2, 1},
		{"samltest metadata with a rollover certificate", rollover.MetadataXML(), now, 2, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			full, err := crewsamlsp.ParseMetadata(bytes.TrimPrefix(tt.data, []byte(utf8BOM)))
			if err != nil {
				t.Fatal(err)
			}
			if len(full.RoleDescriptors) == 0 {
				t.Fatal("the document has no RoleDescriptor; the test would not show trimming")
			}
			md, err := metadata.Parse(tt.data, tt.now, nil)
			if err != nil {
				t.Fatal(err)
			}
			e := md.Entity
			if len(e.RoleDescriptors) != 0 || e.Signature != nil || len(e.SPSSODescriptors) != 0 {
				t.Errorf("got %d RoleDescriptors, %d SPSSODescriptors, signature %v; want none", len(e.RoleDescriptors), len(e.SPSSODescriptors), e.Signature != nil)
			}
			if e.EntityID != full.EntityID {
				t.Errorf("EntityID: got %q, want %q", e.EntityID, full.EntityID)
			}
			if len(e.IDPSSODescriptors) != 1 {
				t.Fatalf("got %d IDPSSODescriptors, want 1", len(e.IDPSSODescriptors))
			}
			d := e.IDPSSODescriptors[0]
			if len(d.KeyDescriptors) != tt.keys || len(d.SingleSignOnServices) != tt.sso || len(d.SingleLogoutServices) != tt.slo {
				t.Errorf("got %d KeyDescriptors, %d SingleSignOnServices, %d SingleLogoutServices; want %d, %d, %d",
					len(d.KeyDescriptors), len(d.SingleSignOnServices), len(d.SingleLogoutServices), tt.keys, tt.sso, tt.slo)
			}
			if d.ProtocolSupportEnumeration != full.IDPSSODescriptors[0].ProtocolSupportEnumeration {
				t.Errorf("protocolSupportEnumeration: got %q, want %q", d.ProtocolSupportEnumeration, full.IDPSSODescriptors[0].ProtocolSupportEnumeration)
			}
			for i, k := range d.KeyDescriptors {
				if got, want := k.KeyInfo.X509Data.X509Certificates[0].Data, full.IDPSSODescriptors[0].KeyDescriptors[i].KeyInfo.X509Data.X509Certificates[0].Data; got != want {
					t.Errorf("KeyDescriptors[%d]: certificate changed", i)
				}
			}
			if len(md.SigningCerts) != tt.keys {
				t.Errorf("SigningCerts: got %d, want %d", len(md.SigningCerts), tt.keys)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	base := newIDP(t, now)
	_, expired := samltest.NewKeyPair(t, "expired", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -1))
	_, future := samltest.NewKeyPair(t, "future", 2048, now.AddDate(0, 0, 1), now.AddDate(3, 0, 0))
	with := func(edit func(*samltest.IDP)) []byte {
		idp := *base
		edit(&idp)
		return idp.MetadataXML()
	}
	tests := []struct {
		name          string
		data          []byte
		certs         int
		slo           string
		validUntil    time.Time
		cacheDuration time.Duration
	}{
		{
			name:  "samltest metadata",
			data:  base.MetadataXML(),
			certs: 1, slo: base.SSOURL,
		},
		{
			name:  "an expired certificate beside a valid one (Entra after a rollover)",
			data:  with(func(idp *samltest.IDP) { idp.ExtraCerts = []*x509.Certificate{expired} }),
			certs: 2, slo: base.SSOURL,
		},
		{
			name:  "a not yet valid certificate beside a valid one (Entra before a rollover)",
			data:  with(func(idp *samltest.IDP) { idp.ExtraCerts = []*x509.Certificate{future} }),
			certs: 2, slo: base.SSOURL,
		},
		{
			name: "no SingleLogoutService",
			data: editXML(t, base.MetadataXML(), func(root *etree.Element) {
				removeAll(t, root, "./IDPSSODescriptor/SingleLogoutService")
			}),
			certs: 1, slo: "",
		},
		{
			name: "a KeyDescriptor without use",
			data: editXML(t, base.MetadataXML(), func(root *etree.Element) {
				for _, k := range root.FindElements("./IDPSSODescriptor/KeyDescriptor") {
					k.RemoveAttr("use")
				}
			}),
			certs: 1, slo: base.SSOURL,
		},
		{
			name: "validUntil and cacheDuration in the future",
			data: editXML(t, base.MetadataXML(), func(root *etree.Element) {
				root.CreateAttr("validUntil", now.Add(48*time.Hour).Format(time.RFC3339))
				root.CreateAttr("cacheDuration", "PT10M")
			}),
			certs: 1, slo: base.SSOURL, validUntil: now.Add(48 * time.Hour), cacheDuration: 10 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md, err := metadata.Parse(tt.data, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(md.SigningCerts) != tt.certs {
				t.Errorf("SigningCerts: got %d, want %d", len(md.SigningCerts), tt.certs)
			}
			if md.SSOURL != base.SSOURL {
				t.Errorf("SSOURL: got %q, want %q", md.SSOURL, base.SSOURL)
			}
			if md.SLOURL != tt.slo {
				t.Errorf("SLOURL: got %q, want %q", md.SLOURL, tt.slo)
			}
			if !md.ValidUntil.Equal(tt.validUntil) {
				t.Errorf("ValidUntil: got %q, want %q", md.ValidUntil, tt.validUntil)
			}
			if md.CacheDuration != tt.cacheDuration {
				t.Errorf("CacheDuration: got %q, want %q", md.CacheDuration, tt.cacheDuration)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	base := newIDP(t, now)
	_, expired := samltest.NewKeyPair(t, "expired", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -1))
	_, expired2 := samltest.NewKeyPair(t, "expired too", 2048, now.AddDate(-2, 0, 0), now.Add(-time.Second))
	_, future := samltest.NewKeyPair(t, "future", 2048, now.AddDate(0, 0, 1), now.AddDate(3, 0, 0))
	_, weak := samltest.NewKeyPair(t, "weak", 1024, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	ec := ecdsaCert(t, now)
	with := func(edit func(*samltest.IDP)) []byte {
		idp := *base
		edit(&idp)
		return idp.MetadataXML()
	}
	edit := func(f func(root *etree.Element)) []byte { return editXML(t, base.MetadataXML(), f) }
	commonNow := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // its certificates are valid then

	tests := []struct {
		name string
		data []byte
		now  time.Time // zero: now
		want string
		// reason, for a document unusable only because of the time: the
		// sentinel the error matches. Inspect accepts these documents and
		// refuses every other.
		reason error
	}{
		{
			name:   "expired certificates only",
			data:   with(func(idp *samltest.IDP) { idp.Cert, idp.ExtraCerts = expired, []*x509.Certificate{expired2} }),
			want:   "no signing certificate is valid now: every one has expired, the newest less than a day ago on " + expired2.NotAfter.UTC().Format(time.DateOnly) + "; download the metadata again",
			reason: metadata.ErrExpired,
		},
		{
			name:   "not yet valid certificate only",
			data:   with(func(idp *samltest.IDP) { idp.Cert = future }),
			want:   "no signing certificate is valid now: the earliest becomes valid in 1 day on " + future.NotBefore.UTC().Format(time.RFC3339) + "; check this host's clock",
			reason: metadata.ErrNotYetValid,
		},
		{
			name:   "a gap between an expired and a not yet valid certificate",
			data:   with(func(idp *samltest.IDP) { idp.Cert, idp.ExtraCerts = future, []*x509.Certificate{expired} }),
			want:   "the earliest becomes valid in 1 day on " + future.NotBefore.UTC().Format(time.RFC3339) + " (the newest expired 1 day ago on " + expired.NotAfter.UTC().Format(time.DateOnly) + ")",
			reason: metadata.ErrNotYetValid,
		},
		{
			name:   "real Entra file 17 days after its certificate expired",
			data:   readTestdata(t, entraFile),
			now:    time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC),
			want:   "no signing certificate is valid now: every one has expired, the newest 17 days ago on 2026-11-16",
			reason: metadata.ErrExpired,
		},
		{
			name: "1024-bit RSA key",
			data: with(func(idp *samltest.IDP) { idp.Cert = weak }),
			want: `signing certificate "weak" has a 1024-bit key, want at least 2048`,
		},
		{
			// Every listed certificate is trusted, so one weak key is
			// enough to forge logins.
			name: "1024-bit RSA key beside a good one",
			data: with(func(idp *samltest.IDP) { idp.ExtraCerts = []*x509.Certificate{weak} }),
			want: "has a 1024-bit key",
		},
		{
			name: "ECDSA key",
			data: with(func(idp *samltest.IDP) { idp.ExtraCerts = []*x509.Certificate{ec} }),
			want: `signing certificate "ECDSA signing" has a *ecdsa.PublicKey key, want RSA`,
		},
		{
			name: "Entra's tenant-independent template",
			data: readTestdata(t, entraCommonFile),
			now:  commonNow,
			want: `entityID "https://sts.windows.net/{tenantid}/" is Entra's tenant-independent template`,
		},
		{
			name: "no IDPSSODescriptor",
			data: edit(func(root *etree.Element) { removeAll(t, root, "./IDPSSODescriptor") }),
			want: "no IDPSSODescriptor",
		},
		{
			name: "no HTTP-Redirect SingleSignOnService",
			data: edit(func(root *etree.Element) {
				removeAll(t, root, "./IDPSSODescriptor/SingleSignOnService[@Binding='urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect']")
			}),
			want: "no HTTP-Redirect SingleSignOnService",
		},
		{
			name: "SingleSignOnService at a javascript: URL",
			data: edit(func(root *etree.Element) {
				for _, s := range root.FindElements("./IDPSSODescriptor/SingleSignOnService") {
					s.CreateAttr("Location", "javascript:alert(1)")
				}
			}),
			want: `invalid url scheme "javascript"`,
		},
		{
			name: "SingleSignOnService at a URL without a host",
			data: edit(func(root *etree.Element) {
				for _, s := range root.FindElements("./IDPSSODescriptor/SingleSignOnService") {
					s.CreateAttr("Location", "https:///saml2")
				}
			}),
			want: `SingleSignOnService location "https:///saml2" is not an http(s) URL`,
		},
		{
			name:   "validUntil in the past",
			data:   edit(func(root *etree.Element) { root.CreateAttr("validUntil", now.Add(-time.Hour).Format(time.RFC3339)) }),
			want:   "expired at " + now.Add(-time.Hour).Format(time.RFC3339) + " (validUntil)",
			reason: metadata.ErrValidUntilPassed,
		},
		{
			name:   "validUntil now",
			data:   edit(func(root *etree.Element) { root.CreateAttr("validUntil", now.Format(time.RFC3339)) }),
			want:   "(validUntil)",
			reason: metadata.ErrValidUntilPassed,
		},
		{
			// The WS-Federation roles still carry the certificate; a SAML
			// service provider must not take it from them.
			name: "signing certificates only in the WS-Federation roles",
			data: edit(func(root *etree.Element) { removeAll(t, root, "./IDPSSODescriptor/KeyDescriptor") }),
			want: "no signing certificate",
		},
		{
			name: "encryption certificate only",
			data: edit(func(root *etree.Element) {
				for _, k := range root.FindElements("./IDPSSODescriptor/KeyDescriptor") {
					k.CreateAttr("use", "encryption")
				}
			}),
			want: "no signing certificate",
		},
		{
			name: "certificate not base64",
			data: edit(func(root *etree.Element) {
				root.FindElement("./IDPSSODescriptor/KeyDescriptor/KeyInfo/X509Data/X509Certificate").SetText("not*base64")
			}),
			want: "signing certificate: not base64",
		},
		{
			name: "no entityID",
			data: edit(func(root *etree.Element) { root.RemoveAttr("entityID") }),
			want: "no entityID",
		},
		{
			name: "not XML",
			data: []byte("<html><body>Sign in to your account"),
			want: "not SAML metadata",
		},
		{
			name: "empty",
			data: nil,
			want: "not SAML metadata",
		},
		{
			name: "larger than MaxSize",
			data: append(base.MetadataXML(), bytes.Repeat([]byte(" "), metadata.MaxSize)...),
			want: "larger than",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			at := tt.now
			if at.IsZero() {
				at = now
			}
			md, err := metadata.Parse(tt.data, at, nil)
			if err == nil {
				t.Fatalf("got metadata for %q, want an error containing %q", md.Entity.EntityID, tt.want)
			}
			if !errors.Is(err, metadata.ErrUnusable) {
				t.Errorf("got %q, want an error matching ErrUnusable", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			for _, reason := range []error{metadata.ErrExpired, metadata.ErrNotYetValid, metadata.ErrValidUntilPassed} {
				if got, want := errors.Is(err, reason), reason == tt.reason; got != want {
					t.Errorf("errors.Is(%q, %q): got %v, want %v", err, reason, got, want)
				}
			}
			_, ierr := metadata.Inspect(tt.data, nil)
			switch {
			case tt.reason != nil && ierr != nil:
				t.Errorf("Inspect: got %q, want no error (only the time makes it unusable)", ierr)
			case tt.reason == nil && (ierr == nil || ierr.Error() != err.Error()):
				t.Errorf("Inspect: got %v, want %q, as Parse", ierr, err)
			}
		})
	}
}

// TestParseSigned: with signers, only metadata signed by one of them is
// accepted.
func TestParseSigned(t *testing.T) {
	t.Parallel()
	signed := readTestdata(t, entraFile)
	signer := entraSigner(t)
	idp := newIDP(t, time.Now())
	_, other := samltest.NewKeyPair(t, "Microsoft Azure Federated SSO Certificate", 2048, entraNow.AddDate(-1, 0, 0), entraNow.AddDate(1, 0, 0))

	// One byte of the signed content changed: the sign-on URL.
	tampered := bytes.Replace(signed, []byte(`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="`+entraSSOURL[:len(entraSSOURL)-1]+`2"`),
		[]byte(`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="`+entraSSOURL[:len(entraSSOURL)-1]+`3"`), -1)
	if bytes.Equal(tampered, signed) || len(tampered) != len(signed) {
		t.Fatal("the sign-on URL is not in the file; the tampering test would not tamper")
	}
	// Unsigned, the tampered file is still good metadata: only the
	// signature can tell.
	if md, err := metadata.Parse(tampered, entraNow, nil); err != nil || !strings.HasSuffix(md.SSOURL, "/saml3") {
		t.Fatalf("tampered file without signers: got %v, want it accepted with the changed URL", err)
	}

	tests := []struct {
		name    string
		data    []byte
		now     time.Time
		signers []*x509.Certificate
		want    string // "" accepts
	}{
		{name: "real Entra file, its own certificate", data: signed, now: entraNow, signers: []*x509.Certificate{signer}},
		{name: "real Entra file, one of several certificates", data: signed, now: entraNow, signers: []*x509.Certificate{other, signer}},
		{name: "real Entra file, another certificate", data: signed, now: entraNow, signers: []*x509.Certificate{other}, want: "signature does not verify against idp_metadata_signing_cert"},
		{name: "unsigned metadata naming the signer", data: idp.MetadataXML(), now: time.Now(), signers: []*x509.Certificate{idp.Cert}, want: "signature does not verify"},
		{name: "unsigned metadata, Entra's certificate", data: idp.MetadataXML(), now: time.Now(), signers: []*x509.Certificate{signer}, want: "signature does not verify"},
		{name: "one byte of the signed content changed", data: tampered, now: entraNow, signers: []*x509.Certificate{signer}, want: "signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md, err := metadata.Parse(tt.data, tt.now, tt.signers)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %q, want no error", err)
				}
				if md.Entity.EntityID != entraEntityID || md.SSOURL != entraSSOURL {
					t.Errorf("got entity %q at %q, want %q at %q", md.Entity.EntityID, md.SSOURL, entraEntityID, entraSSOURL)
				}
				return
			}
			if err == nil {
				t.Fatalf("got metadata, want an error containing %q", tt.want)
			}
			if !errors.Is(err, metadata.ErrUnusable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want an ErrUnusable containing %q", err, tt.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	oversize := filepath.Join(t.TempDir(), "big.xml")
	if err := os.WriteFile(oversize, bytes.Repeat([]byte(" "), metadata.MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		signers []*x509.Certificate
		check   func(error) bool
		want    string // "" accepts
	}{
		{name: "real Entra file", file: filepath.Join("testdata", entraFile)},
		{name: "real Entra file, signed", file: filepath.Join("testdata", entraFile), signers: []*x509.Certificate{entraSigner(t)}},
		{name: "missing", file: filepath.Join(t.TempDir(), "nope.xml"), check: func(err error) bool { return errors.Is(err, fs.ErrNotExist) }, want: "nope.xml does not exist"},
		{name: "a folder", file: t.TempDir(), check: func(err error) bool { return err != nil }, want: "is not a regular file"},
		{name: "larger than MaxSize", file: oversize, check: func(err error) bool { return errors.Is(err, metadata.ErrUnusable) }, want: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md, err := metadata.ReadFile(tt.file, entraNow, tt.signers)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %q, want no error", err)
				}
				if md.Entity.EntityID != entraEntityID {
					t.Errorf("got %q, want %q", md.Entity.EntityID, entraEntityID)
				}
				return
			}
			if err == nil || !tt.check(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestEarliestExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cert := func(notBefore, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{NotBefore: notBefore, NotAfter: notAfter}
	}
	days := func(n int) time.Time { return now.AddDate(0, 0, n) }
	tests := []struct {
		name  string
		certs []*x509.Certificate
		want  time.Time
	}{
		{"one valid", []*x509.Certificate{cert(days(-10), days(100))}, days(100)},
		{"earliest of two valid", []*x509.Certificate{cert(days(-10), days(300)), cert(days(-100), days(30))}, days(30)},
		{"an expired one is ignored", []*x509.Certificate{cert(days(-1000), days(-1)), cert(days(-10), days(300))}, days(300)},
		{"a not yet valid one is ignored", []*x509.Certificate{cert(days(1), days(2)), cert(days(-10), days(300))}, days(300)},
		{"expiring this instant still counts", []*x509.Certificate{cert(days(-10), now), cert(days(-10), days(300))}, now},
		{"starting this instant counts", []*x509.Certificate{cert(now, days(5)), cert(days(-10), days(300))}, days(5)},
		{"none valid", []*x509.Certificate{cert(days(-1000), days(-1)), cert(days(1), days(300))}, time.Time{}},
		{"no certificates", nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			md := &metadata.IDP{SigningCerts: tt.certs}
			if got := md.EarliestExpiry(now); !got.Equal(tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEarliestExpiryOfParsedRollover: during a rollover the metadata
// lists the old and the new certificate; the alert must watch the old one
// while it is valid, then the new one.
func TestEarliestExpiryOfParsedRollover(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	idp := samltest.NewIDP(t)
	_, old := samltest.NewKeyPair(t, "old", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, 20))
	_, next := samltest.NewKeyPair(t, "new", 2048, now.Add(-time.Hour), now.AddDate(3, 0, 0))
	idp.Cert, idp.ExtraCerts = next, []*x509.Certificate{old}
	md, err := metadata.Parse(idp.MetadataXML(), now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want time.Time
	}{
		{now, old.NotAfter},
		{now.AddDate(0, 0, 21), next.NotAfter},
		{now.AddDate(4, 0, 0), time.Time{}},
	} {
		if got := md.EarliestExpiry(tc.at); !got.Equal(tc.want) {
			t.Errorf("at %s: got %q, want %q", tc.at.Format(time.DateOnly), got, tc.want)
		}
	}
}

func TestParseBase64Cert(t *testing.T) {
	t.Parallel()
	signer := entraSigner(t)
	// Metadata often folds the base64 at 64 columns and indents it.
	b64 := func(b []byte) string {
		enc := base64.StdEncoding.EncodeToString(b)
		var sb strings.Builder
		for len(enc) > 64 {
			sb.WriteString("\n    " + enc[:64])
			enc = enc[64:]
		}
		sb.WriteString("\n    " + enc + "\n  ")
		return sb.String()
	}
	tests := []struct {
		name string
		in   string
		want string // "" accepts
	}{
		{"folded with whitespace", b64(signer.Raw), ""},
		{"not base64", "****", "not base64"},
		{"base64 of something else", b64([]byte("hello")), "not a certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cert, err := metadata.ParseBase64Cert(tt.in)
			if tt.want == "" {
				if err != nil || !cert.Equal(signer) {
					t.Errorf("got %v, want the certificate", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
