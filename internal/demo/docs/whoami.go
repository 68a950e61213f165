package docs

import (
	"net/http"
	"strings"
)

// whoami answers with a JSON object of the identity headers received, keyed
// by their name as received (canonical, e.g. "X-Correlation-Id"), with
// repeated headers joined by ", ". It adds the request line as the upstream
// saw it so that tests can check what the gateway forwards:
//
//   - "cookie": the raw Cookie header, to check the gateway strips its own;
//   - "method", "host";
//   - "path": the escaped path, "raw_query", and "request_uri" exactly as
//     received, to check the gateway does not re-encode URLs.
//
// Header keys all start with "X", so they cannot collide with the lower-case
// request fields.
func (s *Service) whoami(w http.ResponseWriter, r *http.Request) {
	out := make(map[string]string)
	for name, values := range r.Header {
		if isIdentityHeader(name) {
			out[name] = strings.Join(values, ", ")
		}
	}
	// HTTP/2 may split cookies across several fields; "; " is how they
	// recombine (RFC 9113, section 8.2.3).
	out["cookie"] = strings.Join(r.Header.Values("Cookie"), "; ")
	out["method"] = r.Method
	out["path"] = r.URL.EscapedPath()
	out["raw_query"] = r.URL.RawQuery
	out["request_uri"] = r.RequestURI
	out["host"] = r.Host
	writeJSON(w, http.StatusOK, out)
}
