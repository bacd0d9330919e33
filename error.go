package gatehouse

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Each maps to exactly one HTTP status in httpx.Status; the
// OAuth codes are used on the token endpoint (RFC 6749 §5.2).
const (
	EInvalidRequest       = "invalid_request"
	EUnauthorized         = "unauthorized"
	EInvalidToken         = "invalid_token"
	EForbidden            = "forbidden"
	EInvalidUser          = "invalid_user"
	EInsufficientScope    = "insufficient_scope"
	EExtensionDisabled    = "extension_disabled"
	ENotFound             = "not_found"
	EMethodNotAllowed     = "method_not_allowed"
	EConflict             = "conflict"
	ELimitReached         = "limit_reached"
	EPayloadTooLarge      = "payload_too_large"
	ERateLimitExceeded    = "rate_limit_exceeded"
	ETooManyAttempts      = "too_many_attempts"
	EUnavailable          = "temporarily_unavailable"
	EInternal             = "internal_error"
	EBadGateway           = "bad_gateway"
	EGatewayTimeout       = "gateway_timeout"
	EInvalidClient        = "invalid_client"
	EInvalidGrant         = "invalid_grant"
	EUnauthorizedClient   = "unauthorized_client"
	EUnsupportedGrantType = "unsupported_grant_type"
	EInvalidScope         = "invalid_scope"
	// EInvalidTarget refuses a resource indicator (RFC 8707 §2).
	EInvalidTarget = "invalid_target"
	// EInvalidRedirectURI and EInvalidClientMetadata refuse a client's
	// registration (RFC 7591 §3.2.2).
	EInvalidRedirectURI    = "invalid_redirect_uri"
	EInvalidClientMetadata = "invalid_client_metadata"
	EIPNotAllowed          = "ip_not_allowed"
	EQuotaExceeded         = "quota_exceeded"
	// The device authorization grant's answers while polling (RFC 8628
	// §3.5).
	EAuthorizationPending = "authorization_pending"
	ESlowDown             = "slow_down"
	EAccessDenied         = "access_denied"
	EExpiredToken         = "expired_token"
)

// Error is the one error type that reaches users. Code is one of the E*
// constants; Message is safe to show to the client. RetryAfter, when set,
// becomes a Retry-After header of RetryAfterSeconds(RetryAfter).
type Error struct {
	Code       string
	Message    string
	RetryAfter time.Duration
	// Status, when not zero, replaces the HTTP status the code maps to
	// (the rate-limit status is configurable).
	Status int
	// Field, when set, names the input the error is about, as the API
	// names it ("access_token_ttl_days", "rate_limit.daily").
	Field string
	// Hint says what is wrong with Field in words for a person filling in
	// a form, meant to be shown next to it; "" means Message.
	Hint string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("gatehouse error: code=%s message=%s", e.Code, e.Message)
}

// RetryAfterSeconds returns the Retry-After header value for a wait of d:
// d rounded up to whole seconds, and at least 1, since 0 would invite a
// retry at once.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, EInternal for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EInternal
	}
}

// ErrorMessage returns the safe message of the *Error in err's chain, or a
// generic text for any other error, so that internals never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "Internal error"
	}
}

// NotFound is a convenience for the common 404 answer.
func NotFound(what string) *Error {
	return Errorf(ENotFound, "%s not found", what)
}

// Forbidden is a convenience for the common 403 answer.
func Forbidden(format string, args ...any) *Error {
	return Errorf(EForbidden, format, args...)
}

// Invalid is a convenience for the common 400 answer.
func Invalid(format string, args ...any) *Error {
	return Errorf(EInvalidRequest, format, args...)
}

// InvalidField is Invalid about one input: field is its name in the API,
// hint the same problem for a person, to be shown next to the input.
func InvalidField(field, hint, format string, args ...any) *Error {
	e := Invalid(format, args...)
	e.Field, e.Hint = field, hint
	return e
}

// Field returns err about the input field, with hint for a person (see
// Error.Field): a copy of the *Error in err's chain with those set, or err
// itself when it holds none.
func Field(err error, field, hint string) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	c.Field, c.Hint = field, hint
	return &c
}

// ErrorField returns the field and the hint of the *Error in err's chain
// (see Error.Field); the hint is the message when the error has none.
func ErrorField(err error) (field, hint string) {
	var e *Error
	if !errors.As(err, &e) {
		return "", ""
	}
	if e.Hint == "" {
		return e.Field, e.Message
	}
	return e.Field, e.Hint
}

// RefusedCredential is the error refusing a credential that Gatehouse
// recognises but that does not work now — an access token whose user or
// application was disabled, an expired API token, an act-as header naming
// nobody of the account — together with whose credential it is, so that
// the request log and the usage counts can name it. Of is never to be
// trusted: nothing was authenticated.
type RefusedCredential struct {
	Err error
	Of  *Principal
}

// Error implements the error interface.
func (e *RefusedCredential) Error() string { return e.Err.Error() }

// Unwrap returns the refusal itself.
func (e *RefusedCredential) Unwrap() error { return e.Err }

// Refused returns err naming the credential of of (see RefusedCredential).
func Refused(err error, of *Principal) error { return &RefusedCredential{Err: err, Of: of} }

// RefusedPrincipal returns the principal of the RefusedCredential in err's
// chain, or nil.
func RefusedPrincipal(err error) *Principal {
	var r *RefusedCredential
	if errors.As(err, &r) {
		return r.Of
	}
	return nil
}
