// Package idp is the demo identity provider: crewjam's samlidp dressed up
// to behave like a Microsoft Entra ID enterprise application. It issues
// emailAddress NameIDs and Entra's claim URIs (emailaddress, displayname,
// groups, tenantid, ...), and has a "My Apps" page whose tiles start
// IdP-initiated logins, so the gateway can be tried end to end without an
// Entra tenant.
//
// It is for demonstrations and tests only: users live in memory and its
// administrative API is not exposed.
package idp

import (
	"bytes"
	"crypto/sha1"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/crypto/bcrypt"

	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
)

// Entra claim URIs the demo IdP issues.
const (
	claimTenantID    = "http://schemas.microsoft.com/identity/claims/tenantid"
	claimObjectID    = "http://schemas.microsoft.com/identity/claims/objectidentifier"
	claimDisplayName = "http://schemas.microsoft.com/identity/claims/displayname"
	claimIDP         = "http://schemas.microsoft.com/identity/claims/identityprovider"
	claimAuthMethods = "http://schemas.microsoft.com/claims/authnmethodsreferences"
	claimGivenName   = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
	claimSurname     = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname"
	claimEmail       = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
	claimName        = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
	claimGroups      = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
)

// User is a demo account.
type User struct {
	Username    string // what the user types, e.g. "B.Simon"
	Password    string
	Email       string // also the NameID (UPN)
	DisplayName string
	GivenName   string
	Surname     string
	Groups      []string // group object IDs, as Entra sends them
}

// App is an enterprise application: a tile on My Apps that starts an
// IdP-initiated login at a service provider.
type App struct {
	ID       string // the tile's path: /login/{ID}
	Name     string // shown on the tile
	Metadata []byte // the service provider's SAML metadata
}

// Options configure the IdP.
type Options struct {
	// URL is where the IdP is reached, e.g. http://127.0.0.1:8081.
	URL *url.URL
	// DirectoryID is the Entra tenant GUID sent in the tenantid claim.
	DirectoryID string
	Users       []User
	// KeyPair signs responses; nil generates one.
	KeyPair *selfsigned.KeyPair
	// Clock is the IdP's time source; nil is the real clock.
	Clock  *dsig.Clock
	Logger *slog.Logger
}

// IdP is a running demo identity provider.
type IDP struct {
	srv  *samlidp.Server
	apps []App
	mux  *http.ServeMux
	log  *slog.Logger
	// usernames maps each user's lower-case email to the username samlidp
	// stores them under, so that either signs in.
	usernames map[string]string
}

