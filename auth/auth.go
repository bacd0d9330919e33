// Package auth turns a request's credentials into a gatehouse.Principal and
// guards the API with it: bearer access tokens, API tokens with the
// act-as-user header, and the throttle on password guessing.
package auth

import (
	"context"
	"net/http"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// Validator resolves credential strings to principals. Implementations
// return gatehouse errors (invalid_token, invalid_user, …) for credentials
// that do not work and other errors only for technical failures.
type Validator interface {
	AccessPrincipal(ctx context.Context, raw string) (*gatehouse.Principal, error)
}

// APITokenValidator resolves an API token, optionally acting as the user
// with the given e-mail (SPEC §3.2).
type APITokenValidator interface {
	APITokenPrincipal(ctx context.Context, raw, actAs string) (*gatehouse.Principal, error)
}

// LimitFunc applies the rate limit to an authenticated request: it writes
// the rate-limit headers and returns an error when the request is refused.
type LimitFunc func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error

// Authenticator authenticates requests. Construct it with New; it is safe
// for concurrent use.
type Authenticator struct {
	tokens    Validator
	apiTokens APITokenValidator // nil: API tokens are refused
	// APITokenHeader and UserEmailHeader are the names of the API-token and
	// act-as-user headers.
	APITokenHeader, UserEmailHeader string
	// Limit, when set, rate-limits every authenticated request.
	Limit LimitFunc
}

// New returns an Authenticator over the given validators; apiTokens may be
// nil.
func New(tokens Validator, apiTokens APITokenValidator) *Authenticator {
	return &Authenticator{tokens: tokens, apiTokens: apiTokens,
		APITokenHeader: "X-API-Token", UserEmailHeader: "X-User-Email"}
}

// single returns the only value of header name: "" when absent, an
// invalid_request error when repeated or holding CR, LF or NUL.
func single(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", gatehouse.Invalid("The %s header must be sent once", name)
	case strings.ContainsAny(vs[0], "\r\n\x00"):
		return "", gatehouse.Invalid("The %s header holds a forbidden character", name)
	}
	return strings.TrimSpace(vs[0]), nil
}

// Credentials returns the raw credentials of a request: the bearer token,
// the API token and the act-as e-mail. It returns invalid_request for
// malformed or conflicting headers.
func (a *Authenticator) Credentials(r *http.Request) (bearer, apiToken, actAs string, err error) {
	authz, err := single(r.Header, "Authorization")
	if err != nil {
		return "", "", "", err
	}
	if apiToken, err = single(r.Header, a.APITokenHeader); err != nil {
		return "", "", "", err
	}
	if actAs, err = single(r.Header, a.UserEmailHeader); err != nil {
		return "", "", "", err
	}
	if authz != "" {
		scheme, rest, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", "", "", gatehouse.Errorf(gatehouse.EInvalidToken, "The Authorization header must use the Bearer scheme")
		}
		if bearer = strings.TrimSpace(rest); bearer == "" {
			return "", "", "", gatehouse.Errorf(gatehouse.EInvalidToken, "The bearer token is empty")
		}
	}
	switch {
	case bearer != "" && apiToken != "":
		return "", "", "", gatehouse.Invalid("Send one credential: a bearer token or an API token, not both")
	case actAs != "" && apiToken == "":
		return "", "", "", gatehouse.Invalid("The %s header is honoured only with an API token", a.UserEmailHeader)
	}
	return bearer, apiToken, actAs, nil
}

// Authenticate returns the principal of r. Missing credentials are
// unauthorized; credentials that do not work are invalid_token (or
// invalid_user / extension_disabled for API tokens).
func (a *Authenticator) Authenticate(r *http.Request) (*gatehouse.Principal, error) {
	bearer, apiToken, actAs, err := a.Credentials(r)
	if err != nil {
		return nil, err
	}
	switch {
	case bearer != "":
		return a.tokens.AccessPrincipal(r.Context(), bearer)
	case apiToken != "":
		if a.apiTokens == nil {
			return nil, gatehouse.Errorf(gatehouse.EInvalidToken, "The API token is invalid or revoked")
		}
		return a.apiTokens.APITokenPrincipal(r.Context(), apiToken, actAs)
	}
	return nil, gatehouse.Errorf(gatehouse.EUnauthorized, "Authentication required")
}

// Require authenticates every request, applies the rate limit, and passes
// the principal to next in the request context (gatehouse.FromContext).
// Requests that fail get the JSON error of SPEC §4.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		if a.Limit != nil {
			if err := a.Limit(w, r, p); err != nil {
				httpx.Error(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), p)))
	})
}
