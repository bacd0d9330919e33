// Package httpx holds Gatehouse's HTTP plumbing shared by every handler: the
// one mapping from error codes to status and JSON body, strict decoding of
// JSON and form bodies, and the middleware every request passes through.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// MaxBodyBytes is the largest request body Gatehouse reads (SPEC §8).
const MaxBodyBytes = 1 << 20

// Status returns the HTTP status for an error code. It is the only place
// that maps codes to statuses.
func Status(code string) int {
	switch code {
	case gatehouse.EInvalidRequest, gatehouse.EInvalidGrant, gatehouse.EUnauthorizedClient, gatehouse.EUnsupportedGrantType, gatehouse.EInvalidScope,
		gatehouse.EInvalidTarget, gatehouse.EInvalidRedirectURI, gatehouse.EInvalidClientMetadata,
		gatehouse.EAuthorizationPending, gatehouse.ESlowDown, gatehouse.EAccessDenied, gatehouse.EExpiredToken:
		return http.StatusBadRequest
	case gatehouse.EUnauthorized, gatehouse.EInvalidToken, gatehouse.EInvalidClient:
		return http.StatusUnauthorized
	case gatehouse.EForbidden, gatehouse.EInvalidUser, gatehouse.EExtensionDisabled, gatehouse.EInsufficientScope, gatehouse.EIPNotAllowed:
		return http.StatusForbidden
	case gatehouse.ENotFound:
		return http.StatusNotFound
	case gatehouse.EMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case gatehouse.EConflict, gatehouse.ELimitReached:
		return http.StatusConflict
	case gatehouse.EPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case gatehouse.ERateLimitExceeded, gatehouse.EQuotaExceeded:
		return http.StatusUnprocessableEntity
	case gatehouse.ETooManyAttempts:
		return http.StatusTooManyRequests
	case gatehouse.EUnavailable:
		return http.StatusServiceUnavailable
	case gatehouse.EBadGateway:
		return http.StatusBadGateway
	case gatehouse.EGatewayTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// SingleHeader returns the only value of header name, trimmed: "" when
// absent, an invalid_request error when repeated or holding CR, LF or NUL.
func SingleHeader(h http.Header, name string) (string, error) {
	vs := h.Values(name)
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", gatehouse.Invalid("The %s header must be sent once", name)
	case strings.ContainsAny(vs[0], "\r\n\x00"):
		return "", gatehouse.Invalid("The %s header holds a forbidden character", name)
	}
	return strings.TrimSpace(vs[0]), nil
}

// WriteSecret writes v, an answer that shows a secret once, as WriteJSON
// does, with Cache-Control: no-store, so that no cache keeps it to show
// it again. Every answer that shows a secret goes through it.
func WriteSecret(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, status, v)
}

// WriteJSON writes v as a JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 64<<10 {
			buf.Reset()
			jsonBuffers.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal_error","error_description":"Internal error"}` + "\n")
	}
	WriteJSONBody(w, status, buf.Bytes())
}

// EncodeJSON returns v's JSON encoding, as WriteJSON writes it.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// jsonContentType is the Content-Type of every JSON answer. Each answer's
// header gets a slice of it that cannot grow into anything else; net/http
// never writes into a header's values.
var jsonContentType = [1]string{"application/json"}

// measuredBody is the size below which net/http holds a body until the
// handler returns and then sends its Content-Length itself; a larger body
// would be sent chunked, so WriteJSONBody declares its length.
const measuredBody = 2048

