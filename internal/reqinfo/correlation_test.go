package reqinfo

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	var seen string
	h := Correlate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = CorrelationID(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(CorrelationHeader, "chosen-by-the-client")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	got := rec.Header().Get(CorrelationHeader)
	if len(got) != 16 || got != seen {
		t.Fatalf("got response ID %q and context ID %q, want the same fresh 16-digit ID", got, seen)
	}
	rec2 := httptest.NewRecorder()
	h.ServeHTTP(rec2, req)
	if rec2.Header().Get(CorrelationHeader) == got {
		t.Error("two requests got the same ID")
	}
}
