// Package demo runs the whole product on one machine with no files to
// prepare: a demo Entra-like identity provider with the user B.Simon, a demo
// document service as the upstream, and the gateway in front of it with two
// tenants, all on 127.0.0.1.
//
// The gateway is configured exactly as in production: Run writes a config
// file, key pair and IdP metadata into a folder and loads them with the same
// code as "sso-gateway -config".
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/demo/docs"
	"github.com/sso-gateway/sso-gateway/internal/demo/idp"
	"github.com/sso-gateway/sso-gateway/internal/logging"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Default addresses; each can be overridden.
const (
	DefaultListen         = "127.0.0.1:8080"
	DefaultAdminListen    = "127.0.0.1:9090"
	DefaultIDPListen      = "127.0.0.1:8081"
	DefaultUpstreamListen = "127.0.0.1:8082"
)

// The demo's people and organisations.
const (
	Username      = "B.Simon"
	UserEmail     = "B.Simon@contoso.example"
	DirectoryID   = "6f1c3a7e-8d2b-4c5e-9a0f-1b2c3d4e5f60"
	GroupDocUsers = "9f3b7c1e-2a4d-4e8f-b6c5-0d1e2f3a4b5c"
)

// Tenant is a demo tenant.
type Tenant struct {
	ID, Name, EmailDomain string
}

// Tenants returns the demo's two customers. Both are connected to the same
// demo directory, like two Customer_IDs of one company: the gateway keeps
// them apart by audience.
func Tenants() []Tenant {
	return []Tenant{
		{ID: "contoso", Name: "Contoso Documents", EmailDomain: "contoso.example"},
		{ID: "fabrikam", Name: "Fabrikam Documents", EmailDomain: "fabrikam.example"},
	}
}

// Options configure the demo.
type Options struct {
	Listen, AdminListen, IDPListen, UpstreamListen string
	// Password is B.Simon's password; "" generates one.
	Password string
	// Dir holds the generated config, keys and documents; "" makes a
	// temporary folder that is removed at exit.
	Dir string
	// Logger receives every component's log lines. When nil, Run logs to
	// LogTo with NewLogger(LogTo, Verbose), or nowhere if LogTo is nil.
	Logger  *slog.Logger
	LogTo   io.Writer
	Verbose bool
	// Ready, if set, is called with the running demo's URLs.
	Ready func(URLs)
	// Build assembles the gateway from the generated configuration;
	// required.
	Build BuildGateway
}

// Gateway is what the demo needs of an assembled gateway.
type Gateway interface {
	Provider() *samlsp.Provider
	ServeListeners(ctx context.Context, public, admin net.Listener) error
}

// BuildGateway assembles a gateway from cfg, logging to log. The demo does
// not import the gateway's assembly, which only cmd/sso-gateway does (an
// import rule that ARCHITECTURE.md names): the command passes it in.
type BuildGateway func(ctx context.Context, cfg *config.Config, log *slog.Logger) (Gateway, error)

// FlagSet returns the flags of "sso-gateway demo", bound to o.
func FlagSet(o *Options) *flag.FlagSet {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&o.Listen, "listen", DefaultListen, "gateway address")
	fs.StringVar(&o.AdminListen, "admin-listen", DefaultAdminListen, "metrics and health address")
	fs.StringVar(&o.IDPListen, "idp-listen", DefaultIDPListen, "demo IdP address")
	fs.StringVar(&o.UpstreamListen, "upstream-listen", DefaultUpstreamListen, "demo document service address")
	fs.StringVar(&o.Password, "password", "", "B.Simon's password (default: random, printed)")
	fs.StringVar(&o.Dir, "dir", "", "folder for the generated config, keys and documents (default: a temporary one, removed at exit)")
	fs.BoolVar(&o.Verbose, "v", false, "log every line, not only logins, warnings and errors")
	return fs
}

// NewLogger returns the demo's logger: readable text on w. Unless verbose,
// it shows only what a newcomer wants to see: the audit line of each login
// ("login": who, which tenant, success or why not), warnings and errors.
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	h := logging.NewHandler(w, slog.LevelInfo, "text")
	if verbose {
		return slog.New(h)
	}
	return slog.New(quietHandler{h})
}

