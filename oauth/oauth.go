// Package oauth serves the OAuth 2.0 token endpoint and the password-grant
// endpoint of SPEC §3.4. Each grant type is a Grant behind one small
// interface; the endpoint parses the request, enforces RFC 6749's rules on
// it, and writes the answer with Cache-Control: no-store.
package oauth

import (
	"context"
	"maps"
	"net/http"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// Grant handles one grant_type on the token endpoint. It returns gatehouse
// errors with OAuth codes (invalid_grant, invalid_client, …) for requests
// it refuses.
type Grant interface {
	Token(ctx context.Context, req *Request) (*service.Issued, error)
}

// Handler serves the token endpoint. Construct it with NewHandler and add
// grants with Register; it is safe for concurrent use once serving.
type Handler struct {
	grants map[string]Grant
	// OnIssued, when set, is called with the grant type after each token
	// answer (for metrics).
	OnIssued func(grant string)
	// UserEmailHeader is the act-as-user header's name: honoured only
	// with an API token (SPEC §3.2), which no grant takes, so a token
	// request that sends it is invalid_request rather than answered with
	// a token for someone else than asked.
	UserEmailHeader string
}

// NewHandler returns a token endpoint with no grants.
func NewHandler() *Handler { return &Handler{grants: map[string]Grant{}} }

// Register makes g handle grant_type name.
func (h *Handler) Register(name string, g Grant) { h.grants[name] = g }

// Grants returns the registered grant types, sorted: the one list the
// metadata advertises.
func (h *Handler) Grants() []string { return slices.Sorted(maps.Keys(h.grants)) }

// noStore sets the caching headers RFC 6749 §5.1 requires on every answer.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// writeError writes an OAuth error answer; invalid_client after HTTP Basic
// carries WWW-Authenticate: Basic (RFC 6749 §5.2).
func writeError(w http.ResponseWriter, r *http.Request, req *Request, err error) {
	if gatehouse.ErrorCode(err) == gatehouse.EInvalidClient && req != nil && req.Basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	httpx.Error(w, r, err)
}

// ServeHTTP answers POST /oauth/token.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, false, "")
}

// Authorization serves POST /authorization: the password grant with the
// parameters in a form body, a JSON body or the query string, answered
// without a refresh token (SPEC §3.4).
func (h *Handler) Authorization(w http.ResponseWriter, r *http.Request) {
	h.serve(w, r, true, "password")
}

// serve parses a token request and hands it to its grant; grant, when not
// empty, is the only grant type the endpoint serves.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, allowQuery bool, grant string) {
	noStore(w)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EMethodNotAllowed, "This endpoint accepts only POST"))
		return
	}
	req, err := ParseRequest(w, r, allowQuery)
	if err != nil {
		writeError(w, r, nil, err)
		return
	}
	if req.Bearer {
		writeError(w, r, req, gatehouse.Invalid("The token endpoint accepts only HTTP Basic client authentication"))
		return
	}
	if h.UserEmailHeader != "" && len(r.Header[h.UserEmailHeader]) > 0 {
		writeError(w, r, req, gatehouse.Invalid("The %s header is honoured only with an API token", h.UserEmailHeader))
		return
	}
	gt := grant
	if gt == "" {
		if gt = req.Get("grant_type"); gt == "" {
			writeError(w, r, req, gatehouse.Invalid("grant_type is required"))
			return
		}
	}
	g, ok := h.grants[gt]
	if !ok {
		writeError(w, r, req, gatehouse.Errorf(gatehouse.EUnsupportedGrantType, "The grant type is not supported; see grant_types_supported in the metadata"))
		return
	}
	out, err := g.Token(r.Context(), req)
	if err != nil {
		writeError(w, r, req, err)
		return
	}
	if h.OnIssued != nil {
		h.OnIssued(gt)
	}
	if grant != "" {
		out.RefreshToken = ""
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// authenticateClient verifies the client credentials a token request
// presents (RFC 6749 §3.2.1: a client that includes authentication must be
// authenticated). An id with a secret must be a developer's client
// credential; an id alone is a public client, taken only when public is
// set (the refresh grant, whose token names the client it was issued to).
// A request with neither passes: the grant needs no client. Wrong or
// unknown clients are invalid_client.
func authenticateClient(ctx context.Context, svc *service.Service, req *Request, public bool) error {
	switch {
	case req.ClientSecret != "":
		p, err := svc.ClientPrincipal(ctx, req.ClientID, req.ClientSecret)
		if err != nil {
			return err
		}
		return p.CheckAddr(req.ClientAddr)
	case req.ClientID != "" && !public:
		return gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication failed")
	}
	return nil
}
