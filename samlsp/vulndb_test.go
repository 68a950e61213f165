package samlsp

import (
	"testing"

	"github.com/beevik/etree"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestGO2026_6909 checks that the two bugs of the Go vulnerability
// database's GO-2026-6909 ("github.com/crewjam/saml through v0.5.1", but
// recorded for every version) are absent from the crewjam/saml in use, for
// assertions the IdP itself signed: an assertion without an Issuer must be
// refused without a panic, and a NameID in a foreign namespace must not be
// taken for the subject's. .ci/run lets govulncheck pass this finding on
// the strength of this test.
func TestGO2026_6909(t *testing.T) {
	t.Parallel()
	for _, tenant := range allTenants {
		t.Run(tenant, func(t *testing.T) {
			t.Parallel()
			t.Run("foreign-namespace NameID", func(t *testing.T) {
				f := newFixture(t)
				l := f.startLogin(tenant, "")
				doc := f.genuine(t, tenant, l, samltest.SignAssertion, nil)
				_, assertion := parts(t, doc)
				subject := samltest.MustFind(t, assertion, "Subject")
				nameID := samltest.MustFind(t, subject, "NameID")
				foreign := etree.NewElement("evil:NameID")
				foreign.CreateAttr("xmlns:evil", "urn:example:evil")
				foreign.SetText(adminOf(tenant))
				subject.InsertChildAt(nameID.Index(), foreign)
				subject.RemoveChild(nameID)
				f.idps[tenant].Resign(t, assertion, samltest.Signer{})
				rec := f.post(t, tenant, samltest.XMLBytes(t, doc), l)
				f.checkRefused(t, tenant, rec, ReasonMalformed)
			})

			t.Run("assertion without an Issuer", func(t *testing.T) {
				f := newFixture(t)
				l := f.startLogin(tenant, "")
				doc := f.genuine(t, tenant, l, samltest.SignAssertion, nil)
				_, assertion := parts(t, doc)
				assertion.RemoveChild(samltest.MustFind(t, assertion, "Issuer"))
				f.idps[tenant].Resign(t, assertion, samltest.Signer{})
				rec := f.post(t, tenant, samltest.XMLBytes(t, doc), l)
				f.checkRefused(t, tenant, rec, ReasonIssuer, ReasonMalformed)
			})
		})
	}
}
