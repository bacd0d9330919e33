package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Recover turns a panic in next into a logged 500 internal_error answer, so
// one bad request never takes the server down.
func Recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.ErrorContext(r.Context(), "panic", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				Error(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// StatusWriter records the status a handler wrote.
type StatusWriter struct {
	http.ResponseWriter
	Status int
	Bytes  int
}

// WriteHeader records the status and passes it on.
func (w *StatusWriter) WriteHeader(status int) {
	if w.Status == 0 {
		w.Status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write records that a body was written.
func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Log writes one structured log line per request: method, path (never the
// query string, which may hold a password), status, size and duration.
func Log(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.Status), slog.Int("bytes", sw.Bytes),
			slog.Duration("duration", time.Since(start)), slog.String("remote", ClientAddr(r)))
	})
}

// ClientInfo stores the client's address in the request context, where the
// audit log finds it.
func ClientInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(gatehouse.WithClientAddr(r.Context(), ClientAddr(r))))
	})
}

// JSONMux wraps mux so that requests matching no route get a JSON 404 and
// requests with the wrong method a JSON 405 (with Allow), instead of the
// mux's plain-text answers. fallback, when not nil, serves requests that
// match no route at all (the gateway mode).
func JSONMux(mux *http.ServeMux, fallback http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// Ask the mux's own handler what it would answer, without its body.
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch {
		case probe.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			Error(w, r, gatehouse.Errorf(gatehouse.EMethodNotAllowed, "Method %s is not allowed here", r.Method))
		case probe.status == http.StatusNotFound && fallback != nil:
			fallback.ServeHTTP(w, r)
		case probe.status == http.StatusNotFound:
			Error(w, r, gatehouse.NotFound("route"))
		default:
			// A redirect (e.g. path cleaning): let the mux answer.
			mux.ServeHTTP(w, r)
		}
	})
}

type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }
