package config_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// Files the tests of hosts, metadata refresh, metadata signing, SP key
// rollover, session attributes and headers add to a fixture's folder.
const (
	twoCertsFile = "signers/two.pem"      // sp-cert.pem and other-cert.pem
	badCertFile  = "signers/bad-cert.pem" // a CERTIFICATE block that is not one
	thirdCert    = "third-cert.pem"       // a third 2048-bit pair
	thirdKey     = "third-key.pem"
	departmentID = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/department"
)

// newOptionsFixture is newFixture with the files above, for the tests of
// the options that name them.
func newOptionsFixture(t *testing.T) *fixture {
	t.Helper()
	fx := newFixture(t)
	var two []byte
	for _, name := range []string{spCertFile, otherCertFile} {
		data, err := os.ReadFile(fx.path(name))
		if err != nil {
			t.Fatal(err)
		}
		two = append(two, data...)
	}
	testfiles.Write(t, fx.path(twoCertsFile), two)
	testfiles.Write(t, fx.path(badCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	now := time.Now()
	key, cert := samltest.NewKeyPair(t, "third", 2048, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	samltest.WriteKeyPairPEM(t, fx.dir, "third", key, cert)
	return fx
}

// TestNewKeysParse: every key of hosts, metadata refresh and signing, SP
// key rollover, session attributes and headers lands in its typed field.
func TestNewKeysParse(t *testing.T) {
	t.Parallel()
	fx := newOptionsFixture(t)
	doc := apply(t, baseDoc(),
		edit{"tenants[0].hosts", []any{" Docs.ACME.example. ", "acme-docs.example.net"}},
		edit{"tenants[0].session_attributes", []any{"email", "groups"}},
		edit{"tenants[0].headers", map[string]any{
			"x-remote-department":  departmentID,
			"X-REMOTE-COST-CENTER": "costcenter",
			"X-Remote-Employee-Id": "http://schemas.microsoft.com/identity/claims/employeeid",
		}},
		edit{"tenants[1].idp_metadata_signing_cert", spCertFile},
		edit{"tenants[2]", map[string]any{
			"id":                            "fabrikam",
			"idp_metadata_url":              "https://login.microsoftonline.com/fabrikam/federationmetadata/2007-06/federationmetadata.xml",
			"idp_metadata_refresh_interval": "15m",
			"idp_metadata_signing_cert":     fx.path(twoCertsFile),
			"session_attributes":            []any{},
			"hosts":                         []any{"fabrikam.example"},
		}},
		edit{"sp.previous_cert_file", otherCertFile},
		edit{"sp.previous_key_file", otherKeyFile},
	)
	cfg, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, listProblems(config.Problems(err)))
	}
	acme, contoso, fabrikam := cfg.Tenants[0], cfg.Tenants[1], cfg.Tenants[2]

	lists := []struct {
		name      string
		got, want []string
	}{
		{"Tenants[0].Hosts", acme.Hosts, []string{"docs.acme.example", "acme-docs.example.net"}},
		{"Tenants[1].Hosts", contoso.Hosts, nil},
		{"Tenants[2].Hosts", fabrikam.Hosts, []string{"fabrikam.example"}},
		{"Tenants[0].SessionAttributes", acme.SessionAttributes, []string{"email", "groups"}},
	}
	for _, l := range lists {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s: got %q, want %q", l.name, l.got, l.want)
		}
	}
	// nil keeps every attribute; empty keeps none.
	if contoso.SessionAttributes != nil {
		t.Errorf("Tenants[1].SessionAttributes: got %q, want nil (keep all)", contoso.SessionAttributes)
	}
	if fabrikam.SessionAttributes == nil || len(fabrikam.SessionAttributes) != 0 {
		t.Errorf("Tenants[2].SessionAttributes: got %#v, want an empty, non-nil list (keep none)", fabrikam.SessionAttributes)
	}

	wantHeaders := map[string]string{
		"X-Remote-Department":  departmentID,
		"X-Remote-Cost-Center": "costcenter",
		"X-Remote-Employee-Id": "http://schemas.microsoft.com/identity/claims/employeeid",
	}
	if len(acme.Headers) != len(wantHeaders) {
		t.Errorf("Tenants[0].Headers: got %q, want %q", acme.Headers, wantHeaders)
	}
	for name, claim := range wantHeaders {
		if got := acme.Headers[name]; got != claim {
			t.Errorf("Tenants[0].Headers[%q]: got %q, want %q", name, got, claim)
		}
	}
	if contoso.Headers != nil || fabrikam.Headers != nil {
		t.Errorf("Headers of tenants without any: got %q and %q, want nil", contoso.Headers, fabrikam.Headers)
	}

	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"Tenants[1].MetadataRefresh (default)", contoso.MetadataRefresh, time.Hour},
		{"Tenants[2].MetadataRefresh", fabrikam.MetadataRefresh, 15 * time.Minute},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("%s: got %s, want %s", d.name, d.got, d.want)
		}
	}
	if config.DefaultMetadataRefresh != time.Hour {
		t.Errorf("DefaultMetadataRefresh: got %s, want 1h", config.DefaultMetadataRefresh)
	}

	signers := func(name string, got []*x509.Certificate, want ...string) {
		t.Helper()
		var cns []string
		for _, c := range got {
			cns = append(cns, c.Subject.CommonName)
		}
		if !slices.Equal(cns, want) {
			t.Errorf("%s: got certificates %q, want %q", name, cns, want)
		}
	}
	signers("Tenants[0].MetadataSigners", acme.MetadataSigners)
	signers("Tenants[1].MetadataSigners", contoso.MetadataSigners, "sp")
	signers("Tenants[2].MetadataSigners", fabrikam.MetadataSigners, "sp", "other")

	sp := cfg.SP
	if sp.PreviousCertificate == nil || sp.PreviousKey == nil {
		t.Fatalf("SP previous pair: got certificate %v and key %v, want both", sp.PreviousCertificate != nil, sp.PreviousKey != nil)
	}
	if got := sp.PreviousCertificate.Subject.CommonName; got != "other" {
		t.Errorf("SP.PreviousCertificate CN: got %q, want %q", got, "other")
	}
	if pub, ok := sp.PreviousCertificate.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&sp.PreviousKey.PublicKey) {
		t.Error("SP.PreviousKey does not match SP.PreviousCertificate")
	}
	if sp.PreviousKey.Equal(sp.Key) {
		t.Error("SP.PreviousKey is the current key")
	}

	// A change to any of the new files is a change of configuration.
	for _, name := range []string{fx.path(spCertFile), fx.path(twoCertsFile), fx.path(otherCertFile), fx.path(otherKeyFile)} {
		if !slices.Contains(cfg.Files, name) {
			t.Errorf("Files: got %q, want it to include %s", cfg.Files, name)
		}
	}
}