// WriteJSONBody writes body, a JSON encoding, with the given status and
// its Content-Length.
func WriteJSONBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType[:1:1]
	if len(body) >= measuredBody {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// jsonBuffers are WriteJSON's buffers, reused between answers.
var jsonBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// StatusClientClosed is the status recorded (in the log line and the
// metrics, never seen by anyone) for a request whose client went away
// before it was answered — nginx's 499. It is not a server error.
const StatusClientClosed = 499

// ECanceled is the code recorded for such a request.
const ECanceled = "client_closed_request"

// DefaultRetryAfter is the Retry-After of a 503 that names no wait of its
// own.
const DefaultRetryAfter = time.Second

// Error writes err as a JSON error answer. Errors that are not
// *gatehouse.Error are logged with the request and answered as a generic
// internal error, so internals never reach the client — except a failure
// of a backing service (store.IsUnavailable: a lost or stalled
// connection, a full disk, a read-only database), which is a 503 like the
// service's own temporarily_unavailable, and a request whose client has
// gone, which is recorded as 499 and neither logged nor counted as a
// server error. Unauthorized and invalid-token answers carry the
// WWW-Authenticate value of SPEC §4; every 503 and every error with a
// RetryAfter carries Retry-After. The code goes to the request's log
// line; an unreachable backing service and a throttled password attempt
// are also logged as warnings.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	log := gatehouse.Logger(ctx)
	if ClientGone(r, err) {
		ClientClosed(w, r)
		return
	}
	if store.IsUnavailable(err) {
		log.WarnContext(ctx, "backing service unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		err = gatehouse.Errorf(gatehouse.EUnavailable, "A backing service is unavailable; try again shortly")
	}
	code := gatehouse.ErrorCode(err)
	status := Status(code)
	switch {
	case status >= 500 && code != gatehouse.EUnavailable && code != gatehouse.EBadGateway:
		log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case code == gatehouse.ETooManyAttempts:
		log.WarnContext(ctx, "attempts throttled", "path", r.URL.Path, "remote", ClientAddr(r))
	}
	Info(ctx).SetErrorCode(code)
	h := w.Header()
	switch code {
	case gatehouse.EUnauthorized:
		if h.Get("WWW-Authenticate") == "" { // the gateway's, with its resource metadata
			h.Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		}
	case gatehouse.EInvalidToken:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
	}
	var ge *gatehouse.Error
	if errors.As(err, &ge) {
		if ge.RetryAfter > 0 && h.Get("Retry-After") == "" {
			h.Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(ge.RetryAfter)))
		}
		if ge.Status != 0 {
			status = ge.Status
		}
	}
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", strconv.Itoa(gatehouse.RetryAfterSeconds(DefaultRetryAfter)))
	}
	WriteJSON(w, status, ErrorBody{Error: code, Description: Description(gatehouse.ErrorMessage(err))})
}

// Unavailable reports whether err is a failure of a backing service to be
// answered 503 (see Error): the service's temporarily_unavailable, or a
// technical failure that store.IsUnavailable recognises.
func Unavailable(err error) bool {
	return gatehouse.ErrorCode(err) == gatehouse.EUnavailable || store.IsUnavailable(err)
}

// ClientClosed records that r's client went away before it was answered:
// 499, neither logged as a failure nor counted as a server error.
func ClientClosed(w http.ResponseWriter, r *http.Request) {
	Info(r.Context()).SetErrorCode(ECanceled)
	w.WriteHeader(StatusClientClosed)
}

// ClientGone reports whether r's client went away (its context was
// canceled) and err is what that makes of a call (a canceled or
// interrupted call, or one refused as unavailable): it failed because
// nobody waits for it, not because anything is wrong.
func ClientGone(r *http.Request, err error) bool {
	if !errors.Is(r.Context().Err(), context.Canceled) {
		return false
	}
	return Unavailable(err)
}

// readBody reads at most MaxBodyBytes of r's body and checks that it is
// valid UTF-8 without NUL bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, gatehouse.Errorf(gatehouse.EPayloadTooLarge, "Request body is larger than %d bytes", MaxBodyBytes)
		}
		return nil, gatehouse.Invalid("Could not read the request body")
	}
	if err := CheckText("request body", string(body)); err != nil {
		return nil, err
	}
	return body, nil
}

// CheckText returns an invalid_request error if s is not valid UTF-8 or
// contains a NUL byte.
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return gatehouse.Invalid("The %s is not valid UTF-8", what)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return gatehouse.Invalid("The %s contains a NUL byte", what)
	}
	return nil
}

// DecodeJSON decodes the request's JSON body into dst strictly: one JSON
// value, not null, no unknown fields or repeated keys, at most
// MaxBodyBytes, valid UTF-8, no NUL, no half of a UTF-16 pair escaped
// alone (gatehouse.LoneSurrogate). An empty body decodes as {} when
// allowEmpty is true.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, allowEmpty bool) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return gatehouse.Invalid("A JSON body is required")
	}
	if hasEscapedNUL(body) {
		return gatehouse.Invalid("The JSON body contains a NUL character")
	}
	if gatehouse.LoneSurrogate(body) {
		return gatehouse.Invalid("The JSON body holds a \\u escape of half a UTF-16 pair, which is no character")
	}
	if string(bytes.TrimSpace(body)) == "null" {
		// encoding/json decodes null into anything as "no change": a
		// request means an object, or no body where one is optional.
		return gatehouse.Invalid("The JSON body must be an object, not null")
	}
	return UnmarshalStrict(body, dst)
}

// hasEscapedNUL reports whether a JSON text holds the escape \u0000 (a NUL
// once decoded), telling an escape from an escaped backslash.
func hasEscapedNUL(body []byte) bool {
	for i := 0; i+6 <= len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if bytes.HasPrefix(body[i+1:], []byte("u0000")) {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}

// UnmarshalStrict decodes one JSON value from body into dst, refusing
// unknown fields, repeated keys (CheckDuplicateKeys) and trailing data.
func UnmarshalStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return gatehouse.Invalid("The JSON body has data after its end")
	}
	if _, err := dec.Token(); err != io.EOF {
		return gatehouse.Invalid("The JSON body has data after its end")
	}
	return CheckDuplicateKeys(body)
}