// quietHandler passes on only login audit lines, warnings and errors.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && r.Message != "login" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}

// URLs are where the running demo can be reached.
type URLs struct {
	Gateway, IDP, Upstream, Admin string
	Password                      string
	ConfigFile                    string
}

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, o Options, stdout io.Writer) error {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.AdminListen == "" {
		o.AdminListen = DefaultAdminListen
	}
	if o.IDPListen == "" {
		o.IDPListen = DefaultIDPListen
	}
	if o.UpstreamListen == "" {
		o.UpstreamListen = DefaultUpstreamListen
	}
	switch {
	case o.Logger != nil:
	case o.LogTo != nil:
		o.Logger = NewLogger(o.LogTo, o.Verbose)
	default:
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Build == nil {
		return errors.New("demo: Options.Build is required")
	}
	if o.Password == "" {
		o.Password = randomPassword()
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "sso-gateway-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
		o.Dir = dir
	}

	// Listen first, so ports given as 0 are known before anything is
	// configured with them.
	var lc net.ListenConfig
	listeners := map[string]net.Listener{}
	defer func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}()
	for _, l := range []struct{ name, addr, flag string }{
		{"gateway", o.Listen, "-listen"},
		{"admin", o.AdminListen, "-admin-listen"},
		{"idp", o.IDPListen, "-idp-listen"},
		{"upstream", o.UpstreamListen, "-upstream-listen"},
	} {
		ln, err := lc.Listen(ctx, "tcp", l.addr)
		if err != nil {
			return fmt.Errorf("demo: %w", &config.ListenError{Addr: l.addr, Change: "the " + l.flag + " flag", Err: err})
		}
		listeners[l.name] = ln
	}
	urls := URLs{
		Gateway:  "http://" + listeners["gateway"].Addr().String(),
		IDP:      "http://" + listeners["idp"].Addr().String(),
		Upstream: "http://" + listeners["upstream"].Addr().String(),
		Admin:    "http://" + listeners["admin"].Addr().String(),
		Password: o.Password,
	}

	docDir := filepath.Join(o.Dir, "documents")
	if err := os.MkdirAll(docDir, 0o755); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	docService, err := docs.New(docs.Options{Dir: docDir, Logger: o.Logger.With("component", "docs")})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	idpURL, _ := url.Parse(urls.IDP)
	identity, err := NewIDP(idpURL, o.Password, o.Logger.With("component", "idp"))
	if err != nil {
		return err
	}
	cfgFile, err := WriteConfig(o.Dir, ConfigOptions{
		PublicURL:   urls.Gateway,
		Listen:      listeners["gateway"].Addr().String(),
		AdminListen: listeners["admin"].Addr().String(),
		Upstream:    urls.Upstream,
	}, identity)
	if err != nil {
		return err
	}
	urls.ConfigFile = cfgFile
	cfg, err := config.Load(cfgFile, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("demo: generated config: %w", err)
	}
	gw, err := o.Build(ctx, cfg, o.Logger.With("component", "gateway"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := RegisterApps(identity, gw); err != nil {
		return err
	}

	eg, egCtx := errgroup.WithContext(ctx)
	for name, h := range map[string]http.Handler{"idp": identity, "upstream": docService} {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		ln := listeners[name]
		eg.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("demo: %s: %w", name, err)
			}
			return nil
		})
		eg.Go(func() error {
			<-egCtx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(shutdownCtx)
		})
	}
	eg.Go(func() error { return gw.ServeListeners(egCtx, listeners["gateway"], listeners["admin"]) })

	printWelcome(stdout, urls)
	if o.Ready != nil {
		o.Ready(urls)
	}
	return eg.Wait()
}

// NewIDP returns the demo IdP, reached at u, with the user B.Simon and
// any extra users.
func NewIDP(u *url.URL, password string, log *slog.Logger, extra ...idp.User) (*idp.IDP, error) {
	identity, err := idp.New(idp.Options{
		URL:         u,
		DirectoryID: DirectoryID,
		Users: append([]idp.User{{
			Username:    Username,
			Password:    password,
			Email:       UserEmail,
			DisplayName: "B. Simon",
			GivenName:   "B.",
			Surname:     "Simon",
			Groups:      []string{GroupDocUsers},
		}}, extra...),
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return identity, nil
}

// ConfigOptions are the addresses a generated gateway config names.
type ConfigOptions struct {
	PublicURL   string // what browsers use, e.g. http://127.0.0.1:8080
	Listen      string
	AdminListen string
	Upstream    string
	// TenantHosts gives demo tenants, by ID, hosts of their own (the
	// tenant's hosts key); nil gives none.
	TenantHosts map[string][]string
}

// WriteConfig writes an SP key pair, the IdP's federation metadata and a
// gateway config with the demo's tenants into dir, as an operator would,
// and returns the config file's name.
func WriteConfig(dir string, o ConfigOptions, identity *idp.IDP) (string, error) {
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway demo SP"})
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	md, err := identity.MetadataXML()
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	files := map[string][]byte{
		"sp.crt":                          sp.CertPEM(),
		"sp.key":                          sp.KeyPEM(),
		"demo-idp-federationmetadata.xml": md,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return "", fmt.Errorf("demo: %w", err)
		}
	}
	cfg := fmt.Sprintf(`# Generated by "sso-gateway demo". The same format as a production config.
public_url: %s
listen: %s
admin_listen: %s
upstream: %s
shutdown_delay: 0s     # nothing balances load in front of the demo
sp:
  cert_file: sp.crt
  key_file: sp.key
session:
  lifetime: 8h
  keys:
    - hash_key: %s
      block_key: %s
tenants:
`, o.PublicURL, o.Listen, o.AdminListen, o.Upstream, randomKey(32), randomKey(32))
	for _, t := range Tenants() {
		cfg += fmt.Sprintf(`  - id: %s
    idp_metadata_file: demo-idp-federationmetadata.xml
    entra_tenant_id: %s
    email_domains: [%s]
    allow_idp_initiated: true
    default_relay_state: /
`, t.ID, DirectoryID, t.EmailDomain)
		if hosts := o.TenantHosts[t.ID]; len(hosts) > 0 {
			cfg += fmt.Sprintf("    hosts: [%s]\n", strings.Join(hosts, ", "))
		}
	}
	name := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(name, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return name, nil
}

// RegisterApps gives the IdP every tenant's SP metadata, as an admin
// creating the enterprise applications would, with a My Apps tile each.
func RegisterApps(identity *idp.IDP, gw Gateway) error {
	for _, t := range Tenants() {
		tenant, ok := gw.Provider().CurrentTenants().Get(t.ID)
		if !ok {
			return fmt.Errorf("demo: tenant %q is not configured", t.ID)
		}
		md, err := xml.Marshal(tenant.Metadata())
		if err != nil {
			return fmt.Errorf("demo: SP metadata: %w", err)
		}
		if err := identity.AddApp(idp.App{ID: t.ID, Name: t.Name, Metadata: md}); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	return nil
}

func printWelcome(w io.Writer, u URLs) {
	fmt.Fprintf(w, `
sso-gateway demo is running. Press Ctrl-C to stop; logins are logged below.

  Open this URL:   %s/
  Sign in as:      %s  (on the demo IdP: that email or username %s, password %s)

  Demo IdP:        %s/  (My Apps: tiles start IdP-initiated logins)
  Upstream:        %s/  (the document service; in production only the gateway may reach it)
  Metrics, health: %s/metrics  %s/healthz  %s/readyz
  Config used:     %s

Tenants (Customer_IDs), as an admin would set them up in Entra ID:
`, u.Gateway, UserEmail, Username, u.Password, u.IDP, u.Upstream, u.Admin, u.Admin, u.Admin, u.ConfigFile)
	for _, t := range Tenants() {
		fmt.Fprintf(w, "  %-9s Identifier and Reply URL: %s/auth/api/v1/saml/login/%s   (users @%s)\n", t.ID, u.Gateway, t.ID, t.EmailDomain)
	}
	fmt.Fprintln(w)
}

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randomPassword() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
