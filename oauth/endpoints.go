package oauth

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Endpoints serves RFC 7009 revocation, RFC 7662 introspection and RFC 8414
// metadata. The rules are the service's; these handlers translate.
type Endpoints struct {
	Service *service.Service
	Admit   *admission.Admitter
	// Issuer is the base URL the metadata advertises (the configured public
	// URL, else one built from the listen address); never the request's
	// Host.
	Issuer string
	// IssuerConfigured reports that Issuer is the configured public URL;
	// only then may the metadata be cached publicly.
	IssuerConfigured bool
	// Grants are the grant types the token endpoint serves
	// (Handler.Grants).
	Grants []string
	// AuthorizationCode advertises the authorization endpoint and its
	// PKCE and iss support (RFC 8414, RFC 9207).
	AuthorizationCode bool
	// Registration advertises the registration endpoint (RFC 7591,
	// --dynamic-registration).
	Registration bool
	// DeviceAuthorization advertises the device authorization endpoint
	// (RFC 8628 §4).
	DeviceAuthorization bool
}

// caller authenticates the caller of revocation or introspection: a client
// credential (HTTP Basic or body), a bearer token or an API token (SPEC
// §3.2, §4), charged to the caller's rate limit like any authenticated
// request. It returns nil when the request carries none. A request uses
// one method (RFC 6749 §2.3): a bearer token with body credentials is
// refused by ParseRequest, an API token with client credentials here; a
// bearer or API token, when present, is always authenticated, through
// admission like any request with it. The act-as-user header is honoured
// only with an API token (SPEC §3.2): with anything else it is
// invalid_request. A client id without a secret is a public client (RFC
// 7009 §2.1): it is not authenticated, and appID returns it; a
// confidential third-party application authenticates with its secret, and
// appID returns its client id too.
func (e *Endpoints) caller(w http.ResponseWriter, r *http.Request, req *Request) (p *gatehouse.Principal, appID string, err error) {
	a := e.Admit.Auth()
	apiToken := len(r.Header[a.APITokenHeader()]) > 0
	client := req.ClientID != "" || req.ClientSecret != "" || req.Basic
	switch {
	case apiToken && (client || (!req.Bearer && len(r.Header["Authorization"]) > 0)):
		return nil, "", gatehouse.Invalid("Authenticate once: with an API token or with client credentials, not both")
	case len(r.Header[a.UserEmailHeader()]) > 0 && !apiToken:
		return nil, "", gatehouse.Invalid("The %s header is honoured only with an API token", a.UserEmailHeader())
	case req.Bearer || apiToken:
		p, err = e.Admit.Admit(w, r)
		return p, "", err
	case req.ClientID != "" && req.ClientSecret == "":
		return nil, req.ClientID, nil
	case req.ClientID != "" && e.Service.IsAppClient(r.Context(), req.ClientID):
		appID, err = e.Service.AuthenticateApp(r.Context(), req.ClientID, req.ClientSecret)
		return nil, appID, err
	case client:
		p, err = e.Service.ClientPrincipal(r.Context(), req.ClientID, req.ClientSecret)
		if err == nil {
			err = e.Admit.Charge(w, r, p)
		}
		return p, "", err
	}
	return nil, "", nil
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

// Revoke serves POST /oauth/revoke (RFC 7009): see service.RevokeToken for
// who may revoke what. The answer is 200 whether or not the token was
// known.
func (e *Endpoints) Revoke(w http.ResponseWriter, r *http.Request) {
	req, tok, ok := e.parse(w, r)
	if !ok {
		return
	}
	caller, appID, err := e.caller(w, r, req)
	if err == nil {
		err = e.Service.RevokeToken(r.Context(), caller, appID, tok)
	}
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Introspect serves POST /oauth/introspect (RFC 7662): see
// service.Introspect.
func (e *Endpoints) Introspect(w http.ResponseWriter, r *http.Request) {
	req, tok, ok := e.parse(w, r)
	if !ok {
		return
	}
	caller, _, err := e.caller(w, r, req)
	if err == nil && caller == nil {
		// Nobody, a public client, or a third-party application: none
		// may introspect.
		err = gatehouse.Errorf(gatehouse.EInvalidClient, "Authenticate with a developer's client credential or an admin token: applications do not introspect")
	}
	var out *service.Introspection
	if err == nil {
		out, err = e.Service.Introspect(r.Context(), caller, tok)
	}
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
