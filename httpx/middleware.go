package httpx

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/logx"
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

// RequestIDHeader carries a request's id: honoured from a trusted proxy
// when it looks sane, sent back on every answer, and passed to the
// upstream.
const RequestIDHeader = "X-Request-Id"

// requestIDs returns the id of r and, when r's own X-Request-Id was not
// taken, that id for the log line ("" when there is none or it is not
// sane). An incoming id is taken only from a trusted proxy (proxied), and
// only when it is sane and sent once: anyone else could make one request
// wear another's id in the logs and upstream.
func requestIDs(r *http.Request, proxied bool) (id, client string) {
	in := r.Header.Values(RequestIDHeader)
	if len(in) != 1 || !saneRequestID(in[0]) {
		return newRequestID(), ""
	}
	if proxied {
		return in[0], ""
	}
	return newRequestID(), in[0]
}

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

// newRequestID returns 96 random bits in hex. A request id needs to be
// unique, not secret: the runtime's generator (ChaCha8, seeded by the
// system) gives that without a system call.
func newRequestID() string {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	var out [2 * len(b)]byte
	hex.Encode(out[:], b[:])
	return string(out[:])
}

// RequestInfo is everything Gatehouse keeps about one request beyond the
// request itself, in one record made when it arrives (Requests): its id,
// its client, who it acts as, and how it ended. It is the request's
// gatehouse.RequestScope. Its methods are safe for concurrent use and
// those that record do nothing on nil.
type RequestInfo struct {
	// ID is the request id, fixed when the request arrives.
	ID string
	// ClientID is the X-Request-Id the client sent when it was not taken
	// as ID (the client is not a trusted proxy), for the log line only.
	ClientID string
	// Client is who sent the request (ClientOf), fixed when it arrives.
	Client Client
	// forwarded is the kind of forwarding header Client was read from.
	forwarded ForwardedHeader
	// Route is the pattern of the route that served the request ("" when
	// none matched), Status the status it was answered with, Bytes the
	// size of the body and Duration how long it took; they are set once
	// the request has been answered.
	Route    string
	Status   int
	Bytes    int
	Duration time.Duration

	// w records the answer's status and size.
	w StatusWriter
	// userAgent and path are the request's, fixed when it arrives.
	userAgent, path string
	// idHeader is the X-Request-Id value of the answer.
	idHeader [1]string
	// base is the server's logger; logger is base with the request id,
	// made when first asked for (Logger).
	base *slog.Logger

	mu     sync.Mutex
	logger *slog.Logger
	// seen is whose credential the request carried, even refused;
	// admitted is who it was admitted as.
	seen, admitted *gatehouse.Principal
	errCode        string
}

var _ gatehouse.RequestScope = (*RequestInfo)(nil)

// Logger returns the request's logger: the server's, with the request id.
func (i *RequestInfo) Logger() *slog.Logger {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.logger == nil {
		i.logger = i.base.With(slog.String("request_id", i.ID))
	}
	return i.logger
}

// ClientAddr returns the client's address (Client.Addr).
func (i *RequestInfo) ClientAddr() string { return i.Client.Addr }

// UserAgent returns the request's User-Agent header.
func (i *RequestInfo) UserAgent() string { return i.userAgent }

// Path returns the request's URL path.
func (i *RequestInfo) Path() string { return i.path }

// Principal returns who the request was admitted as (Admitted), or nil.
func (i *RequestInfo) Principal() *gatehouse.Principal {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.admitted
}

// SetPrincipal records in the request's log line and usage whose
// credential the request carried, whether or not it is admitted.
func (i *RequestInfo) SetPrincipal(p *gatehouse.Principal) {
	if i == nil || p == nil {
		return
	}
	i.mu.Lock()
	i.seen = p
	i.mu.Unlock()
}

// Admit records that the request acts as p: gatehouse.FromContext returns
// p from now on, and the log line names it.
func (i *RequestInfo) Admit(p *gatehouse.Principal) {
	if i == nil || p == nil {
		return
	}
	i.mu.Lock()
	i.seen, i.admitted = p, p
	i.mu.Unlock()
}

