package gateway

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
)

// TestResource: the metadata URL is the resource's origin, the well-known
// path, then the resource's path (RFC 9728 §3.1); 401s name it; a
// resource ResourceKey refuses is refused.
func TestResource(t *testing.T) {
	for _, tc := range []struct{ id, meta string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource"},
		{"https://API.example.com:8443/mcp", "https://api.example.com:8443/.well-known/oauth-protected-resource/mcp"},
	} {
		r, ok := NewResource(tc.id, "https://auth.example.com", nil)
		if !ok || r.MetadataURL() != tc.meta || r.ID() != tc.id {
			t.Errorf("%s: %v %q", tc.id, ok, r.MetadataURL())
			continue
		}
		w := httptest.NewRecorder()
		r.challenge(w, gatehouse.Errorf(gatehouse.EInvalidToken, "x"))
		if got := w.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token", resource_metadata="`+tc.meta+`"` {
			t.Errorf("%s: challenge %q", tc.id, got)
		}
		w = httptest.NewRecorder()
		r.challenge(w, errors.New("technical"))
		if got := w.Header().Get("WWW-Authenticate"); got != "" {
			t.Errorf("%s: challenge on a technical error %q", tc.id, got)
		}
	}
	for _, bad := range []string{"", "api.example.com", "https://api.example.com/#x", "https://api.example.com/?a=b"} {
		if _, ok := NewResource(bad, "https://auth.example.com", nil); ok {
			t.Errorf("%q taken", bad)
		}
	}
	// A gateway without a resource takes tokens bound to any.
	var none *Resource
	if none.key() != admission.AnyResource {
		t.Errorf("a nil resource's key is %q, want any", none.key())
	}
}
