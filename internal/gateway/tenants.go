package gateway

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TenantReport is what an operator needs to set a tenant up in Entra ID
// and to see whether it works: the exact values to type into the
// enterprise application, the IdP it trusts, and every problem. Lists are
// never null in JSON, so that scripts need no special case.
type TenantReport struct {
	ID string `json:"id"`
	// Identifier, ReplyURL and SignOnURL go into Entra's Basic SAML
	// Configuration; LogoutURL is optional there.
	Identifier    string   `json:"identifier"`
	ReplyURL      string   `json:"reply_url"`
	SignOnURL     string   `json:"sign_on_url"`
	LogoutURL     string   `json:"logout_url"`
	SPMetadataURL string   `json:"sp_metadata_url"`
	Hosts         []string `json:"hosts"`
	EmailDomains  []string `json:"email_domains"`
	// MetadataSource is "file <path>" or "url <url>".
	MetadataSource string `json:"metadata_source"`
	// IDPEntityID and IDPSignInURL are the IdP's, as its metadata says:
	// Entra's Microsoft Entra Identifier and Login URL.
	IDPEntityID  string       `json:"idp_entity_id,omitempty"`
	IDPSignInURL string       `json:"idp_sign_in_url,omitempty"`
	LastLoaded   time.Time    `json:"last_loaded,omitzero"`
	Certificates []CertReport `json:"signing_certificates"`
	// Problems are everything wrong with the tenant now: its own
	// configuration and metadata, and a metadata URL that fails.
	Problems []string `json:"problems"`
	// KeptLastGood means the tenant has problems but serves the metadata
	// it had before them.
	KeptLastGood bool `json:"kept_last_good_metadata"`
	Ready        bool `json:"ready"`
}

// CertReport describes one IdP signing certificate.
type CertReport struct {
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

func newReport(cfg *config.Config, t config.Tenant) TenantReport {
	base := TenantBase(cfg, t)
	urls := samlsp.TenantURLs(base, t.ID)
	r := TenantReport{
		ID:            t.ID,
		Identifier:    urls.EntityID,
		ReplyURL:      urls.ACS.String(),
		SignOnURL:     SignOnBase(cfg, t).String(),
		LogoutURL:     urls.SLO.String(),
		SPMetadataURL: urls.Metadata.String(),
		Hosts:         nonNil(t.Hosts),
		EmailDomains:  nonNil(t.EmailDomains),
		Certificates:  []CertReport{},
		Problems:      []string{},
	}
	if t.MetadataURL != nil {
		r.MetadataSource = "url " + metadata.Redact(t.MetadataURL)
	} else {
		r.MetadataSource = "file " + t.MetadataFile
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// setMetadata describes md, which may be unusable now (its certificates
// expired): the report shows what it holds either way.
func (r *TenantReport) setMetadata(md *metadata.IDP) {
	if md == nil {
		return
	}
	r.IDPEntityID = md.Entity.EntityID
	r.IDPSignInURL = md.SSOURL
	for _, c := range md.SigningCerts {
		r.Certificates = append(r.Certificates, certReport(c))
	}
}

func certReport(c *x509.Certificate) CertReport {
	return CertReport{Subject: c.Subject.String(), NotBefore: c.NotBefore, NotAfter: c.NotAfter}
}

// TenantReports describes every tenant of the running gateway.
func (g *Gateway) TenantReports() []TenantReport {
	st := g.state.Load()
	out := make([]TenantReport, 0, len(st.cfg.Tenants))
	tenants := g.provider.CurrentTenants()
	for _, t := range st.cfg.Tenants {
		r := newReport(st.cfg, t)
		if tenant, ok := tenants.Get(t.ID); ok {
			s := g.tenantStatus(st, tenant)
			r.setMetadata(tenant.IDP())
			r.Ready, r.KeptLastGood, r.LastLoaded = s.ready, s.kept, s.loaded
			r.Problems = append(r.Problems, s.problems...)
		}
		out = append(out, r)
	}
	return out
}

// LoadTenantReports describes every tenant of cfg, loading each tenant's
// IdP metadata now from its file or URL, as `sso-gateway tenants` does.
// A document that is unusable only because of the time (its certificates
// expired, or are not valid yet) is still described.
func LoadTenantReports(ctx context.Context, cfg *config.Config, client *http.Client, now time.Time) []TenantReport {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	loads := loadTenants(cfg, now, nil, nil)
	out := make([]TenantReport, 0, len(cfg.Tenants))
	for i, t := range cfg.Tenants {
		r := newReport(cfg, t)
		l := loads[i]
		for _, p := range l.problems {
			r.Problems = append(r.Problems, p.Error())
		}
		md := l.md
		var inspected *metadata.IDP
		if l.target != nil {
			var data []byte
			var err error
			md, data, err = fetchTarget(ctx, client, l.target, now)
			if err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("tenants[%d].idp_metadata_url: %v", i, err))
			}
			if md == nil && data != nil {
				inspected, _ = metadata.Inspect(data, t.MetadataSigners)
			}
		} else if md == nil && len(t.Problems) == 0 {
			if data, err := metadata.ReadBytes(t.MetadataFile); err == nil {
				inspected, _ = metadata.Inspect(data, t.MetadataSigners)
			}
		}
		r.Ready = len(r.Problems) == 0 && md != nil
		if r.Ready {
			r.LastLoaded = now
		}
		if md == nil {
			md = inspected
		}
		r.setMetadata(md)
		out = append(out, r)
	}
	return out
}

// WriteTenantReports prints reports for people: one block per tenant.
func WriteTenantReports(w io.Writer, reports []TenantReport, now time.Time) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		ready := "yes"
		switch {
		case !r.Ready:
			ready = "NO"
		case r.KeptLastGood:
			ready = "yes, with its last good IdP metadata"
		}
		fmt.Fprintf(w, "tenant %s (ready: %s)\n", r.ID, ready)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  PROBLEM:                %s\n", p)
		}
		fmt.Fprintf(w, "  Identifier (Entity ID): %s\n", r.Identifier)
		fmt.Fprintf(w, "  Reply URL (ACS URL):    %s\n", r.ReplyURL)
		fmt.Fprintf(w, "  Sign on URL:            %s\n", r.SignOnURL)
		fmt.Fprintf(w, "  Logout URL:             %s\n", r.LogoutURL)
		fmt.Fprintf(w, "  SP metadata:            %s\n", r.SPMetadataURL)
		if len(r.Hosts) > 0 {
			fmt.Fprintf(w, "  Hosts:                  %s\n", strings.Join(r.Hosts, ", "))
		}
		if len(r.EmailDomains) > 0 {
			fmt.Fprintf(w, "  Email domains:          %s\n", strings.Join(r.EmailDomains, ", "))
		}
		fmt.Fprintf(w, "  IdP metadata:           %s\n", r.MetadataSource)
		if r.IDPEntityID != "" {
			fmt.Fprintf(w, "  IdP entity ID:          %s\n", r.IDPEntityID)
			fmt.Fprintf(w, "  IdP sign-in URL:        %s\n", r.IDPSignInURL)
		}
		if !r.LastLoaded.IsZero() {
			fmt.Fprintf(w, "  Last loaded:            %s\n", r.LastLoaded.UTC().Format(time.RFC3339))
		}
		for _, c := range r.Certificates {
			fmt.Fprintf(w, "  Signing certificate:    %s, valid %s to %s (%s)\n", c.Subject,
				c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly), certState(c, now))
		}
	}
}

