package store

import (
	"context"
	"runtime"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/tracing"
)

// span starts the span of one store call under a traced request: one per
// read (readRow), write transaction (tx, durableTx) or queued write
// (batched), named by the store method that made it ("store.TokenByHash",
// "store.Update"). It carries the engine's name and nothing of the query
// or its arguments. Without a traced request it costs an atomic load.
func (s *Store) span(ctx context.Context) (context.Context, trace.Span) {
	if !tracing.Traced(ctx) {
		return ctx, noSpan
	}
	system := s.d.name
	if system == "postgres" {
		system = "postgresql"
	}
	return tracing.Start(ctx, "store."+storeCaller(), attribute.String("db.system.name", system))
}

// noSpan is the span of an untraced call: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// helpers are the store's own functions that calls pass through on their
// way to the database; a span is named by the method above them.
var helpers = map[string]bool{"span": true, "storeCaller": true, "readRow": true, "tx": true, "durableTx": true, "batched": true, "queue": true}

// storeCaller returns the name of the first function up the stack that is
// not one of the helpers.
func storeCaller() string {
	var pcs [8]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		name := f.Function[strings.LastIndexByte(f.Function, '.')+1:]
		if !helpers[name] && !strings.HasPrefix(name, "func") {
			return name
		}
		if !more {
			return "call"
		}
	}
}
