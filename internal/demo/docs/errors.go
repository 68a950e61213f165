package docs

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// httpError is a failure a handler reports. The code and msg go to the
// client; err, which may hold file paths and OS detail, goes only to the log.
type httpError struct {
	code int
	msg  string
	err  error // may be nil
}

func (e *httpError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *httpError) Unwrap() error { return e.err }

// handlerFunc is a handler that reports failure by returning an error
// instead of writing the response itself. It must not return an error after
// it has started writing the response.
type handlerFunc func(http.ResponseWriter, *http.Request) error

// handle turns h into an http.Handler, writing any error it returns as the
// response: an *httpError with its own status, anything else as a 500.
func (s *Service) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{code: http.StatusInternalServerError, msg: "internal error", err: err}
		}
		level := slog.LevelInfo
		if he.code >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		s.log.Log(r.Context(), level, "docs: request failed",
			"method", r.Method, "path", r.URL.Path, "status", he.code, "error", err)
		http.Error(w, he.msg, he.code)
	})
}

// writeJSON writes v as the whole response with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Responses describe the caller's identity or a document's current
	// state; a shared cache must not replay them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// The status is already sent, so an encoding or write error (a client
	// that went away) cannot be reported to anyone.
	_ = json.NewEncoder(w).Encode(v)
}
