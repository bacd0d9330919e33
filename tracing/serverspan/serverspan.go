// Package serverspan makes the server span of each request Gatehouse
// serves, inside httpx.Requests, for a tracing.Tracing.
package serverspan

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/tracing"
)

// Handler wraps next, the handler inside httpx.Requests, with a server
// span per request of t (nil, tracing off: next itself). A W3C traceparent (and tracestate) from the client is
// taken as the span's parent, whoever sent it: a trace id decides nothing
// but which trace the spans join (see docs/deploy.md, "Tracing"). The span
// is named by the method and the route pattern that served the request;
// it carries the request id, the status, and the account, user and
// credential ids of whoever the credential belonged to, nothing a client
// wrote besides the method and request id.
//
// Route is read back from the request the mux saw: Handler copies the
// pattern onto r, which httpx.Requests reads for its log line.
func Handler(t *tracing.Tracing, next http.Handler) http.Handler {
	if !t.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Extract(r.Context(), r.Header)
		method := tracing.Method(r.Method)
		ctx, span := t.Tracer().Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method)))
		defer span.End()
		in := r.WithContext(ctx)
		next.ServeHTTP(w, in)
		r.Pattern = in.Pattern
		if in.Pattern != "" {
			route := in.Pattern
			if _, path, ok := strings.Cut(route, " "); ok {
				route = path
			}
			span.SetName(method + " " + route)
			span.SetAttributes(semconv.HTTPRoute(route))
		}
		answered(ctx, span, w)
	})
}

// answered records on span how the request ended: its status (from the
// httpx.StatusWriter httpx.Requests hands on), its request id, the ids of
// whose credential it carried and its error code.
func answered(ctx context.Context, span trace.Span, w http.ResponseWriter) {
	status := http.StatusOK
	if sw, ok := w.(*httpx.StatusWriter); ok && sw.Status != 0 {
		status = sw.Status
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetStatus(codes.Error, "")
	}
	info := httpx.Info(ctx)
	if info == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("gatehouse.request_id", info.ID)}
	p, code := info.Result()
	if p != nil {
		attrs = append(attrs, attribute.String("gatehouse.account_id", p.AccountID),
			attribute.String("gatehouse.auth_method", string(p.Method)))
		if p.User != nil {
			attrs = append(attrs, attribute.String("gatehouse.user_id", p.User.ID))
		}
		if p.CredentialID != "" {
			attrs = append(attrs, attribute.String("gatehouse.credential_id", p.CredentialID))
		}
	}
	if code != "" {
		attrs = append(attrs, attribute.String("gatehouse.error", code))
	}
	span.SetAttributes(attrs...)
}
