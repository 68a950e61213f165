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
	"github.com/sso-gateway/sso-gateway/metadata"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// TenantReport is what an operator needs to set a tenant up in Entra ID
// and to see whether it works: the exact values to type into the
// enterprise application, where its IdP metadata comes from, and the
// state of its signing certificates.
type TenantReport struct {
	ID string `json:"id"`
	// Identifier, ReplyURL and SignOnURL go into Entra's Basic SAML
	// Configuration; LogoutURL is optional there.
	Identifier    string   `json:"identifier"`
	ReplyURL      string   `json:"reply_url"`
	SignOnURL     string   `json:"sign_on_url"`
	LogoutURL     string   `json:"logout_url"`
	SPMetadataURL string   `json:"sp_metadata_url"`
	Hosts         []string `json:"hosts,omitempty"`
	EmailDomains  []string `json:"email_domains,omitempty"`
	// MetadataSource is "file <path>" or "url <url>".
	MetadataSource string       `json:"metadata_source"`
	LastLoaded     time.Time    `json:"last_loaded,omitzero"`
	LastError      string       `json:"last_error,omitempty"`
	Certificates   []CertReport `json:"signing_certificates"`
	Ready          bool         `json:"ready"`
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
		SignOnURL:     SignOnBase(cfg, t).String() + "/",
		LogoutURL:     urls.SLO.String(),
		SPMetadataURL: urls.Metadata.String(),
		Hosts:         t.Hosts,
		EmailDomains:  t.EmailDomains,
	}
	if t.MetadataURL != nil {
		r.MetadataSource = "url " + t.MetadataURL.Redacted()
	} else {
		r.MetadataSource = "file " + t.MetadataFile
	}
	return r
}

func (r *TenantReport) setMetadata(md *metadata.IDP) {
	r.Ready = md != nil
	if md == nil {
		return
	}
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
			r.setMetadata(tenant.IDP())
		}
		if s, ok := g.refresher.Status(t.ID); ok {
			r.LastLoaded, r.LastError = s.LastSuccess, s.LastError
		} else {
			r.LastLoaded = st.fileLoaded[t.ID]
		}
		out = append(out, r)
	}
	return out
}

// LoadTenantReports describes every tenant of cfg, loading each tenant's
// IdP metadata now from its file or URL, as `sso-gateway tenants` does.
func LoadTenantReports(ctx context.Context, cfg *config.Config, client *http.Client, now time.Time) []TenantReport {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	out := make([]TenantReport, 0, len(cfg.Tenants))
	for _, t := range cfg.Tenants {
		r := newReport(cfg, t)
		var md *metadata.IDP
		var err error
		switch {
		case t.MetadataURL != nil:
			var data []byte
			data, _, err = metadata.Fetch(ctx, client, t.MetadataURL, metadata.Validators{})
			if err == nil {
				md, err = metadata.Parse(data, now, t.MetadataSigners)
			}
		case t.MetadataFile != "":
			md, err = metadata.ReadFile(t.MetadataFile, now, t.MetadataSigners)
		}
		if err != nil {
			r.LastError = err.Error()
		} else {
			r.LastLoaded = now
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
		if !r.Ready {
			ready = "NO"
		}
		fmt.Fprintf(w, "tenant %s (ready: %s)\n", r.ID, ready)
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
		if !r.LastLoaded.IsZero() {
			fmt.Fprintf(w, "  Last loaded:            %s\n", r.LastLoaded.UTC().Format(time.RFC3339))
		}
		if r.LastError != "" {
			fmt.Fprintf(w, "  Last error:             %s\n", r.LastError)
		}
		for _, c := range r.Certificates {
			state := fmt.Sprintf("expires in %d days", int(c.NotAfter.Sub(now).Hours()/24))
			switch {
			case now.After(c.NotAfter):
				state = "EXPIRED"
			case now.Before(c.NotBefore):
				state = "not valid yet"
			}
			fmt.Fprintf(w, "  Signing certificate:    %s, valid %s to %s (%s)\n", c.Subject,
				c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly), state)
		}
	}
}

// serveTenants is the admin listener's /tenants page: text for people,
// JSON with ?format=json.
func (g *Gateway) serveTenants(w http.ResponseWriter, r *http.Request) {
	reports := g.TenantReports()
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(reports)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	WriteTenantReports(w, reports, g.clock.Now())
}
