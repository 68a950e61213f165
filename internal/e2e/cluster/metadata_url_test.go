package cluster

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// TestMetadataURLChangeKeepsGoodMetadata: a reload that points a tenant's
// idp_metadata_url at a URL that does not answer yet succeeds, and the
// tenant keeps signing users in with the metadata it had (same IdP, same
// pinned signers) until the new URL delivers.
func TestMetadataURLChangeKeepsGoodMetadata(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spCert, spKey := testfiles.SPKeyPair(t, dir, "sp-cert.pem", "sp-key.pem")
	idp := samltest.NewIDP(t)
	var served atomic.Int64
	md := newSwitchServer(t, "metadata", metadataHandler(idp.MetadataXML(), &served))
	upstream := newSwitchServer(t, "upstream", upstreamHandler)
	g := startGateway(t, t, "gw-url-change", gatewaySpec{
		upstream: upstream.url(),
		spCert:   spCert,
		spKey:    spKey,
		keys:     []sessionKey{newSessionKey(t, "K1")},
		tenants:  []tenantSpec{{id: "moving", metadataURL: md.url() + "/old.xml"}},
	})
	login(t, g, idp, "moving", "before@moving.example")

	// The IdP's new URL does not answer yet (500 at every path here).
	md.setMode("error")
	g.reconfigure(t, "success", func(s *gatewaySpec) {
		s.tenants = []tenantSpec{{id: "moving", metadataURL: md.url() + "/new.xml"}}
	})
	if v := g.metrics(t).value("sso_gateway_tenant_ready", "tenant", "moving"); v != 1 {
		t.Errorf("sso_gateway_tenant_ready after the reload: got %v, want 1 (the last good metadata kept)", v)
	}
	r, err := postACS(g.url(), "moving", loginForm(t, idp, "moving", "after@moving.example"))
	if err != nil {
		t.Fatal(err)
	}
	if r.code != http.StatusSeeOther {
		t.Errorf("login after the reload: got %v, want 303 (the same IdP, whose metadata the gateway had)", r)
	}
}
