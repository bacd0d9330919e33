package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
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
				gatehouse.Logger(r.Context()).ErrorContext(r.Context(), "panic", "method", r.Method, "path", r.URL.Path,
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

// RequestIDHeader carries a request's id: honoured from the client when it
// looks sane, sent back on every answer, and passed to the upstream.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds an incoming request id.
const maxRequestIDLen = 128

// saneRequestID reports whether an incoming request id may be used as is:
// 1 to 128 bytes of letters, digits and - _ . : / + = @.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-_.:/+=@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 96 random bits in hex.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestInfo is what a request's log line tells beyond the request itself:
// its id, who made it and how it ended. Log puts one in every request's
// context; the authenticator fills in the principal and Error the error
// code. Its methods are safe for concurrent use and do nothing on nil.
type RequestInfo struct {
	// ID is the request id, fixed when the request arrives.
	ID string

	mu        sync.Mutex
	principal *gatehouse.Principal
	errCode   string
	// base is the server's logger; logger is base with the request id,
	// made when first asked for (Logger).
	base   *slog.Logger
	logger *slog.Logger
}

var _ gatehouse.LoggerSource = (*RequestInfo)(nil)

// Logger returns the request's logger: the server's, with the request id.
func (i *RequestInfo) Logger() *slog.Logger {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.logger == nil {
		i.logger = i.base.With(slog.String("request_id", i.ID))
	}
	return i.logger
}

// SetPrincipal records who the request acts as.
func (i *RequestInfo) SetPrincipal(p *gatehouse.Principal) {
	if i == nil || p == nil {
		return
	}
	i.mu.Lock()
	i.principal = p
	i.mu.Unlock()
}

// Result returns who the request acts as, as recorded by SetPrincipal
// (for a refused credential, whose it is; nil for nobody), and the error
// code it was answered with ("" for none).
func (i *RequestInfo) Result() (*gatehouse.Principal, string) {
	if i == nil {
		return nil, ""
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.principal, i.errCode
}

// SetErrorCode records the error code the request was answered with.
func (i *RequestInfo) SetErrorCode(code string) {
	if i == nil {
		return
	}
	i.mu.Lock()
	i.errCode = code
	i.mu.Unlock()
}

// attrs returns the principal and error attributes of the log line. The
// principal is named by ids only: account, user, how it authenticated and
// the id (never the secret) of the credential.
func (i *RequestInfo) attrs() []slog.Attr {
	i.mu.Lock()
	defer i.mu.Unlock()
	var out []slog.Attr
	if p := i.principal; p != nil {
		out = append(out, slog.String("account_id", p.AccountID))
		if p.User != nil {
			out = append(out, slog.String("user_id", p.User.ID))
		}
		out = append(out, slog.String("auth_method", string(p.Method)), slog.String("credential_id", p.CredentialID))
		if p.ClientID != "" {
			out = append(out, slog.String("client_id", p.ClientID))
		}
	}
	if i.errCode != "" {
		out = append(out, slog.String("error", i.errCode))
	}
	return out
}

type requestInfoKey struct{}

// Info returns the RequestInfo that Log put in ctx, or nil.
func Info(ctx context.Context) *RequestInfo {
	i, _ := ctx.Value(requestInfoKey{}).(*RequestInfo)
	return i
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if i := Info(ctx); i != nil {
		return i.ID
	}
	return ""
}

// Log gives every request an id (a sane incoming X-Request-Id, else a new
// one), returns it in X-Request-Id on every answer, puts a RequestInfo and
// a logger carrying the id in the request context (gatehouse.Logger), and
// writes one line per request: id, method, path (never the query string,
// which may hold a password), status, size, duration in milliseconds,
// client address, principal and credential ids, and error code. It must be
// inside ClientInfo, which decides the client address. done, when not
// nil, is called once each request has been answered, with its
// RequestInfo and status, whatever the log level.
func Log(logger *slog.Logger, done func(*RequestInfo, int), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !saneRequestID(id) || len(r.Header.Values(RequestIDHeader)) != 1 {
			id = newRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		info := &RequestInfo{ID: id, base: logger}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		ctx = gatehouse.WithLoggerSource(ctx, info)
		sw := &StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		status := sw.Status
		if status == 0 {
			status = http.StatusOK
		}
		if done != nil {
			done(info, status)
		}
		if !logger.Enabled(r.Context(), slog.LevelInfo) {
			return
		}
		attrs := append([]slog.Attr{
			slog.String("request_id", id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int("bytes", sw.Bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", ClientAddr(r)),
		}, info.attrs()...)
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// RecordPrincipal notes in the request's log line who the request acts as.
// Whoever authenticates a request calls it.
func RecordPrincipal(ctx context.Context, p *gatehouse.Principal) { Info(ctx).SetPrincipal(p) }

// PrefixPattern puts prefix in front of the path of a ServeMux pattern:
// PrefixPattern("/gatehouse", "GET /v1/me") is "GET /gatehouse/v1/me".
func PrefixPattern(prefix, pattern string) string {
	if prefix == "" {
		return pattern
	}
	if method, path, ok := strings.Cut(pattern, " "); ok {
		return method + " " + prefix + path
	}
	return prefix + pattern
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