// New creates the IdP.
func New(o Options) (*IDP, error) {
	kp := o.KeyPair
	if kp == nil {
		var err error
		kp, err = selfsigned.New(selfsigned.Options{CommonName: "Demo Entra ID Federated SSO Certificate"})
		if err != nil {
			return nil, fmt.Errorf("idp: %w", err)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store := &samlidp.MemoryStore{}
	usernames := map[string]string{}
	for _, u := range o.Users {
		if u.Email != "" {
			usernames[strings.ToLower(u.Email)] = u.Username
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
		if err != nil {
			return nil, fmt.Errorf("idp: hash password: %w", err)
		}
		err = store.Put("/users/"+u.Username, samlidp.User{
			Name:           u.Username,
			HashedPassword: hash,
			Email:          u.Email,
			CommonName:     u.DisplayName,
			GivenName:      u.GivenName,
			Surname:        u.Surname,
			Groups:         u.Groups,
		})
		if err != nil {
			return nil, fmt.Errorf("idp: store user: %w", err)
		}
	}
	srv, err := samlidp.New(samlidp.Options{
		URL:               *o.URL,
		Key:               kp.Key,
		Certificate:       kp.Cert,
		Store:             store,
		Logger:            logAdapter{log},
		Clock:             o.Clock,
		LoginFormTemplate: loginForm,
		// The REST API would let anyone add users; the demo has no use
		// for it.
		AdminMiddleware: func(http.Handler) http.Handler { return http.NotFoundHandler() },
	})
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	srv.IDP.AssertionMaker = entraAssertionMaker{directoryID: o.DirectoryID}
	i := &IDP{srv: srv, log: log, usernames: usernames}
	i.mux = http.NewServeMux()
	i.mux.HandleFunc("GET /{$}", i.serveMyApps)
	i.mux.HandleFunc("POST /login", i.serveLogin)
	i.mux.Handle("/", srv)
	return i, nil
}

// ServeHTTP serves the IdP.
func (i *IDP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		i.emailSignIn(r)
	}
	i.mux.ServeHTTP(w, r)
}

// emailSignIn lets a user sign in with their email address, in any case, as
// with Entra: samlidp knows users only by username. It parses the form
// once, here; samlidp's own ParseForm then finds it parsed.
func (i *IDP) emailSignIn(r *http.Request) {
	if err := r.ParseForm(); err != nil {
		return // samlidp answers the unreadable form
	}
	if name, ok := i.usernames[strings.ToLower(strings.TrimSpace(r.PostForm.Get("user")))]; ok {
		r.PostForm.Set("user", name)
		r.Form.Set("user", name)
	}
}

// MetadataXML returns the IdP's federation metadata, as an admin would
// download it.
func (i *IDP) MetadataXML() ([]byte, error) {
	buf, err := xml.MarshalIndent(i.srv.IDP.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("idp: marshal metadata: %w", err)
	}
	return append([]byte(xml.Header), buf...), nil
}

// AddApp registers a service provider and its My Apps tile.
func (i *IDP) AddApp(app App) error {
	// samlidp only learns service providers through its REST handler,
	// which parses and indexes the metadata; call it in-process.
	req := httptest.NewRequest(http.MethodPut, "/services/"+app.ID, bytes.NewReader(app.Metadata))
	req.SetPathValue("id", app.ID)
	rec := httptest.NewRecorder()
	i.srv.HandlePutService(rec, req)
	if rec.Code/100 != 2 {
		return fmt.Errorf("idp: register %s: HTTP %d: %s", app.ID, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	var md crewsaml.EntityDescriptor
	if err := xml.Unmarshal(app.Metadata, &md); err != nil {
		return fmt.Errorf("idp: app %s metadata: %w", app.ID, err)
	}
	err := i.srv.Store.Put("/shortcuts/"+app.ID, samlidp.Shortcut{Name: app.ID, ServiceProviderID: md.EntityID})
	if err != nil {
		return fmt.Errorf("idp: app %s shortcut: %w", app.ID, err)
	}
	i.apps = append(i.apps, app)
	return nil
}

// serveLogin handles the login form shown for IdP-initiated flows (My Apps
// tiles), which samlidp would answer with JSON: sign in, then go back to the
// tile that asked.
func (i *IDP) serveLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	if s := i.srv.GetSession(w, r, &crewsaml.IdpAuthnRequest{IDP: &i.srv.IDP}); s == nil {
		return // GetSession has answered: the form again, with a message
	}
	target := "/"
	if next := r.PostForm.Get("next"); strings.HasPrefix(next, "/login/") && !strings.ContainsAny(next, "\\") && !strings.HasPrefix(next, "//") {
		target = next
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (i *IDP) serveMyApps(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := myApps.Execute(w, i.apps); err != nil {
		i.log.Error("idp: render My Apps", slog.String("error", err.Error()))
	}
}

// entraAssertionMaker makes crewjam's default assertion and replaces its
// attributes with the claims an Entra enterprise application sends by
// default, plus groups.
type entraAssertionMaker struct {
	directoryID string
}

func (m entraAssertionMaker) MakeAssertion(req *crewsaml.IdpAuthnRequest, s *crewsaml.Session) error {
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, s); err != nil {
		return err
	}
	attr := func(name string, values ...string) crewsaml.Attribute {
		a := crewsaml.Attribute{Name: name}
		for _, v := range values {
			a.Values = append(a.Values, crewsaml.AttributeValue{Type: "xs:string", Value: v})
		}
		return a
	}
	attrs := []crewsaml.Attribute{
		attr(claimTenantID, m.directoryID),
		attr(claimObjectID, objectID(s.NameID)),
		attr(claimDisplayName, s.UserCommonName),
		attr(claimIDP, "https://sts.windows.net/"+m.directoryID+"/"),
		attr(claimAuthMethods, "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"),
		attr(claimGivenName, s.UserGivenName),
		attr(claimSurname, s.UserSurname),
		attr(claimEmail, s.UserEmail),
		attr(claimName, s.NameID),
	}
	if len(s.Groups) > 0 {
		attrs = append(attrs, attr(claimGroups, s.Groups...))
	}
	if req.Assertion == nil {
		return errors.New("idp: no assertion made")
	}
	req.Assertion.AttributeStatements = []crewsaml.AttributeStatement{{Attributes: attrs}}
	return nil
}

// objectID derives a stable GUID-shaped object ID for a user, as Entra
// sends in the objectidentifier claim.
func objectID(nameID string) string {
	sum := sha1.Sum([]byte(nameID))
	return fmt.Sprintf("%x-%x-%x-%x-%x", sum[0:4], sum[4:6], sum[6:8], sum[8:10], sum[10:16])
}

// logAdapter sends samlidp's log lines to slog.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Printf(format string, v ...any) { l.log.Info(fmt.Sprintf(format, v...)) }
func (l logAdapter) Print(v ...any)                 { l.log.Info(fmt.Sprint(v...)) }
func (l logAdapter) Println(v ...any)               { l.log.Info(fmt.Sprint(v...)) }
func (l logAdapter) Fatal(v ...any)                 { l.log.Error(fmt.Sprint(v...)) }
func (l logAdapter) Fatalf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logAdapter) Fatalln(v ...any)               { l.log.Error(fmt.Sprint(v...)) }
func (l logAdapter) Panic(v ...any)                 { l.log.Error(fmt.Sprint(v...)) }
func (l logAdapter) Panicf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logAdapter) Panicln(v ...any)               { l.log.Error(fmt.Sprint(v...)) }

const style = `<style>body{font-family:system-ui,"Segoe UI",sans-serif;background:#f2f2f2;margin:0}` +
	`main{max-width:26rem;margin:10vh auto;background:#fff;padding:2.5rem;box-shadow:0 2px 6px rgba(0,0,0,.2)}` +
	`h1{font-size:1.5rem;font-weight:600}input{display:block;width:100%;box-sizing:border-box;margin:.8rem 0;padding:.5rem;border:0;border-bottom:1px solid #666;font-size:1rem}` +
	`button,.tile{background:#0067b8;color:#fff;border:0;padding:.6rem 2rem;font-size:1rem;text-decoration:none;display:inline-block;margin:.3rem 0}` +
	`.toast{color:#e81123}.brand{color:#737373;font-size:.9rem}</style>`

var loginForm = template.Must(template.New("login").Parse(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>` + style + `</head><body><main>` +
	`<p class="brand">Demo Entra ID</p><h1>Sign in</h1>` +
	`{{with .Toast}}<p class="toast" id="toast">{{.}}</p>{{end}}` +
	`<form method="post" action="{{.URL}}" id="login">` +
	`<input type="text" name="user" id="user" placeholder="Email or username" autocomplete="username" autofocus />` +
	`<input type="password" name="password" id="password" placeholder="Password" autocomplete="current-password" />` +
	`<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}" />` +
	`<input type="hidden" name="RelayState" value="{{.RelayState}}" />` +
	`<input type="hidden" name="next" id="next" value="" />` +
	// Like Entra, pre-fill the account the service provider suggests
	// (login_hint, from the email typed on the gateway's organisation
	// page) and ask only for the password.
	`<script>document.getElementById('next').value = location.pathname;` +
	`var hint = new URLSearchParams(location.search).get('login_hint');` +
	`if (hint && !document.getElementById('user').value) { document.getElementById('user').value = hint; document.getElementById('password').focus(); }</script>` +
	`<button type="submit" id="signin">Sign in</button>` +
	`</form></main></body></html>`))

var myApps = template.Must(template.New("myapps").Parse(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>My Apps</title>` + style + `</head><body><main>` +
	`<p class="brand">Demo Entra ID</p><h1>My Apps</h1>` +
	`<p>Click a tile to sign in to the application from here (IdP-initiated login).</p>` +
	`{{range .}}<p><a class="tile" id="app-{{.ID}}" href="/login/{{.ID}}">{{.Name}}</a></p>{{else}}<p>No applications.</p>{{end}}` +
	`</main></body></html>`))
