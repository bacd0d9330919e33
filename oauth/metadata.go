package oauth

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// Metadata serves GET /.well-known/oauth-authorization-server (RFC 8414):
// the issuer and every endpoint come from e.Issuer, whatever Host the
// request names.
func (e *Endpoints) Metadata(w http.ResponseWriter, r *http.Request) {
	issuer := e.Issuer
	if e.IssuerConfigured {
		w.Header().Set("Cache-Control", "public, max-age=3600")
	} else {
		// Built from the listen address, which clients elsewhere may not
		// reach: never let a shared cache keep it.
		w.Header().Set("Cache-Control", "no-cache")
	}
	m := map[string]any{
		"issuer":                                        issuer,
		"token_endpoint":                                issuer + "/oauth/token",
		"revocation_endpoint":                           issuer + "/oauth/revoke",
		"introspection_endpoint":                        issuer + "/oauth/introspect",
		"grant_types_supported":                         e.Grants,
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                              gatehouse.BuiltinScopes,
		"response_types_supported":                      e.responseTypes(),
	}
	if e.AuthorizationCode {
		m["authorization_endpoint"] = issuer + AuthorizePath
		m["code_challenge_methods_supported"] = []string{"S256"}
		m["authorization_response_iss_parameter_supported"] = true
	}
	if e.Registration {
		m["registration_endpoint"] = issuer + "/oauth/register"
	}
	if e.DeviceAuthorization {
		m["device_authorization_endpoint"] = issuer + DeviceAuthorizationPath
	}
	httpx.WriteJSON(w, http.StatusOK, m)
}

// responseTypes are the response types of the authorization endpoint.
func (e *Endpoints) responseTypes() []string {
	if e.AuthorizationCode {
		return []string{"code"}
	}
	return []string{}
}
