package gatehouse

import (
	"context"
	"log/slog"
)

type loggerKey struct{}

// A LoggerSource gives a logger when asked: a request's, carrying the
// request id and made the first time something logs, so that a line
// written anywhere below the HTTP layer (a WARN about a refresh token used
// twice, say) can be matched with the request's own log line, and a
// request that logs nothing does not pay for it.
type LoggerSource interface{ Logger() *slog.Logger }

// WithLoggerSource returns a copy of ctx whose Logger is src's (the HTTP
// layer stores each request's there).
func WithLoggerSource(ctx context.Context, src LoggerSource) context.Context {
	return context.WithValue(ctx, loggerKey{}, src)
}

// Logger returns the logger of the source stored by WithLoggerSource, or
// slog.Default() when there is none. Use it as
//
//	gatehouse.Logger(ctx).WarnContext(ctx, "refresh token reused", "client_id", id)
func Logger(ctx context.Context) *slog.Logger {
	if src, ok := ctx.Value(loggerKey{}).(LoggerSource); ok {
		return src.Logger()
	}
	return slog.Default()
}