// certState says where now is in a certificate's validity, in days.
func certState(c CertReport, now time.Time) string {
	days := func(d time.Duration) string {
		n := int(d.Hours() / 24)
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	switch {
	case now.After(c.NotAfter):
		return "EXPIRED " + days(now.Sub(c.NotAfter)) + " ago"
	case now.Before(c.NotBefore):
		return "NOT VALID YET: valid in " + days(c.NotBefore.Sub(now))
	}
	return "expires in " + days(c.NotAfter.Sub(now))
}

// serveTenants is the admin listener's /tenants page: text for people,
// JSON with ?format=json.
func (g *Gateway) serveTenants(w http.ResponseWriter, r *http.Request) {
	reports := g.TenantReports()
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		_ = WriteTenantReportsJSON(w, reports)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	WriteTenantReports(w, reports, g.clock.Now())
}

// WriteTenantReportsJSON prints reports for scripts: a JSON array.
func WriteTenantReportsJSON(w io.Writer, reports []TenantReport) error {
	if reports == nil {
		reports = []TenantReport{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(reports)
}

// IdentifierChange is a value a tenant's Entra enterprise application is
// configured with that differs between two configurations. Entra compares
// the Identifier and Reply URL exactly, so each one breaks every login
// until the application is updated (AADSTS700016, AADSTS50011).
type IdentifierChange struct {
	Tenant   string
	Field    string // "Identifier", "Reply URL" or "Logout URL"
	Old, New string
}

func (c IdentifierChange) String() string {
	return fmt.Sprintf("tenant %s: %s changes from %s to %s", c.Tenant, c.Field, c.Old, c.New)
}

// IdentifierChanges lists the Entra set-up values that differ between two
// configurations, for the tenants both have.
func IdentifierChanges(old, cfg *config.Config) []IdentifierChange {
	before := map[string]TenantReport{}
	for _, t := range old.Tenants {
		before[t.ID] = newReport(old, t)
	}
	var out []IdentifierChange
	for _, t := range cfg.Tenants {
		was, ok := before[t.ID]
		if !ok {
			continue
		}
		now := newReport(cfg, t)
		for _, f := range []struct{ name, old, new string }{
			{"Identifier", was.Identifier, now.Identifier},
			{"Reply URL", was.ReplyURL, now.ReplyURL},
			{"Logout URL", was.LogoutURL, now.LogoutURL},
		} {
			if f.old != f.new {
				out = append(out, IdentifierChange{Tenant: t.ID, Field: f.name, Old: f.old, New: f.new})
			}
		}
	}
	return out
}
