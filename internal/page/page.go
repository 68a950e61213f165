// Package page is the one place where the gateway writes responses of its
// own to users: error pages, the organisation sign-in page and the
// signed-out page, as HTML for browsers and as small JSON bodies for
// scripts.
//
// Handlers return an *Error; Write turns it into the response. The message a
// user sees is Error.Msg, written for them; the cause (Error.Err) is logged
// by the caller and never rendered, so no internals reach a browser. Every
// page carries the request's correlation ID and strict security headers.
package page

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

// Error is an error with an HTTP status and a message that is safe to show.
type Error struct {
	Code int    // HTTP status; 0 means 500
	Msg  string // for the user; "" means the status text
	Err  error  // for the log; never shown
	// Select, if set, is a link to the organisation page that the HTML
	// page offers; "" offers none.
	Select string
}

// Errorf returns an *Error. err may be nil.
func Errorf(code int, msg string, err error) *Error {
	return &Error{Code: code, Msg: msg, Err: err}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.message()
	}
	return e.message() + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) status() int {
	if e.Code == 0 {
		return http.StatusInternalServerError
	}
	return e.Code
}

func (e *Error) message() string {
	if e.Msg == "" {
		return http.StatusText(e.status())
	}
	return e.Msg
}

// css is inlined in every page; the Content-Security-Policy allows exactly
// this stylesheet by hash and nothing else, so an injected tag could neither
// run script nor load anything.
const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f5f8;color:#1b1f24;margin:0}` +
	`main{max-width:34rem;margin:8vh auto;background:#fff;border-radius:8px;padding:2rem 2.5rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}` +
	`h1{font-size:1.4rem;margin-top:0}p{line-height:1.5}` +
	`.ref{color:#57606a;font-size:.9rem;border-top:1px solid #e1e4e8;padding-top:1rem;margin-top:2rem}code{font-size:1rem}` +
	`label{display:block;font-weight:600;margin-bottom:.4rem}` +
	`input[type=text]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #8c959f;border-radius:4px}` +
	`button,a.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;background:#0f6cbd;color:#fff;border:0;border-radius:4px;text-decoration:none;cursor:pointer}` +
	`.problem{color:#a4262c}`

//go:embed templates/*.html
var templateFS embed.FS

// Templates and the policy are computed once at start-up and never change.
var (
	templates = map[string]*template.Template{
		"error":     mustParse("error.html"),
		"discover":  mustParse("discover.html"),
		"signedout": mustParse("signedout.html"),
	}
	contentSecurityPolicy = policy(nil)
)

// policy is the Content-Security-Policy of a page whose forms may lead to
// formTargets (origins like https://login.microsoftonline.com) besides the
// gateway itself: browsers apply form-action to every redirect that
// follows a form submission, so the organisation page must allow the IdPs
// its form ends at.
func policy(formTargets []string) string {
	formAction := "'self'"
	for _, o := range formTargets {
		formAction += " " + o
	}
	return "default-src 'none'; style-src '" + cssHash() + "'; form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'"
}

func mustParse(name string) *template.Template {
	funcs := template.FuncMap{"css": func() template.CSS { return template.CSS(css) }}
	return template.Must(template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name))
}

func cssHash() string {
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// SecurityHeaders sets the headers every gateway-rendered response carries:
// no framing (clickjacking), no referrer (RelayState and return paths stay
// private), no caching (pages hold per-user state), no sniffing.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

// ErrorData is what the error page shows.
type ErrorData struct {
	Title         string
	Message       string
	Retry         string // a link to start again, or ""
	Switch        string // a link to choose another organisation, or ""
	Select        string // a link to find the organisation, or ""
	CorrelationID string
}

// DiscoverData is what the organisation sign-in page shows. It has no
// correlation ID: a sign-in page is not an error, and a support reference
// on it would only puzzle users.
type DiscoverData struct {
	Title    string
	Action   string
	Query    string
	ReturnTo string
	Problem  string
}

// SignedOutData is what the signed-out page shows.
type SignedOutData struct {
	Title  string
	SignIn string
	Switch string // a link to choose another organisation, or ""
	// AtIDP means the IdP confirmed the single logout; false (signed out
	// of this site only) tells the user how to finish signing out.
	AtIDP         bool
	CorrelationID string
}

// Render writes the named page (one of "error", "discover", "signedout")
// with the given status. The page is rendered into a buffer first so that a
// template failure never leaves a half-written response.
func Render(w http.ResponseWriter, status int, name string, data any) {
	render(w, status, name, data, contentSecurityPolicy)
}

// RenderDiscover writes the organisation page, whose form leads through
// redirects to one of the IdPs at idpOrigins (scheme://host[:port] values
// from parsed URLs).
func RenderDiscover(w http.ResponseWriter, data DiscoverData, idpOrigins []string) {
	render(w, http.StatusOK, "discover", data, policy(idpOrigins))
}

func render(w http.ResponseWriter, status int, name string, data any, csp string) {
	var buf bytes.Buffer
	if err := templates[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		// The templates are fixed and tested; this cannot happen with the
		// data types above. Fail closed without details.
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Security-Policy", csp)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Write responds to r with err: an HTML page for browsers, or a JSON body
// {"error": ..., "correlation_id": ...} for everything else. A plain error
// (not an *Error) is a 500 with a generic message.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	var pe *Error
	if !errors.As(err, &pe) {
		pe = &Error{Code: http.StatusInternalServerError}
	}
	id := reqinfo.CorrelationID(r.Context())
	if !WantsHTML(r) {
		WriteJSON(w, pe.status(), map[string]string{"error": pe.message(), "correlation_id": id})
		return
	}
	Render(w, pe.status(), "error", ErrorData{
		Title:         titleFor(pe.status()),
		Message:       pe.message(),
		Select:        pe.Select,
		CorrelationID: id,
	})
}

// WriteLoginError renders a failed login: always HTML (the browser posted
// to the ACS), with links to start a new login and to choose another
// organisation.
func WriteLoginError(w http.ResponseWriter, r *http.Request, err *Error, retry, switchOrg string) {
	Render(w, err.status(), "error", ErrorData{
		Title:         "Sign-in failed",
		Message:       err.message(),
		Retry:         retry,
		Switch:        switchOrg,
		CorrelationID: reqinfo.CorrelationID(r.Context()),
	})
}

// WriteJSON writes v as a small JSON body with the security headers.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		body = []byte(`{"error":"Internal Server Error"}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	SecurityHeaders(h)
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func titleFor(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return "Service unavailable"
	case http.StatusGatewayTimeout:
		return "The service is taking too long"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "Access denied"
	case http.StatusTooManyRequests:
		return "Please wait a moment"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "Request not accepted"
}

// IsNavigation reports whether r is a browser loading a page, which may be
// redirected (to sign in, or to the canonical host). Sec-Fetch-Mode, when
// the browser sends it, tells a navigation from a fetch() that happens to
// accept HTML.
func IsNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	return WantsHTML(r)
}

// WantsHTML reports whether r comes from a browser that would display an
// HTML page: it accepts text/html.
func WantsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/html") {
			return true
		}
	}
	return false
}
