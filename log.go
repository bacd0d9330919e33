package gatehouse

import (
	"context"
	"log/slog"
)

type loggerKey struct{}

// WithLogger returns a copy of ctx carrying logger. The HTTP layer stores
// each request's logger there, already carrying the request id, so that a
// line written anywhere below it (a WARN about a refresh token used twice,
// say) can be matched with the request's own log line.
func WithLogger(ctx context.Context, logger *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// A LoggerSource gives a logger when asked: a request's, made the first
// time something logs, so that a request that logs nothing does not pay
// for it.
type LoggerSource interface{ Logger() *slog.Logger }

// WithLoggerSource returns a copy of ctx whose Logger is src's.
func WithLoggerSource(ctx context.Context, src LoggerSource) context.Context {
	return context.WithValue(ctx, loggerKey{}, src)
}

// Logger returns the logger stored by WithLogger or WithLoggerSource, or
// slog.Default() when there is none. Use it as
//
//	gatehouse.Logger(ctx).WarnContext(ctx, "refresh token reused", "client_id", id)
func Logger(ctx context.Context) *slog.Logger {
	switch l := ctx.Value(loggerKey{}).(type) {
	case *slog.Logger:
		return l
	case LoggerSource:
		return l.Logger()
	}
	return slog.Default()
}
