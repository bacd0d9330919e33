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
// (queue), named by the store method that made it ("store.TokenByHash",
// "store.Update"; a transaction of Update also names the function that
// asked for it, e.g. code.function.name "CreateUser"). It carries the
// engine's name and nothing of the query or its arguments. Without a traced request it costs an atomic load.
func (s *Store) span(ctx context.Context) (context.Context, trace.Span) {
	if !tracing.Traced(ctx) {
		return ctx, noSpan
	}
	system := s.d.name
	if system == "postgres" {
		system = "postgresql"
	}
	name, asker := storeCaller()
	attrs := []attribute.KeyValue{attribute.String("db.system.name", system)}
	if asker != "" {
		attrs = append(attrs, attribute.String("code.function.name", asker))
	}
	return tracing.Start(ctx, "store."+name, attrs...)
}

// noSpan is the span of an untraced call: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// helpers are the store's own functions that calls pass through on their
// way to the database; a span is named by the method above them.
var helpers = map[string]bool{"span": true, "storeCaller": true, "readRow": true, "tx": true, "durableTx": true, "runUpdate": true, "batched": true, "queue": true}

// storeCaller returns the name of the first function up the stack that is
// not one of the helpers, and for Update the first after it that is not
// the service's own update helper.
func storeCaller() (name, asker string) {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		fn := f.Function[strings.LastIndexByte(f.Function, '.')+1:]
		switch {
		case helpers[fn] || strings.HasPrefix(fn, "func"):
		case name == "":
			name = fn
			if fn != "Update" {
				return name, ""
			}
		case fn != "update":
			return name, fn
		}
		if !more {
			if name == "" {
				name = "call"
			}
			return name, ""
		}
	}
}
