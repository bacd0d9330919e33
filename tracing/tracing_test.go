package tracing

import (
	"context"
	"strings"
	"testing"
)

// TestConfig checks which OTEL_* environments turn tracing on, leave it
// off, or are refused.
func TestConfig(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		on      bool
		refused string
	}{
		{env: nil},
		{env: map[string]string{"OTEL_SERVICE_NAME": "gatehouse"}},
		{env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, refused: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, refused: "OTEL_TRACES_EXPORTER"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, refused: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, refused: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		// The traces' own protocol wins over the general one.
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
	} {
		lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
		on, err := Config(lookup)
		switch {
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%v: err %v, want one naming %s", c.env, err, c.refused)
		case c.refused == "" && err != nil:
			t.Errorf("%v: %v", c.env, err)
		case on != c.on:
			t.Errorf("%v: on = %v, want %v", c.env, on, c.on)
		}
	}
}

// TestOff checks that without a tracer provider nothing is traced: Handler
// returns its handler, Start starts nothing, and FromEnv gives nil.
func TestOff(t *testing.T) {
	tr, err := fromLookup(context.Background(), func(string) (string, bool) { return "", false })
	if err != nil || tr != nil || tr.Enabled() {
		t.Fatalf("FromEnv without OTEL_*: %v %v", tr, err)
	}
	ctx := context.Background()
	got, span := Start(ctx, "x")
	if got != ctx || span.IsRecording() || span.SpanContext().IsValid() || Traced(ctx) {
		t.Fatal("Start without a span in the context started one")
	}
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkStartOff is what a store, Redis or password call pays with
// tracing off: no span, no allocation.
func BenchmarkStartOff(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, span := Start(ctx, "store.TokenByHash")
		End(span, nil)
	}
}
