package oauth

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Endpoints serves RFC 7009 revocation, RFC 7662 introspection and RFC 8414
// metadata.
type Endpoints struct {
	Service *service.Service
	Auth    *auth.Authenticator
}

// caller authenticates the caller of revocation or introspection: a client
// credential (HTTP Basic or body) or a bearer token. It returns nil when
// the request carries neither.
func (e *Endpoints) caller(r *http.Request, req *Request) (*gatehouse.Principal, error) {
	if req.ClientID != "" || req.ClientSecret != "" {
		return e.Service.ClientPrincipal(r.Context(), req.ClientID, req.ClientSecret)
	}
	if !req.Bearer {
		return nil, nil
	}
	return e.Auth.Authenticate(r)
}

// parse reads a POST form or JSON request with a token parameter.
func (e *Endpoints) parse(w http.ResponseWriter, r *http.Request) (*Request, string, bool) {
	noStore(w)
	req, err := ParseRequest(w, r, false)
	if err != nil {
		writeError(w, r, nil, err)
		return nil, "", false
	}
	tok := req.Get("token")
	if tok == "" {
		writeError(w, r, req, gatehouse.Invalid("token is required"))
		return nil, "", false
	}
	return req, tok, true
}

// Revoke serves POST /oauth/revoke (RFC 7009). Holding the token is enough
// to revoke it; a caller that also authenticates must do so validly. The
// answer is 200 whether or not the token was known.
func (e *Endpoints) Revoke(w http.ResponseWriter, r *http.Request) {
	req, tok, ok := e.parse(w, r)
	if !ok {
		return
	}
	caller, err := e.caller(r, req)
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	t, _, err := e.Service.IssuedToken(r.Context(), tok)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENotFound:
	case err != nil:
		writeError(w, r, req, err)
		return
	case caller != nil && caller.AccountID != t.AccountID:
		// Another account's token: nothing crosses accounts.
	default:
		if err := e.Service.RevokeIssuedToken(r.Context(), t); err != nil {
			writeError(w, r, req, err)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Introspection is the RFC 7662 answer.
type Introspection struct {
	Active    bool   `json:"active"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	Method    string `json:"auth_method,omitempty"`
}

// Introspect serves POST /oauth/introspect (RFC 7662). The caller
// authenticates with a developer's client credential or as an admin; a
// token of another account is {"active":false}.
func (e *Endpoints) Introspect(w http.ResponseWriter, r *http.Request) {
	req, tok, ok := e.parse(w, r)
	if !ok {
		return
	}
	caller, err := e.caller(r, req)
	if err == nil && caller == nil {
		err = gatehouse.Errorf(gatehouse.EInvalidClient, "Authenticate with a client credential or an admin token")
	}
	if err == nil && caller.Method != gatehouse.MethodClientCredentials && !caller.IsAdmin() {
		err = gatehouse.Forbidden("Introspection needs a client credential or the admin role")
	}
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	out := Introspection{}
	t, u, err := e.Service.IssuedToken(r.Context(), tok)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENotFound:
	case err != nil:
		writeError(w, r, req, err)
		return
	case t.AccountID == caller.AccountID && e.Service.TokenActive(t, u):
		kind := "access_token"
		if t.Kind == gatehouse.KindRefresh {
			kind = "refresh_token"
		}
		out = Introspection{Active: true, ClientID: t.ClientID, Username: u.Email, TokenType: kind,
			Exp: t.ExpiresAt.Unix(), Iat: t.CreatedAt.Unix(), Sub: u.ID, AccountID: t.AccountID, Method: string(t.Method)}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// Metadata serves GET /.well-known/oauth-authorization-server (RFC 8414).
func (e *Endpoints) Metadata(w http.ResponseWriter, r *http.Request) {
	issuer := "http://" + r.Host
	if r.TLS != nil {
		issuer = "https://" + r.Host
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	httpx.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                        issuer,
		"token_endpoint":                                issuer + "/oauth/token",
		"revocation_endpoint":                           issuer + "/oauth/revoke",
		"introspection_endpoint":                        issuer + "/oauth/introspect",
		"grant_types_supported":                         []string{"password", "refresh_token", "client_credentials"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "bearer"},
		"response_types_supported":                      []string{},
	})
}
