package gateway

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/httpx"
)

// MetadataPath is where the gateway serves its protected-resource
// metadata (RFC 9728 §3); a resource with a path has it after this
// prefix (/.well-known/oauth-protected-resource/mcp for …/mcp).
const MetadataPath = "/.well-known/oauth-protected-resource"

// Resource is what the gateway says about itself as an OAuth protected
// resource (RFC 9728, SPEC §10.4). Build it with NewResource; it is
// immutable and safe for concurrent use. A nil *Resource serves nothing
// and checks nothing.
type Resource struct {
	id          string // as advertised
	keyed       string // gatehouse.ResourceKey(id)
	metadataURL string
	doc         map[string]any
}

// NewResource returns the resource id (an absolute http or https URI
// without query or fragment, gatehouse.ResourceKey) protected by the
// authorization server issuer, whose routes file names scopes (nil: an
// empty list). ok is false for an id ResourceKey refuses.
func NewResource(id, issuer string, scopes gatehouse.Scopes) (r *Resource, ok bool) {
	key, ok := gatehouse.ResourceKey(id)
	if !ok {
		return nil, false
	}
	u, _ := url.Parse(key)
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	names := make([]string, 0, len(scopes))
	for _, s := range scopes {
		names = append(names, string(s))
	}
	return &Resource{id: id, keyed: key, metadataURL: u.Scheme + "://" + u.Host + MetadataPath + path, doc: map[string]any{
		"resource":                 id,
		"authorization_servers":    []string{issuer},
		"scopes_supported":         names,
		"bearer_methods_supported": []string{"header"},
	}}, true
}

func (r *Resource) key() string {
	if r == nil {
		return admission.AnyResource
	}
	return r.keyed
}

// ID returns the resource identifier as advertised.
func (r *Resource) ID() string { return r.id }

// MetadataURL returns the URL of the resource's metadata document.
func (r *Resource) MetadataURL() string { return r.metadataURL }

// challenge sets, for an unauthorized or invalid_token refusal, the
// WWW-Authenticate value of RFC 6750 with the resource_metadata of RFC
// 9728 §5.1, which httpx.Error then keeps.
func (r *Resource) challenge(w http.ResponseWriter, err error) {
	if r == nil {
		return
	}
	switch gatehouse.ErrorCode(err) {
	case gatehouse.EUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse", resource_metadata="`+r.metadataURL+`"`)
	case gatehouse.EInvalidToken:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", resource_metadata="`+r.metadataURL+`"`)
	}
}

// Metadata serves the protected-resource metadata document (RFC 9728
// §3.2) at MetadataPath and under it.
func (r *Resource) Metadata(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	httpx.WriteJSON(w, http.StatusOK, r.doc)
}
