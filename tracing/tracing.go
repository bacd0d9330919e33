// Package tracing is Gatehouse's OpenTelemetry tracing: a tracer provider
// exporting over OTLP/HTTP, configured by the standard OTEL_* environment
// variables and off when none asks for it (FromEnv); the child spans of
// the store, Redis and password hashing (Start) and the upstream call with
// its W3C traceparent (Transport). The server span of each request is
// tracing/serverspan's.
//
// With tracing off nothing is wrapped and Start returns at once: the hot
// path pays one atomic load. No span attribute ever holds a secret: spans
// name routes by their pattern, never by the path a client sent or its
// query string, and carry ids (request, account, user, credential), never
// a token, password or header value.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// scope names Gatehouse's tracer (the instrumentation scope).
const scope = "github.com/gatehouse/gatehouse"

// active is true once any tracer provider has been made in this process:
// until then Start does not even look at its context.
var active atomic.Bool

// propagator reads and writes W3C trace context (traceparent and
// tracestate); baggage is neither read nor passed on.
var propagator = propagation.TraceContext{}

// Tracing is a process's tracer provider. A nil *Tracing is tracing off:
// its methods do nothing and Handler returns its handler unchanged.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// Enabled reports whether spans are made and exported.
func (t *Tracing) Enabled() bool { return t != nil }

// FromEnv reads the OTEL_* environment (see Config) and returns the tracer
// provider it asks for, or nil when tracing is off. A setting it cannot
// honour (another exporter or protocol) is an error, so that an operator
// who asked for traces is not left without them unknowingly.
func FromEnv(ctx context.Context) (*Tracing, error) {
	return fromLookup(ctx, os.LookupEnv)
}

// Config decides from the environment (lookup) whether tracing is on:
//
//   - OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none: off;
//   - OTEL_TRACES_EXPORTER=otlp: on (to OTEL_EXPORTER_OTLP_ENDPOINT or the
//     OTLP default, http://localhost:4318);
//   - OTEL_TRACES_EXPORTER unset: on when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, else off;
//   - any other exporter, or an OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL other
//     than http/protobuf: an error.
//
// Everything else (headers, timeout, compression, certificates, the
// sampler, the batch processor, the service name and resource attributes)
// is read by the OpenTelemetry SDK from its standard variables.
func Config(lookup func(string) (string, bool)) (on bool, err error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, nil
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		on = true
	case "":
		on = get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: Gatehouse exports traces over OTLP only (otlp or none)", exp)
	}
	if !on {
		return false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := get(k); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("%s=%s: Gatehouse exports traces over OTLP/HTTP with protobuf only (http/protobuf)", k, p)
			}
			break
		}
	}
	return true, nil
}

func fromLookup(ctx context.Context, lookup func(string) (string, bool)) (*Tracing, error) {
	on, err := Config(lookup)
	if err != nil || !on {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// The service is "gatehouse" unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES name it: later detectors win.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("gatehouse")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based,
	// always on), the batching from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	active.Store(true)
	return &Tracing{tp: tp, tracer: tp.Tracer(scope)}, nil
}

// Shutdown exports what is still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// Tracer returns the provider's tracer, for the server span (serverspan).
func (t *Tracing) Tracer() trace.Tracer { return t.tracer }

// Extract returns ctx with the remote span context of a W3C traceparent
// (and tracestate) in h, if any.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Method returns m when it is a standard HTTP method, else "_OTHER"
// (OpenTelemetry's convention): a made-up method is not a span name.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// Start starts a child span of the span in ctx, named name, and returns
// the context holding it; End the span when the work is done. Without a
// recording span in ctx it starts nothing and returns ctx and a span
// whose End does nothing. Store, Redis and password calls use it.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !active.Load() {
		return ctx, noopSpan
	}
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noopSpan
	}
	return parent.TracerProvider().Tracer(scope).Start(ctx, name, trace.WithAttributes(attrs...))
}

// Traced reports whether ctx holds a span that records: whether Start
// would start one.
func Traced(ctx context.Context) bool {
	return active.Load() && trace.SpanFromContext(ctx).IsRecording()
}

// End ends span, marking it failed when err is not nil. The error's text
// is not recorded (it may quote what a client sent); its type is.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
	}
	span.End()
}

var noopSpan = trace.SpanFromContext(context.Background())

// Transport wraps rt so that a request whose context holds a span gets a
// client span of its own and carries it to the server in traceparent (and
// tracestate), replacing whatever the client sent: the upstream joins the
// same trace. Requests without a span pass through as they are.
func Transport(rt http.RoundTripper) http.RoundTripper { return transport{rt} }

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !active.Load() || !trace.SpanFromContext(req.Context()).SpanContext().IsValid() {
		return t.next.RoundTrip(req)
	}
	parent := trace.SpanFromContext(req.Context())
	method := Method(req.Method)
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method), semconv.ServerAddress(req.URL.Hostname())}
	ctx, span := parent.TracerProvider().Tracer(scope).Start(req.Context(), method+" upstream",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	// A RoundTripper must not change the request it is given.
	out := req.Clone(ctx)
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	res, err := t.next.RoundTrip(out)
	if err != nil {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(semconv.ErrorTypeKey.String(fmt.Sprintf("%T", err)))
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
	if res.StatusCode >= 500 {
		span.SetStatus(codes.Error, "")
	}
	return res, nil
}