// CheckDuplicateKeys refuses a JSON text in which an object, at any depth,
// repeats a key: encoding/json would silently keep the last, while a proxy
// or a firewall in front may have read the first. Keys are compared as
// encoding/json matches them to fields, without regard to case ("roles"
// and "ROLES" are one key; see foldKey). body must be valid JSON (decode
// it first): the check reads it in one pass, byte by byte, taking a
// string followed by a colon for a key.
func CheckDuplicateKeys(body []byte) error {
	// One set of keys per open object or array, made at its first key
	// (an array's stays nil).
	var open []map[string]struct{}
	var folded []byte
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{', '[':
			open = append(open, nil)
		case '}', ']':
			if len(open) > 0 {
				open = open[:len(open)-1]
			}
		case '"':
			end, escaped := i+1, false
			for ; end < len(body) && body[end] != '"'; end++ {
				if body[end] == '\\' {
					end++
					escaped = true
				}
			}
			if end >= len(body) || len(open) == 0 || !followedByColon(body[end+1:]) {
				i = end
				continue
			}
			key := body[i+1 : end]
			if escaped {
				var k string
				if err := json.Unmarshal(body[i:end+1], &k); err != nil {
					return gatehouse.Invalid("Malformed JSON")
				}
				key = []byte(k)
			}
			folded = foldKey(folded[:0], key)
			top := &open[len(open)-1]
			if *top == nil {
				*top = map[string]struct{}{}
			}
			if _, seen := (*top)[string(folded)]; seen {
				return gatehouse.Invalid("The JSON body repeats the key %q", string(key))
			}
			(*top)[string(folded)] = struct{}{}
			i = end
		}
	}
	return nil
}

// followedByColon reports whether rest begins with a colon after any
// JSON white space.
func followedByColon(rest []byte) bool {
	for _, c := range rest {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == ':'
	}
	return false
}

// foldKey appends key to out as encoding/json folds a name to match it to
// a field: ASCII letters upper-cased, any other rune replaced by the
// smallest rune of its case-folding set (so 'ſ' is 'S', the Kelvin sign
// 'K').
func foldKey(out, key []byte) []byte {
	for i := 0; i < len(key); {
		if c := key[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(key[i:])
		for {
			f := unicode.SimpleFold(r)
			if f <= r {
				r = f
				break
			}
			r = f
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}

func jsonError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		own *gatehouse.Error
	)
	switch {
	case errors.As(err, &own):
		// A field's own decoding (an UnmarshalJSON) said what is wrong.
		return own
	case errors.As(err, &syn):
		return gatehouse.Invalid("Malformed JSON at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return gatehouse.Invalid("Field %q must be a JSON %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return gatehouse.Invalid("The JSON body has the wrong type")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return gatehouse.Invalid("Unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return gatehouse.Invalid("Malformed JSON: unexpected end of body")
	}
	return gatehouse.Invalid("Malformed JSON")
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "number"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	case "bool":
		return "boolean"
	}
	return k
}

// ParseForm reads an application/x-www-form-urlencoded body (and the query
// string) into r.Form with the same limits and checks as DecodeJSON.
func ParseForm(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseForm(); err != nil {
		return gatehouse.Invalid("Malformed form body")
	}
	for k, vs := range r.Form {
		if err := CheckText("form field name", k); err != nil {
			return err
		}
		for _, v := range vs {
			if err := CheckText("form field "+strconv.Quote(k), v); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsJSON reports whether the request declares a JSON body.
func IsJSON(r *http.Request) bool {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(r.Header.Get("Content-Type"), ";", 2)[0]))
	return ct == "application/json" || strings.HasSuffix(ct, "+json")
}

// Description returns msg in the characters RFC 6749 §5.2 allows in
// error_description (%x20-21 / %x23-5B / %x5D-7E): a double quote becomes
// a single one, a backslash a slash, anything else outside the set "?".
// Every error body goes through it, so no client library chokes on one.
func Description(msg string) string {
	b := make([]byte, 0, len(msg))
	for _, r := range msg {
		switch {
		case r == '"':
			b = append(b, '\'')
		case r == '\\':
			b = append(b, '/')
		case r == '…':
			b = append(b, "..."...)
		case r >= 0x20 && r <= 0x7e:
			b = append(b, byte(r))
		default:
			b = append(b, '?')
		}
	}
	return string(b)
}
