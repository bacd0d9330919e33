package oauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAuthorizeRefusesBadQueries: a query that does not parse, or holds
// NUL or invalid UTF-8, is the client's error page (400, plain text), not
// a server error, and is refused before any client is looked up (the
// service here is nil).
func TestAuthorizeRefusesBadQueries(t *testing.T) {
	h := Authorize(nil, "/admin/authorize")
	for _, q := range []string{";", "%zz", "client_id=a;b", "response_type=code&state=%zz", "client_id=%00", "client_id=%ff"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", AuthorizePath+"?"+q, nil))
		if w.Code != http.StatusBadRequest || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") ||
			!strings.HasPrefix(w.Body.String(), "Authorization refused:") {
			t.Errorf("?%s: %d %q %q", q, w.Code, w.Header().Get("Content-Type"), w.Body.String())
		}
		if w.Header().Get("Location") != "" {
			t.Errorf("?%s: redirected to %q", q, w.Header().Get("Location"))
		}
	}
}
