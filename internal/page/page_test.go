package page

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/reqinfo"
)

func request(accept string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	return r.WithContext(reqinfo.WithCorrelationID(r.Context(), "c0ffee"))
}

// TestCSPAllowsTheInlineStyle: the policy's style hash is the hash of the
// <style> a browser actually receives, so pages render styled and nothing
// else can be injected.
func TestCSPAllowsTheInlineStyle(t *testing.T) {
	t.Parallel()
	for name, data := range map[string]any{
		"error":     ErrorData{Title: "t"},
		"discover":  DiscoverData{Title: "t"},
		"signedout": SignedOutData{Title: "t", SignIn: "/"},
	} {
		rec := httptest.NewRecorder()
		Render(rec, http.StatusOK, name, data)
		m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatalf("%s: no <style>", name)
		}
		sum := sha256.Sum256([]byte(m[1]))
		want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, want) {
			t.Errorf("%s: got CSP %q, want it to contain %q", name, csp, want)
		}
		for h, v := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if got := rec.Header().Get(h); got != v {
				t.Errorf("%s: got %s %q, want %q", name, h, got, v)
			}
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		accept     string
		err        error
		wantStatus int
		wantType   string
		wantText   string
		hidden     string
	}{
		{"HTML page", "text/html", Errorf(http.StatusBadGateway, "The document service is not available.", errors.New("dial tcp 10.0.0.1:8080: connection refused")), 502, "text/html; charset=utf-8", "The document service is not available.", "10.0.0.1"},
		{"JSON for scripts", "application/json", Errorf(http.StatusUnauthorized, "sign in", nil), 401, "application/json", `"correlation_id":"c0ffee"`, ""},
		{"no Accept is JSON", "", Errorf(http.StatusNotFound, "", nil), 404, "application/json", `"error":"Not Found"`, ""},
		{"a plain error is a generic 500", "text/html", errors.New("secret internals"), 500, "text/html; charset=utf-8", "Something went wrong", "secret internals"},
		{"messages are escaped", "text/html", Errorf(http.StatusBadRequest, "<script>alert(1)</script>", nil), 400, "text/html; charset=utf-8", "&lt;script&gt;", "<script>alert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			Write(rec, request(tt.accept), tt.err)
			body := rec.Body.String()
			if rec.Code != tt.wantStatus || rec.Header().Get("Content-Type") != tt.wantType {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tt.wantStatus, tt.wantType)
			}
			if !strings.Contains(body, tt.wantText) {
				t.Errorf("body lacks %q: %s", tt.wantText, body)
			}
			if tt.hidden != "" && strings.Contains(body, tt.hidden) {
				t.Errorf("body shows %q: %s", tt.hidden, body)
			}
			if strings.HasPrefix(tt.wantType, "text/html") && !strings.Contains(body, "c0ffee") {
				t.Error("page lacks the correlation ID")
			}
			if tt.wantType == "application/json" {
				var v map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
					t.Errorf("body is not JSON: %v", err)
				}
			}
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	t.Parallel()
	cause := errors.New("cause")
	err := Errorf(http.StatusForbidden, "no", cause)
	if !errors.Is(err, cause) || err.Error() != "no: cause" {
		t.Errorf("got %q, want it to wrap the cause", err)
	}
}

// TestSupportReference: error and signed-out pages show the request's
// correlation ID for users to quote; the sign-in page does not.
func TestSupportReference(t *testing.T) {
	t.Parallel()
	const ref = `<code id="correlation-id">c0ffee</code>`
	tests := []struct {
		name   string
		render func(w http.ResponseWriter)
		want   bool
	}{
		{"error", func(w http.ResponseWriter) { Write(w, request("text/html"), Errorf(http.StatusNotFound, "", nil)) }, true},
		{"signed out", func(w http.ResponseWriter) {
			Render(w, http.StatusOK, "signedout", SignedOutData{Title: "t", SignIn: "/", CorrelationID: "c0ffee"})
		}, true},
		{"sign-in page", func(w http.ResponseWriter) { RenderDiscover(w, DiscoverData{Title: "t", Action: "/select"}, nil) }, false},
		{"sign-in page with a problem", func(w http.ResponseWriter) {
			RenderDiscover(w, DiscoverData{Title: "t", Action: "/select", Problem: "unknown"}, nil)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			tt.render(rec)
			body := rec.Body.String()
			if got := strings.Contains(body, ref); got != tt.want {
				t.Errorf("shows %s: got %t, want %t\n%s", ref, got, tt.want, body)
			}
			if !tt.want && strings.Contains(body, "Reference") {
				t.Errorf("shows a reference: %s", body)
			}
		})
	}
}

// TestErrorSelectLink: an error may offer the organisation page, on HTML
// pages only.
func TestErrorSelectLink(t *testing.T) {
	t.Parallel()
	e := Errorf(http.StatusNotFound, "There is no organisation with this Customer ID.", nil)
	e.Select = "/auth/api/v1/saml/select"
	rec := httptest.NewRecorder()
	Write(rec, request("text/html"), e)
	if want := `<a class="button" id="select" href="/auth/api/v1/saml/select">`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("got %s, want a link %q", rec.Body, want)
	}
	rec = httptest.NewRecorder()
	Write(rec, request(""), Errorf(http.StatusNotFound, "", nil))
	if strings.Contains(rec.Body.String(), "select") {
		t.Errorf("JSON body: got %s, want no link", rec.Body)
	}
}