// TestNewKeysDefaults: a document without the new keys has no hosts, no
// signers, no previous SP key, every session attribute and no headers.
func TestNewKeysDefaults(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	cfg, err := config.Parse(marshal(t, baseDoc()), fx.dir, envOf(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.SP.PreviousCertificate != nil || cfg.SP.PreviousKey != nil {
		t.Error("SP previous pair: got one, want none")
	}
	for i, tn := range cfg.Tenants {
		if tn.Hosts != nil || tn.MetadataSigners != nil || tn.SessionAttributes != nil || tn.Headers != nil {
			t.Errorf("Tenants[%d]: got hosts %q, %d signers, session attributes %q, headers %q; want none",
				i, tn.Hosts, len(tn.MetadataSigners), tn.SessionAttributes, tn.Headers)
		}
	}
	if got := cfg.Tenants[1].MetadataRefresh; got != config.DefaultMetadataRefresh {
		t.Errorf("Tenants[1].MetadataRefresh: got %s, want %s", got, config.DefaultMetadataRefresh)
	}
}

// TestNewKeysProblems: each mistake in the new keys is reported at its key
// path, and nothing else is.
func TestNewKeysProblems(t *testing.T) {
	t.Parallel()
	fx := newOptionsFixture(t)
	notHost := func(h string) problem {
		return problem{"tenants[0].hosts[0]", `"` + h + `" is not a host name`}
	}
	tests := []struct {
		name  string
		edits []edit
		want  []problem
	}{
		// hosts
		{"host with scheme", []edit{{"tenants[0].hosts", []any{"https://docs.acme.example"}}}, []problem{notHost("https://docs.acme.example")}},
		{"host with port", []edit{{"tenants[0].hosts", []any{"docs.acme.example:8443"}}}, []problem{notHost("docs.acme.example:8443")}},
		{"host with path", []edit{{"tenants[0].hosts", []any{"docs.acme.example/docs"}}}, []problem{notHost("docs.acme.example/docs")}},
		{"single label", []edit{{"tenants[0].hosts", []any{"localhost"}}}, []problem{notHost("localhost")}},
		{"empty host", []edit{{"tenants[0].hosts", []any{""}}}, []problem{notHost("")}},
		{"wildcard", []edit{{"tenants[0].hosts", []any{"*.acme.example"}}}, []problem{notHost("*.acme.example")}},
		{"underscore", []edit{{"tenants[0].hosts", []any{"docs_acme.example"}}}, []problem{notHost("docs_acme.example")}},
		{"second host bad", []edit{{"tenants[0].hosts", []any{"docs.acme.example", "docs acme.example"}}},
			[]problem{{"tenants[0].hosts[1]", "is not a host name"}}},
		{"host of two tenants", []edit{
			{"tenants[0].hosts", []any{"docs.acme.example"}},
			{"tenants[1].hosts", []any{"Docs.ACME.example."}},
		}, []problem{{"tenants[1].hosts[0]", `"docs.acme.example" is already tenants[0].hosts[0]`}}},
		{"host twice in one tenant", []edit{{"tenants[0].hosts", []any{"docs.acme.example", "DOCS.acme.example"}}},
			[]problem{{"tenants[0].hosts[1]", "is already tenants[0].hosts[0]"}}},
		{"public_url's host", []edit{{"tenants[1].hosts", []any{"SSO.Example.com."}}},
			[]problem{{"tenants[1].hosts[0]", `"sso.example.com" is public_url's host`}}},
		{"public_url's host, public_url with a port", []edit{
			{"public_url", "https://sso.example.com:8443"},
			{"tenants[0].hosts", []any{"sso.example.com"}},
		}, []problem{{"tenants[0].hosts[0]", "is public_url's host"}}},

		// idp_metadata_refresh_interval
		{"refresh under a minute", []edit{{"tenants[1].idp_metadata_refresh_interval", "59s"}},
			[]problem{{"tenants[1].idp_metadata_refresh_interval", "must be at least 1m0s (got 59s)"}}},
		{"refresh in milliseconds", []edit{{"tenants[1].idp_metadata_refresh_interval", "500ms"}},
			[]problem{{"tenants[1].idp_metadata_refresh_interval", "must be at least 1m0s"}}},
		{"refresh zero", []edit{{"tenants[1].idp_metadata_refresh_interval", "0s"}},
			[]problem{{"tenants[1].idp_metadata_refresh_interval", "must be positive"}}},
		{"refresh not a duration", []edit{{"tenants[1].idp_metadata_refresh_interval", "hourly"}},
			[]problem{{"tenants[1].idp_metadata_refresh_interval", `not a duration like 90s or 8h: "hourly"`}}},
		{"refresh on a file tenant", []edit{{"tenants[0].idp_metadata_refresh_interval", "1h"}},
			[]problem{{"tenants[0].idp_metadata_refresh_interval", "applies only to idp_metadata_url"}}},
		{"short refresh on a file tenant", []edit{{"tenants[0].idp_metadata_refresh_interval", "10s"}}, []problem{
			{"tenants[0].idp_metadata_refresh_interval", "must be at least 1m0s"},
			{"tenants[0].idp_metadata_refresh_interval", "applies only to idp_metadata_url"},
		}},
		{"refresh of exactly a minute", []edit{{"tenants[1].idp_metadata_refresh_interval", "1m"}}, nil},

		// idp_metadata_signing_cert
		{"signing cert missing", []edit{{"tenants[1].idp_metadata_signing_cert", "signers/none.pem"}},
			[]problem{{"tenants[1].idp_metadata_signing_cert", "does not exist"}}},
		{"signing cert not PEM", []edit{{"tenants[1].idp_metadata_signing_cert", garbageFile}},
			[]problem{{"tenants[1].idp_metadata_signing_cert", "no PEM CERTIFICATE block"}}},
		{"signing cert is a key", []edit{{"tenants[1].idp_metadata_signing_cert", spKeyFile}},
			[]problem{{"tenants[1].idp_metadata_signing_cert", "no PEM CERTIFICATE block"}}},
		{"signing cert not a certificate", []edit{{"tenants[1].idp_metadata_signing_cert", badCertFile}},
			[]problem{{"tenants[1].idp_metadata_signing_cert", "parse certificate"}}},
		{"signing cert a folder", []edit{{"tenants[1].idp_metadata_signing_cert", folderName}},
			[]problem{{"tenants[1].idp_metadata_signing_cert", "is not a regular file"}}},

		// sp.previous_cert_file, sp.previous_key_file
		{"previous pair mismatched", []edit{{"sp.previous_cert_file", otherCertFile}, {"sp.previous_key_file", thirdKey}},
			[]problem{{"sp", "previous_cert_file does not match previous_key_file"}}},
		{"previous pair is the current pair", []edit{{"sp.previous_cert_file", spCertFile}, {"sp.previous_key_file", spKeyFile}},
			[]problem{{"sp.previous_key_file", "is the same key as key_file"}}},
		{"previous certificate without key", []edit{{"sp.previous_cert_file", otherCertFile}},
			[]problem{{"sp.previous_key_file", "is required"}}},
		{"previous key without certificate", []edit{{"sp.previous_key_file", otherKeyFile}},
			[]problem{{"sp.previous_cert_file", "is required"}}},
		{"previous key too small", []edit{{"sp.previous_cert_file", smallCertFile}, {"sp.previous_key_file", smallKeyFile}},
			[]problem{{"sp.previous_key_file", "RSA key has 1024 bits"}}},
		{"previous key file missing", []edit{{"sp.previous_cert_file", otherCertFile}, {"sp.previous_key_file", "nope.pem"}},
			[]problem{{"sp.previous_key_file", "does not exist"}}},

		// session_attributes
		{"unknown session attribute", []edit{{"tenants[0].session_attributes", []any{"email", "phone"}}},
			[]problem{{"tenants[0].session_attributes[1]", `"phone" is not one of email, name, groups`}}},
		{"session attribute in upper case", []edit{{"tenants[0].session_attributes", []any{"Email"}}},
			[]problem{{"tenants[0].session_attributes[0]", `"Email" is not one of email, name, groups`}}},
		{"session attribute twice", []edit{{"tenants[1].session_attributes", []any{"email", "name", "email"}}},
			[]problem{{"tenants[1].session_attributes[2]", `"email" is listed twice`}}},
		{"session attributes not a list", []edit{{"tenants[0].session_attributes", "email"}},
			[]problem{{"tenants[0].session_attributes", "must be a list"}}},

		// headers
		{"header without X-Remote-", []edit{{"tenants[0].headers", map[string]any{"X-Department": departmentID}}},
			[]problem{{"tenants[0].headers.X-Department", "must start with X-Remote-"}}},
		{"header with underscores", []edit{{"tenants[0].headers", map[string]any{"X_Remote_Department": departmentID}}},
			[]problem{{"tenants[0].headers.X_Remote_Department", "valid header name"}}},
		{"header with one underscore", []edit{{"tenants[0].headers", map[string]any{"X-Remote-Cost_Center": departmentID}}},
			[]problem{{"tenants[0].headers.X-Remote-Cost_Center", "valid header name"}}},
		{"header with a space", []edit{{"tenants[0].headers", map[string]any{"X-Remote-Cost Center": departmentID}}},
			[]problem{{"tenants[0].headers.X-Remote-Cost Center", "valid header name"}}},
		{"header with a colon", []edit{{"tenants[0].headers", map[string]any{"X-Remote-Dept:": departmentID}}},
			[]problem{{"tenants[0].headers.X-Remote-Dept:", "valid header name"}}},
		{"header not ASCII", []edit{{"tenants[0].headers", map[string]any{"X-Remote-Département": departmentID}}},
			[]problem{{"tenants[0].headers.X-Remote-Département", "valid header name"}}},
		{"header X-Remote- alone", []edit{{"tenants[0].headers", map[string]any{"X-Remote-": departmentID}}},
			[]problem{{"tenants[0].headers.X-Remote-", "must start with X-Remote-"}}},
		{"reserved headers in any case", []edit{{"tenants[0].headers", map[string]any{
			"X-Remote-User": departmentID, "x-remote-email": departmentID, "X-REMOTE-NAME": departmentID,
			"X-Remote-Groups": departmentID, "x-Remote-tenant": departmentID, "x-remote-groups-overage": departmentID,
		}}}, []problem{
			{"tenants[0].headers.X-Remote-User", "X-Remote-User is one of the gateway's own headers"},
			{"tenants[0].headers.x-remote-email", "X-Remote-Email is one of the gateway's own headers"},
			{"tenants[0].headers.X-REMOTE-NAME", "X-Remote-Name is one of the gateway's own headers"},
			{"tenants[0].headers.X-Remote-Groups", "X-Remote-Groups is one of the gateway's own headers"},
			{"tenants[0].headers.x-Remote-tenant", "X-Remote-Tenant is one of the gateway's own headers"},
			{"tenants[0].headers.x-remote-groups-overage", "X-Remote-Groups-Overage is one of the gateway's own headers"},
		}},
		{"header with an empty claim", []edit{{"tenants[0].headers", map[string]any{"X-Remote-Department": ""}}},
			[]problem{{"tenants[0].headers.X-Remote-Department", "needs the claim"}}},
		{"header with a blank claim", []edit{{"tenants[1].headers", map[string]any{"X-Remote-Department": "  "}}},
			[]problem{{"tenants[1].headers.X-Remote-Department", "needs the claim"}}},
		{"headers not a mapping", []edit{{"tenants[0].headers", []any{"X-Remote-Department"}}},
			[]problem{{"tenants[0].headers", "must be a mapping"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := apply(t, baseDoc(), tt.edits...)
			_, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("Parse: got %q, want no error", err)
			}
			checkProblems(t, err, tt.want)
		})
	}
}

// TestHeaderDuplicatedInAnotherCase: two spellings of one header name are
// one problem, at the path of either spelling (YAML mappings have no order
// once decoded into a Go map).
func TestHeaderDuplicatedInAnotherCase(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	doc := apply(t, baseDoc(), edit{"tenants[0].headers", map[string]any{
		"X-Remote-Department": departmentID,
		"x-remote-department": "http://schemas.example/other",
	}})
	_, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	got := config.Problems(err)
	if len(got) != 1 {
		t.Fatalf("got problems:\n%swant exactly one", listProblems(got))
	}
	p := got[0]
	if p.Path != "tenants[0].headers.X-Remote-Department" && p.Path != "tenants[0].headers.x-remote-department" {
		t.Errorf("got path %q, want tenants[0].headers.<one of the spellings>", p.Path)
	}
	if !strings.Contains(p.Msg, "X-Remote-Department is listed twice") {
		t.Errorf("got message %q, want it to say X-Remote-Department is listed twice", p.Msg)
	}
}

// TestNewKeysEveryProblemAtOnce: mistakes in every new key of one file are
// all reported together.
func TestNewKeysEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	fx := newOptionsFixture(t)
	doc := apply(t, baseDoc(),
		edit{"tenants[0].hosts", []any{"sso.example.com", "docs.acme.example"}},
		edit{"tenants[1].hosts", []any{"docs.acme.example"}},
		edit{"tenants[1].idp_metadata_refresh_interval", "30s"},
		edit{"tenants[0].idp_metadata_signing_cert", garbageFile},
		edit{"sp.previous_cert_file", spCertFile},
		edit{"sp.previous_key_file", spKeyFile},
		edit{"tenants[0].session_attributes", []any{"mail"}},
		edit{"tenants[1].headers", map[string]any{"X-Remote-User": "x"}},
	)
	_, err := config.Parse(marshal(t, doc), fx.dir, envOf(nil))
	checkProblems(t, err, []problem{
		{"tenants[0].hosts[0]", "is public_url's host"},
		{"tenants[1].hosts[0]", "is already tenants[0].hosts[1]"},
		{"tenants[1].idp_metadata_refresh_interval", "must be at least"},
		{"tenants[0].idp_metadata_signing_cert", "no PEM CERTIFICATE block"},
		{"sp.previous_key_file", "is the same key as key_file"},
		{"tenants[0].session_attributes[0]", `"mail" is not one of`},
		{"tenants[1].headers.X-Remote-User", "one of the gateway's own headers"},
	})
}
