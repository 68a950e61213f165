package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
)

// TestTenantProblemsAreTheTenantsAlone shows that a problem with one
// tenant's own IdP material is reported with the tenant's ID, leaves the
// configuration usable for the others, and is listed with the tenant.
func TestTenantProblemsAreTheTenantsAlone(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := apply(t, baseDoc(),
		edit{"tenants[1].idp_metadata_signing_cert", "signers/none.pem"},
	)
	cfg, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	checkProblems(t, err, []problem{{"tenants[1].idp_metadata_signing_cert", "does not exist"}})
	if g := config.Global(err); g != nil {
		t.Fatalf("Global: got %v, want nil: a tenant's certificate must not stop the gateway", g)
	}
	if cfg == nil {
		t.Fatal("Parse returned no Config for a tenant problem")
	}
	ps := config.Problems(err)
	if ps[0].Tenant != "contoso" {
		t.Errorf("Problem.Tenant: got %q, want %q", ps[0].Tenant, "contoso")
	}
	if got := cfg.Tenants[1].Problems; len(got) != 1 || got[0] != ps[0] {
		t.Errorf("Tenants[1].Problems: got %v, want the one problem", got)
	}
	if got := cfg.Tenants[0].Problems; got != nil {
		t.Errorf("Tenants[0].Problems: got %v, want none", got)
	}
	if cfg.Tenants[1].MetadataSigners != nil {
		t.Error("a tenant whose pinned signer did not load must have no signers (and must not be served)")
	}

	// With a global problem too, Global keeps only that one.
	doc = apply(t, doc, edit{"public_url", "ftp://sso.example.com"})
	_, err = config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	global := config.Problems(config.Global(err))
	if len(global) != 1 || global[0].Path != "public_url" {
		t.Errorf("Global: got %v, want only the public_url problem", global)
	}
	if len(config.Problems(err)) != 2 {
		t.Errorf("Problems: got %v, want both", config.Problems(err))
	}
}

// TestMetadataFileIsReadByTheGateway shows that config does not read a
// metadata file (a missing one is a tenant problem, found when the gateway
// loads it), but resolves its path and watches it.
func TestMetadataFileIsReadByTheGateway(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := apply(t, baseDoc(), edit{"tenants[0].idp_metadata_file", "idp/missing.xml"})
	cfg, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := fx.path("idp/missing.xml")
	if got := cfg.Tenants[0].MetadataFile; got != want {
		t.Errorf("MetadataFile: got %q, want %q", got, want)
	}
	if !slices.Contains(cfg.Files, want) {
		t.Errorf("Files: got %q, want it to hold %q so that creating the file reloads", cfg.Files, want)
	}
}

// TestPublicURLNormalised shows that public_url is taken in the one form
// Entra compares equal to what the admin typed, and that the form taken is
// reported.
func TestPublicURLNormalised(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, c := range []struct {
		in, want string
		warning  string // a fragment, or "" for none
	}{
		{"https://cloudimanage.com", "https://cloudimanage.com", ""},
		{"https://cloudimanage.com/", "https://cloudimanage.com", ""},
		{"https://cloudimanage.com:8443", "https://cloudimanage.com:8443", ""},
		{"https://CloudiManage.COM", "https://cloudimanage.com", "lower case"},
		{"https://cloudimanage.com:443", "https://cloudimanage.com", "port 443 is the default for https"},
		{"https://CLOUDIMANAGE.com:443/", "https://cloudimanage.com", "lower case; port 443"},
		{"http://127.0.0.1:80", "http://127.0.0.1", "port 80 is the default for http"},
		{"http://[::1]:80", "http://[::1]", "port 80"},
		{"http://LOCALHOST:8080", "http://localhost:8080", "lower case"},
		{"https://cloudimanage.com:80", "https://cloudimanage.com:80", ""},
	} {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(marshal(t, apply(t, baseDoc(), edit{"public_url", c.in})), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := cfg.PublicURL.String(); got != c.want {
				t.Errorf("PublicURL: got %q, want %q", got, c.want)
			}
			var msgs []string
			for _, w := range cfg.Warnings {
				msgs = append(msgs, w.Error())
			}
			joined := strings.Join(msgs, "\n")
			switch {
			case c.warning == "" && len(msgs) > 0:
				t.Errorf("Warnings: got %q, want none", joined)
			case c.warning != "" && (len(msgs) != 1 || !strings.Contains(joined, c.warning) || !strings.HasPrefix(joined, "public_url: ") || !strings.Contains(joined, c.want)):
				t.Errorf("Warnings: got %q, want one at public_url naming %q and containing %q", joined, c.want, c.warning)
			}
		})
	}
}

// TestGlobalOfNil keeps Global(nil) nil, so callers can write
// "if config.Global(err) != nil".
func TestGlobalOfNil(t *testing.T) {
	if err := config.Global(nil); err != nil {
		t.Errorf("Global(nil): got %v, want nil", err)
	}
	if err := config.Global(errors.New("boom")); err == nil {
		t.Error("Global of a plain error: got nil, want it kept as a global problem")
	}
}

// TestAdminListenExposure: an admin listener that may be reachable from
// outside gets a warning, not a problem.
func TestAdminListenExposure(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	for _, c := range []struct {
		addr, warning string // "" for none
	}{
		{"127.0.0.1:9090", ""},
		{"[::1]:9090", ""},
		{"localhost:9090", ""},
		{"10.1.2.3:9090", ""},
		{"192.168.0.10:9090", ""},
		{"[fd00::1]:9090", ""},
		{"0.0.0.0:9090", "listens on every interface"},
		{":9090", "listens on every interface"},
		{"[::]:9090", "listens on every interface"},
		{"203.0.113.7:9090", "listens on 203.0.113.7"},
		{"admin.example.com:9090", "may not be private"},
	} {
		t.Run(c.addr, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(marshal(t, apply(t, baseDoc(), edit{"admin_listen", c.addr})), fx.dir, envOf(nil))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				if w.Path == "admin_listen" {
					got = append(got, w.Msg)
				}
			}
			switch {
			case c.warning == "" && len(got) > 0:
				t.Errorf("got warnings %q, want none", got)
			case c.warning != "" && (len(got) != 1 || !strings.Contains(got[0], c.warning) || !strings.Contains(got[0], "without authentication")):
				t.Errorf("got %q, want one warning saying %q", got, c.warning)
			}
		})
	}
}
