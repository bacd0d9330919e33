package gateway

import (
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// Target is a request as the route rules see it (SPEC §10.8, "one path,
// one rule"): a method and a path that every server behind reads the same
// way. Make one with Canonical.
type Target struct {
	// Methods are the request's method, then the method of every
	// method-override header it carries (upper-cased), which some
	// frameworks obey instead.
	Methods []string
	// Path is the percent-decoded path: it starts with "/", holds valid
	// UTF-8, no dot segment and no empty segment (but a final one: a
	// trailing slash).
	Path string
}

// maxOverrides is how many methods, beside the request's own, the
// method-override headers of one request may name (distinct ones).
const maxOverrides = 3

// Canonical returns the target of a request of method to the escaped path
// (as sent, url.URL.EscapedPath), with the method-override headers of h.
// It refuses with invalid_request, naming the reason, whatever servers
// behind Gatehouse could read as another request: a method that is not
// an upper-case token (RFC 9110 §9.1: methods are case-sensitive), a path
// that does not start with "/", an encoded "/", "\", "%" (double
// encoding), "?", "#" or ";", a raw "\" or ";" (path parameters), a
// control character, a malformed escape, an encoding that is not UTF-8
// (overlong forms such as %c0%ae included), a dot segment ("." or "..",
// encoded or not) and an empty segment ("//"), and a method-override
// header whose value is not a method.
func Canonical(method, escaped string, h http.Header) (Target, error) {
	if !upperToken(method) {
		return Target{}, gatehouse.Invalid("The method must be an upper-case token such as GET or POST")
	}
	t := Target{Methods: []string{method}}
	for name, vs := range h {
		if !IsMethodOverride(name) {
			continue
		}
		for _, v := range vs {
			m := strings.ToUpper(strings.TrimSpace(v))
			if !upperToken(m) {
				return Target{}, gatehouse.Invalid("The %s header is not a method", name)
			}
			if slices.Contains(t.Methods, m) {
				continue
			}
			if len(t.Methods) > maxOverrides {
				// Each method is matched against the rules: their number
				// must not grow with the request.
				return Target{}, gatehouse.Invalid("A request names at most %d methods in its method-override headers", maxOverrides)
			}
			t.Methods = append(t.Methods, m)
		}
	}
	p, err := canonicalPath(escaped)
	if err != nil {
		return Target{}, err
	}
	t.Path = p
	return t, nil
}

// canonicalPath decodes and checks an escaped path (see Canonical).
func canonicalPath(escaped string) (string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return "", gatehouse.Invalid("The path must start with /")
	}
	// The common case: nothing to decode, nothing to check but segments.
	plain := true
	for i := 0; i < len(escaped); i++ {
		if c := escaped[i]; c == '%' || c == '\\' || c == ';' || c < 0x21 || c >= 0x7f {
			plain = false
			break
		}
	}
	decoded := escaped
	if !plain {
		var b strings.Builder
		b.Grow(len(escaped))
		for i := 0; i < len(escaped); i++ {
			c := escaped[i]
			switch {
			case c == '%':
				if i+2 >= len(escaped) {
					return "", gatehouse.Invalid("The path holds a malformed percent-encoding")
				}
				d, ok := unhex2(escaped[i+1], escaped[i+2])
				if !ok {
					return "", gatehouse.Invalid("The path holds a malformed percent-encoding")
				}
				switch {
				case d == '/' || d == '\\' || d == '%' || d == '?' || d == '#':
					return "", gatehouse.Invalid("The path holds an encoded %q, which servers read differently", string(rune(d)))
				case d == ';':
					return "", gatehouse.Invalid("The path holds an encoded ;, a path parameter to some servers")
				case d < 0x20 || d == 0x7f:
					return "", gatehouse.Invalid("The path holds a control character")
				}
				b.WriteByte(d)
				i += 2
			case c == '\\':
				return "", gatehouse.Invalid(`The path holds a \, which some servers read as /`)
			case c == ';':
				return "", gatehouse.Invalid("The path holds a ; (path parameters are not allowed)")
			case c < 0x21 || c == 0x7f:
				return "", gatehouse.Invalid("The path holds a control character or space")
			default:
				b.WriteByte(c)
			}
		}
		decoded = b.String()
		if !utf8.ValidString(decoded) {
			return "", gatehouse.Invalid("The path is not valid UTF-8 once decoded (overlong encodings included)")
		}
	}
	rest := decoded[1:]
	for rest != "" {
		seg, more, found := strings.Cut(rest, "/")
		switch {
		case seg == "." || seg == "..":
			return "", gatehouse.Invalid("The path holds a dot segment (. or ..)")
		case seg == "" && found:
			return "", gatehouse.Invalid("The path holds an empty segment (//)")
		}
		rest = more
	}
	return decoded, nil
}

// upperToken reports whether m is a method as Gatehouse accepts it: a
// token (RFC 9110 §5.6.2) without lower-case letters.
func upperToken(m string) bool {
	if !validMethod(m) {
		return false
	}
	for i := 0; i < len(m); i++ {
		if 'a' <= m[i] && m[i] <= 'z' {
			return false
		}
	}
	return true
}

// methodOverrides are the headers through which frameworks let a request
// name another method than its own (Symfony, Laravel, Express's
// method-override, Spring, ASP.NET, Google APIs), as IsMethodOverride
// compares them.
var methodOverrides = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// IsMethodOverride reports whether a header name is one of the
// method-override headers, in any case and with "_" for "-" (the spelling
// CGI and WSGI read as the same header).
func IsMethodOverride(name string) bool {
	if len(name) < len("x-http-method") || len(name) > len("x-http-method-override") {
		return false
	}
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	for _, o := range methodOverrides {
		if n == o {
			return true
		}
	}
	return false
}

// proxyDecided are the headers whose value the gateway decides for the
// upstream — the client's address and scheme, the host, the request id —
// and the path-override headers (IIS's, Symfony's), through which an
// upstream would route by another path than the one the rules saw.
var proxyDecided = []string{"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix", "forwarded",
	"x-real-ip", "true-client-ip", "x-request-id", "x-original-url", "x-rewrite-url"}

// IsProxyDecided reports whether a header name, in a request a client
// sent, is one the gateway removes before it sets its own: a spelling of
// one of proxyDecided with "_" for "-" (CGI, WSGI, PHP and Rack read
// X_Real_Ip as X-Real-Ip, and some merge the two), or one of those the
// gateway never passes on (True-Client-Ip, the path overrides,
// X-Forwarded-Prefix) in any spelling.
func IsProxyDecided(name string) bool {
	if len(name) < len("forwarded") || len(name) > len("x-forwarded-prefix") {
		return false
	}
	n := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
	switch n {
	case "true-client-ip", "x-original-url", "x-rewrite-url", "x-forwarded-prefix":
		return true
	}
	return strings.Contains(name, "_") && slices.Contains(proxyDecided, n)
}

// Canonicalize refuses, with 400 invalid_request, every request whose
// method or path Canonical refuses, and passes the others to next. The
// server puts it in front of everything when the gateway is on, so that
// no spelling reaches Gatehouse's routes or the upstream ambiguously.
func Canonicalize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := Canonical(r.Method, r.URL.EscapedPath(), nil); err != nil {
			httpx.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
