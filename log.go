package gatehouse

import (
	"context"
	"log/slog"
)

// A RequestScope is what the layer serving a request shares with the code
// below it through the request's context, in one value (the HTTP layer
// stores one per request with WithRequestScope):
//
//   - the request's logger, carrying the request id and made the first
//     time something logs, so that a line written anywhere below the HTTP
//     layer (a WARN about a refresh token used twice, say) can be matched
//     with the request's own log line, and a request that logs nothing
//     does not pay for it;
//   - the client's address, which the audit log records;
//   - the principal the request was admitted as, nil until it is.
type RequestScope interface {
	Logger() *slog.Logger
	ClientAddr() string
	Principal() *Principal
}

type scopeKey struct{}

// WithRequestScope returns a copy of ctx carrying s.
func WithRequestScope(ctx context.Context, s RequestScope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// RequestScopeOf returns the scope stored by WithRequestScope, or nil.
func RequestScopeOf(ctx context.Context) RequestScope {
	s, _ := ctx.Value(scopeKey{}).(RequestScope)
	return s
}

// Logger returns the request's logger, or slog.Default() outside a
// request. Use it as
//
//	gatehouse.Logger(ctx).WarnContext(ctx, "refresh token reused", "client_id", id)
func Logger(ctx context.Context) *slog.Logger {
	if s := RequestScopeOf(ctx); s != nil {
		return s.Logger()
	}
	return slog.Default()
}

// ClientAddrFromContext returns the address of the client of the request
// ctx belongs to, or "".
func ClientAddrFromContext(ctx context.Context) string {
	if s := RequestScopeOf(ctx); s != nil {
		return s.ClientAddr()
	}
	return ""
}

// FromContext returns the principal the request ctx belongs to was
// admitted as, or nil.
func FromContext(ctx context.Context) *Principal {
	if s := RequestScopeOf(ctx); s != nil {
		return s.Principal()
	}
	return nil
}
