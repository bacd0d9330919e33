// Package auth turns a request's credentials into a gatehouse.Principal:
// bearer access tokens and API tokens with the act-as-user header; and
// checks a principal's scopes. Admitting a request (charging it,
// confirming it against the cluster) is package admission's.
package auth

import (
	"context"
	"net/http"
	"net/textproto"
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

// Config is what an Authenticator needs.
type Config struct {
	Tokens Validator
	// APITokens resolves API tokens; nil refuses them.
	APITokens APITokenValidator
	// APITokenHeader and UserEmailHeader are the names of the API-token and
	// act-as-user headers; empty means DefaultAPITokenHeader and
	// DefaultUserEmailHeader.
	APITokenHeader, UserEmailHeader string
}

// The default header names of SPEC §3.2.
const (
	DefaultAPITokenHeader  = "X-API-Token"
	DefaultUserEmailHeader = "X-User-Email"
)

// Authenticator authenticates requests. Construct it with New; it is safe
// for concurrent use.
type Authenticator struct {
	tokens                          Validator
	apiTokens                       APITokenValidator
	apiTokenHeader, userEmailHeader string
}

// New returns an Authenticator for cfg.
func New(cfg Config) *Authenticator {
	a := &Authenticator{tokens: cfg.Tokens, apiTokens: cfg.APITokens, apiTokenHeader: cfg.APITokenHeader,
		userEmailHeader: cfg.UserEmailHeader}
	if a.apiTokenHeader == "" {
		a.apiTokenHeader = DefaultAPITokenHeader
	}
	if a.userEmailHeader == "" {
		a.userEmailHeader = DefaultUserEmailHeader
	}
	// Canonical once, so that reading them is no work per request.
	a.apiTokenHeader = textproto.CanonicalMIMEHeaderKey(a.apiTokenHeader)
	a.userEmailHeader = textproto.CanonicalMIMEHeaderKey(a.userEmailHeader)
	return a
}

// APITokenHeader returns the name of the API-token header.
func (a *Authenticator) APITokenHeader() string { return a.apiTokenHeader }

// UserEmailHeader returns the name of the act-as-user header.
func (a *Authenticator) UserEmailHeader() string { return a.userEmailHeader }

// Credentials returns the raw credentials of a request: the bearer token,
// the API token and the act-as e-mail. It returns invalid_request for
// malformed or conflicting headers, and invalid_user for an act-as header
// sent blank with an API token (it names no user, and is not the header
// left out).
func (a *Authenticator) Credentials(r *http.Request) (bearer, apiToken, actAs string, err error) {
	authz, err := httpx.SingleHeader(r.Header, "Authorization")
	if err != nil {
		return "", "", "", err
	}
	if apiToken, err = httpx.SingleHeader(r.Header, a.apiTokenHeader); err != nil {
		return "", "", "", err
	}
	if actAs, err = httpx.SingleHeader(r.Header, a.userEmailHeader); err != nil {
		return "", "", "", err
	}
	// A blank act-as header names nobody: it is not the header left out,
	// which would make an API token's request the anonymous admin's.
	blankActAs := actAs == "" && len(r.Header[a.userEmailHeader]) > 0
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
	case (actAs != "" || blankActAs) && apiToken == "":
		return "", "", "", gatehouse.Invalid("The %s header is honoured only with an API token", a.userEmailHeader)
	case blankActAs:
		return "", "", "", gatehouse.Errorf(gatehouse.EInvalidUser, "The %s header is empty: name an active user of this account, or leave the header out", a.userEmailHeader)
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