// Result returns whose credential the request carried, as recorded by
// SetPrincipal or Admit (for a refused credential, whose it is; nil for
// nobody), and the error code it was answered with ("" for none).
func (i *RequestInfo) Result() (*gatehouse.Principal, string) {
	if i == nil {
		return nil, ""
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.seen, i.errCode
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

// fields receives the fields of a request's log line: a logx.Line, or
// attrList for any other slog handler.
type fields interface {
	String(key, v string)
	Int(key string, v int)
	Float(key string, v float64)
}

// logFields writes the request's log line fields to f, in order: id,
// method, path, status, size, duration, client, then the principal named
// by ids only (account, user, how it authenticated and the id, never the
// secret, of the credential) and the error code.
func (i *RequestInfo) logFields(f fields, method, path string) {
	f.String("request_id", i.ID)
	f.String("method", method)
	f.String("path", path)
	f.Int("status", i.Status)
	f.Int("bytes", i.Bytes)
	f.Float("duration_ms", float64(i.Duration.Microseconds())/1000)
	f.String("remote", i.Client.Addr)
	p, code := i.Result()
	if p != nil {
		f.String("account_id", p.AccountID)
		if p.User != nil {
			f.String("user_id", p.User.ID)
		}
		f.String("auth_method", string(p.Method))
		f.String("credential_id", p.CredentialID)
		if p.ClientID != "" {
			f.String("client_id", p.ClientID)
		}
	}
	if code != "" {
		f.String("error", code)
	}
	if i.ClientID != "" {
		f.String("client_request_id", i.ClientID)
	}
}

// attrList collects fields as slog attributes.
type attrList []slog.Attr

func (a *attrList) String(k, v string)        { *a = append(*a, slog.String(k, v)) }
func (a *attrList) Int(k string, v int)       { *a = append(*a, slog.Int(k, v)) }
func (a *attrList) Float(k string, v float64) { *a = append(*a, slog.Float64(k, v)) }

// logRequest writes the request's log line at info: through a logx.Line
// when the server logs through logx (no allocation, no system call: the
// line is buffered, and flushed at once for a 5xx answer), else through
// the logger's handler.
func (i *RequestInfo) logRequest(ctx context.Context, logger *slog.Logger, r *http.Request) {
	if h, ok := logger.Handler().(*logx.Handler); ok {
		if l := h.Line(ctx, slog.LevelInfo, "request"); l != nil {
			i.logFields(l, r.Method, r.URL.Path)
			l.End(i.Status >= 500)
			return
		}
	}
	if logger.Enabled(ctx, slog.LevelInfo) {
		attrs := make(attrList, 0, 14)
		i.logFields(&attrs, r.Method, r.URL.Path)
		logger.LogAttrs(ctx, slog.LevelInfo, "request", attrs...)
	}
}

// Info returns the RequestInfo of the request ctx belongs to (Requests),
// or nil.
func Info(ctx context.Context) *RequestInfo {
	i, _ := gatehouse.RequestScopeOf(ctx).(*RequestInfo)
	return i
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if i := Info(ctx); i != nil {
		return i.ID
	}
	return ""
}

// Requests is the outermost middleware of a server. For each request it
// makes one RequestInfo and puts it in the request's context, where
// ClientAddr, IsHTTPS, RequestID, gatehouse.Logger,
// gatehouse.ClientAddrFromContext and gatehouse.FromContext find it:
//
//   - it works out the client once (ClientOf with f), and warns once
//     when a trusted proxy sends only the kind of forwarding header f does
//     not read;
//   - it gives the request an id (a sane incoming X-Request-Id from a
//     trusted proxy, else a new one; a client's own is logged as
//     client_request_id) and returns it in X-Request-Id on every answer;
//   - once the request is answered, it writes one log line: id, method,
//     path (never the query string, which may hold a password), status,
//     size, duration in milliseconds, client address, principal and
//     credential ids, and error code (through a logx.Line when logger's
//     handler is a logx.Handler: no allocation, buffered, flushed at once
//     for a 5xx answer);
//   - then it calls done, when not nil, with the RequestInfo, whose Route,
//     Status, Bytes and Duration are set by then, whatever the log level.
//
// Route is the pattern the http.ServeMux matched, so the mux must be
// handed the request Requests passes on, not a copy.
func Requests(f Forwarding, logger *slog.Logger, done func(*RequestInfo), next http.Handler) http.Handler {
	var warned atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &RequestInfo{Client: ClientOf(r, f), forwarded: f.header(), base: logger, userAgent: r.UserAgent(), path: r.URL.Path}
		if info.Client.Proxied && f.onlyOther(r.Header) && !warned.Swap(true) {
			logger.Warn("a trusted proxy sent only the forwarding header Gatehouse does not read: its client addresses are not used; set --forwarded-header to the header it writes",
				"reads", string(f.header()), "peer", peerHost(r.RemoteAddr))
		}
		info.ID, info.ClientID = requestIDs(r, info.Client.Proxied)
		info.idHeader[0] = info.ID
		w.Header()[RequestIDHeader] = info.idHeader[:1:1]
		info.w.ResponseWriter = w
		in := r.WithContext(gatehouse.WithRequestScope(r.Context(), info))
		defer func() {
			// An answer cut short (a proxied stream ended by the proxy
			// timeout, its client or its upstream) ends the handler with
			// http.ErrAbortHandler: the request is logged and counted all
			// the same, then the panic goes on to the server, which ends
			// the connection. Any other panic was Recover's to answer.
			cut := recover()
			if cut != nil && cut != http.ErrAbortHandler {
				panic(cut)
			}
			info.Route, info.Status, info.Bytes = in.Pattern, info.w.Status, info.w.Bytes
			switch {
			case info.Status == 0 && cut != nil:
				info.Status = StatusClientClosed // nothing was answered
				info.SetErrorCode(ECanceled)
			case info.Status == 0:
				info.Status = http.StatusOK
			}
			info.Duration = time.Since(start)
			info.logRequest(r.Context(), logger, r)
			if done != nil {
				done(info)
			}
			if cut != nil {
				panic(cut)
			}
		}()
		next.ServeHTTP(&info.w, in)
	})
}

// RecordPrincipal notes in the request's log line and usage whose
// credential the request carried, admitted or refused. Whoever
// authenticates a request calls it.
func RecordPrincipal(ctx context.Context, p *gatehouse.Principal) { Info(ctx).SetPrincipal(p) }

// Admitted records that the request ctx belongs to acts as p, for the
// handlers below (gatehouse.FromContext) and the log line. Whoever admits
// a request calls it.
func Admitted(ctx context.Context, p *gatehouse.Principal) { Info(ctx).Admit(p) }

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

// Routed reports whether mux has a route for r's path with some method:
// a pattern matches r, or mux answers 405 (another method's pattern).
func Routed(mux *http.ServeMux, r *http.Request) bool {
	h, pattern := mux.Handler(r)
	if pattern != "" {
		return true
	}
	probe := &headerProbe{header: http.Header{}}
	h.ServeHTTP(probe, r)
	return probe.status == http.StatusMethodNotAllowed
}

type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(status int)      { p.status = status }
