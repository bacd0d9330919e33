// Package auth turns a request's credentials into a gatehouse.Principal and
// guards the API with it: bearer access tokens and API tokens with the
// act-as-user header.
package auth

import (
	"context"
	"errors"
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

// LimitFunc applies the rate limit to an authenticated request: it writes
// the rate-limit headers and returns an error when the request is refused.
// With confirm set, p comes from Authenticate and may rest on this node's
// last view of the cluster (gatehouse.Principal.Basis): the LimitFunc then
// counts the request only if the cluster is still in that state, and
// returns ErrStale, having counted nothing, when it is not.
type LimitFunc func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal, confirm bool) error

// ErrStale is a LimitFunc's answer for a principal validated under a
// cluster state that has changed since: Admit validates the credential
// again and charges it anew.
var ErrStale = errors.New("auth: the principal was validated under an earlier cluster state")

// maxAttempts bounds how often Admit validates one request when the
// cluster keeps changing under it.
const maxAttempts = 3

// Config is what an Authenticator needs.
type Config struct {
	Tokens Validator
	// APITokens resolves API tokens; nil refuses them.
	APITokens APITokenValidator
	// APITokenHeader and UserEmailHeader are the names of the API-token and
	// act-as-user headers; empty means DefaultAPITokenHeader and
	// DefaultUserEmailHeader.
	APITokenHeader, UserEmailHeader string
	// Limit, when set, rate-limits every authenticated request.
	Limit LimitFunc
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
	limit                           LimitFunc
}

// New returns an Authenticator for cfg.
func New(cfg Config) *Authenticator {
	a := &Authenticator{tokens: cfg.Tokens, apiTokens: cfg.APITokens, apiTokenHeader: cfg.APITokenHeader,
		userEmailHeader: cfg.UserEmailHeader, limit: cfg.Limit}
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
// malformed or conflicting headers.
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
		return "", "", "", gatehouse.Invalid("The %s header is honoured only with an API token", a.userEmailHeader)
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

// Admit authenticates r and charges it to its principal's rate limit,
// which confirms the principal against the cluster (see LimitFunc): every
// request authenticated by its headers goes through here. When the
// cluster changed since the principal was validated, the request is
// validated again (a few times at most, then refused with 503).
func (a *Authenticator) Admit(w http.ResponseWriter, r *http.Request) (*gatehouse.Principal, error) {
	return a.AdmitChecked(w, r, nil)
}

// Check decides about an authenticated request before it is charged to
// the rate limit, so that a request it refuses costs its principal
// nothing, like every other refusal. It may set headers on w for its
// refusal.
type Check func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error

// AdmitChecked is Admit with check (when not nil) made between
// authentication and the rate limit: a request check refuses is not
// charged. When the cluster turns out to have changed, the request is
// validated and checked again.
func (a *Authenticator) AdmitChecked(w http.ResponseWriter, r *http.Request, check Check) (*gatehouse.Principal, error) {
	for range maxAttempts {
		p, err := a.Authenticate(r)
		if err != nil {
			// A credential recognised but refused is named in the
			// request log and the usage counts, never trusted.
			httpx.RecordPrincipal(r.Context(), gatehouse.RefusedPrincipal(err))
			return nil, err
		}
		httpx.RecordPrincipal(r.Context(), p)
		if check != nil {
			if err := check(w, r, p); err != nil {
				return nil, err
			}
		}
		if a.limit == nil {
			return p, nil
		}
		err = a.limit(w, r, p, true)
		if errors.Is(err, ErrStale) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, &gatehouse.Error{Code: gatehouse.EUnavailable, Message: "The cluster state keeps changing; try again shortly"}
}

// Charge applies the rate limit to a request of p authenticated some other
// way (a client credential on the revocation or introspection endpoint,
// validated against the cluster's current state), writing the rate-limit
// headers; it returns an error when the request is refused.
func (a *Authenticator) Charge(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	httpx.RecordPrincipal(r.Context(), p)
	if a.limit == nil {
		return nil
	}
	return a.limit(w, r, p, false)
}

// Require admits every request (Admit) and passes it to next, where
// gatehouse.FromContext returns its principal (recorded on the request's
// httpx.RequestInfo, so Require must run under httpx.Requests; without it
// next sees no principal and fails closed). Requests that fail get the
// JSON error of SPEC §4.
func (a *Authenticator) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Admit(w, r)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		httpx.Admitted(r.Context(), p)
		next.ServeHTTP(w, r)
	})
}
