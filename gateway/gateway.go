// Package gateway puts Gatehouse in front of an API (SPEC §7): a
// forward-auth endpoint for nginx auth_request, Traefik ForwardAuth and
// Envoy ext_authz, and a reverse proxy that authenticates, rate-limits and
// forwards requests with identity headers instead of credentials. Both
// enforce the route rules of --gateway-routes (Routes): the scopes a
// method and path need, or that they are public.
package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/tracing"
)

// Identity header names.
const (
	HeaderUserID     = "X-Gatehouse-User-Id"
	HeaderAccountID  = "X-Gatehouse-Account-Id"
	HeaderUserEmail  = "X-Gatehouse-User-Email"
	HeaderRoles      = "X-Gatehouse-Roles"
	HeaderAuthMethod = "X-Gatehouse-Auth-Method"
	// HeaderScopes carries what the request may do, space-separated: the
	// credential's scopes intersected with the roles' (SPEC §9.1).
	HeaderScopes = "X-Gatehouse-Scopes"
	// HeaderExternalID carries the external id of the credential, or of
	// its user when the credential has none (SPEC §10.5); absent when
	// neither has one.
	HeaderExternalID = "X-Gatehouse-External-Id"
	identityPrefix   = "X-Gatehouse-"
)

// SetIdentity writes the principal's identity headers to h (whose other
// values of these names it replaces). One array holds the values; each
// header gets a slice of it that cannot grow into the next.
func SetIdentity(h http.Header, p *gatehouse.Principal) {
	v := [...]string{p.AccountID, p.RolesText(), string(p.Method), p.EffectiveScopesText(), "", ""}
	n := 4
	if p.User != nil {
		v[4], v[5], n = p.User.ID, p.User.Email, 6
	}
	vs := v[:n]
	h[HeaderAccountID] = vs[0:1:1]
	h[HeaderRoles] = vs[1:2:2]
	h[HeaderAuthMethod] = vs[2:3:3]
	h[HeaderScopes] = vs[3:4:4]
	if n == 6 {
		h[HeaderUserID] = vs[4:5:5]
		h[HeaderUserEmail] = vs[5:6:6]
	}
	if p.ExternalID != "" {
		h[HeaderExternalID] = []string{p.ExternalID}
	} else {
		delete(h, HeaderExternalID)
	}
}

// ForwardAuth returns the handler of GET /v1/auth/check. It decides about
// the original request the way the gateway does (admit): 200 with the
// identity headers, or the authenticator's 401/403/422 answers. It reads
// the original request from OriginalRequest and refuses, with
// invalid_request, one that Canonical refuses and a check that carries a
// client's X-Gatehouse-* header (IsIdentityHeader), which the proxy would
// otherwise pass on to the API. With routes, the original request's rule
// applies (the default when the proxy names none), and a public route is
// answered 200 without looking at credentials or adding identity headers.
// It serves no one resource: a token bound to one (RFC 8707) is taken as
// any other token of its user.
func ForwardAuth(a *admission.Admitter, routes *Routes) http.Handler {
	return forwardAuth(a, routes, byHeaders)
}

// forwardAuth is ForwardAuth with the original request read by original.
func forwardAuth(a *admission.Admitter, routes *Routes, original originalFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rule, err := checkedRule(r, routes, original)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		if !rule.Public {
			p, err := admitFor(a, w, r, rule, admission.AnyResource)
			if err != nil {
				httpx.Error(w, r, err)
				return
			}
			SetIdentity(w.Header(), p)
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	})
}

// ExtAuthzPath is the path under which ExtAuthz takes checks: Envoy's
// HTTP ext_authz sends the original request's method, and its path after
// path_prefix (set to this).
const ExtAuthzPath = "/v1/auth/check"

// ExtAuthz returns the handler of any method on ExtAuthzPath + "/{path…}":
// ForwardAuth for a proxy that names the original request by the check's
// own method and the path after ExtAuthzPath (Envoy's HTTP ext_authz).
// A check that also names one by headers (OriginalRequest) is refused.
func ExtAuthz(a *admission.Admitter, routes *Routes) http.Handler {
	return forwardAuth(a, routes, func(r *http.Request) (string, string, bool, error) {
		if _, u, err := OriginalRequest(r.Header); err != nil || u != nil {
			return "", "", false, gatehouse.Invalid("A check under %s/ names the request by its method and path, not by headers", ExtAuthzPath)
		}
		escaped := r.URL.EscapedPath()
		i := strings.Index(escaped, ExtAuthzPath+"/")
		if i < 0 {
			return "", "", false, gatehouse.Invalid("The check's path does not hold the request's")
		}
		return r.Method, escaped[i+len(ExtAuthzPath):], true, nil
	})
}

// checkedRule returns the rule of the original request a forward-auth
// check names (see ForwardAuth).
func checkedRule(r *http.Request, routes *Routes, original originalFunc) (Rule, error) {
	for name := range r.Header {
		if IsIdentityHeader(name) {
			return Rule{}, gatehouse.Invalid("The request carries a %s header; X-Gatehouse-* headers are Gatehouse's to send", name)
		}
	}
	method, escaped, named, err := original(r)
	if err != nil {
		return Rule{}, err
	}
	if !named {
		return routes.Default(), nil
	}
	t, err := Canonical(method, escaped, r.Header)
	if err != nil {
		return Rule{}, err
	}
	return routes.Match(t), nil
}

// originalFunc returns the method and escaped path of the request a
// forward-auth check is about; named is false when the check names none.
type originalFunc func(r *http.Request) (method, escaped string, named bool, err error)

// byHeaders is the originalFunc of GET /v1/auth/check: OriginalRequest.
func byHeaders(r *http.Request) (string, string, bool, error) {
	method, u, err := OriginalRequest(r.Header)
	if err != nil || u == nil {
		return "", "", false, err
	}
	return method, u.EscapedPath(), true, nil
}

// The headers through which a forward-auth proxy names the original
// request: nginx auth_request configurations set the first pair, Traefik
// ForwardAuth sends the second.
const (
	HeaderOriginalMethod  = "X-Original-Method"
	HeaderOriginalURI     = "X-Original-URI"
	HeaderForwardedMethod = "X-Forwarded-Method"
	HeaderForwardedURI    = "X-Forwarded-Uri"
)

// OriginalRequest returns the method and URL of the request a forward-auth
// proxy asks about (as sent: check them with Canonical), from X-Original-Method and X-Original-URI or
// X-Forwarded-Method and X-Forwarded-Uri; a nil URL when neither URI
// header is present. It returns invalid_request for a URI without its
// method, a repeated or malformed header, and for both pairs naming
// different requests: a proxy overwrites its own pair, so a client could
// otherwise choose the route with the other.
func OriginalRequest(h http.Header) (method string, u *url.URL, err error) {
	var first string
	for _, pair := range [][2]string{{HeaderOriginalMethod, HeaderOriginalURI}, {HeaderForwardedMethod, HeaderForwardedURI}} {
		m, uri, err := originalPair(h, pair[0], pair[1])
		switch {
		case err != nil:
			return "", nil, err
		case uri == "":
			continue
		case u != nil && (m != method || uri != first):
			return "", nil, gatehouse.Invalid("%s and %s name another request than %s and %s",
				pair[0], pair[1], HeaderOriginalMethod, HeaderOriginalURI)
		case u != nil:
			continue
		}
		if u, err = url.ParseRequestURI(uri); err != nil {
			return "", nil, gatehouse.Invalid("The %s header is not a request URI", pair[1])
		}
		method, first = m, uri
	}
	return method, u, nil
}

// originalPair reads one pair of original-request headers; uri is ""
// when the URI header is absent.
func originalPair(h http.Header, methodName, uriName string) (method, uri string, err error) {
	if uri, err = httpx.SingleHeader(h, uriName); err != nil || uri == "" {
		return "", "", err
	}
	if method, err = httpx.SingleHeader(h, methodName); err != nil {
		return "", "", err
	}
	if method == "" {
		return "", "", gatehouse.Invalid("The %s header comes with %s, which is missing", uriName, methodName)
	}
	if !validMethod(method) {
		return "", "", gatehouse.Invalid("The %s header is not a method", methodName)
	}
	return method, uri, nil
}

// validMethod reports whether m is an HTTP method: a token (RFC 9110 §5.6.2).
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return m != ""
}

// admitFor is admit for a request to resource (a gatehouse.ResourceKey,
// or admission.AnyResource): a token bound to another resource (RFC 8707)
// is refused with invalid_token before the rate limit is charged
// (admission.Admitter.AdmitFor); a token bound to none is taken as before.
func admitFor(a *admission.Admitter, w http.ResponseWriter, r *http.Request, rule Rule, resource string) (*gatehouse.Principal, error) {
	if rule.Scopes == nil {
		return a.AdmitFor(w, r, resource, nil)
	}
	return a.AdmitFor(w, r, resource, func(w http.ResponseWriter, _ *http.Request, p *gatehouse.Principal) error {
		return auth.RequireScopes(w, p, rule.Scopes)
	})
}

// IsIdentityHeader reports whether a request header's name is one only
// Gatehouse may send upstream: it starts with "X-Gatehouse-" when case is
// ignored and "_" is read as "-". (CGI, WSGI, PHP and many frameworks read
// X_Gatehouse_Roles and x-gatehouse-roles as the same HTTP_X_GATEHOUSE_ROLES.)
func IsIdentityHeader(name string) bool {
	if len(name) < len(identityPrefix) {
		return false
	}
	for i := 0; i < len(identityPrefix); i++ {
		c := name[i]
		if c == '_' {
			c = '-'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		want := identityPrefix[i]
		if 'A' <= want && want <= 'Z' {
			want += 'a' - 'A'
		}
		if c != want {
			return false
		}
	}
	return true
}

// StripClientHeaders removes from h every header through which a client
// could pose as Gatehouse: any name IsIdentityHeader reports, and any name
// the client's Connection header lists (connection holds its values).
func StripClientHeaders(h http.Header, connection []string) {
	for _, v := range connection {
		for _, listed := range strings.Split(v, ",") {
			if listed = strings.TrimSpace(listed); listed == "" {
				continue
			}
			for name := range h {
				if strings.EqualFold(name, listed) {
					delete(h, name)
				}
			}
		}
	}
	for name := range h {
		if IsIdentityHeader(name) {
			delete(h, name)
		}
	}
}

// Config is what a Proxy needs.
type Config struct {
	// Upstream is where authenticated requests go.
	Upstream *url.URL
	// Admit authenticates and charges every request.
	Admit *admission.Admitter
	// ReadIdle and WriteIdle replace the server's whole-request read and
	// write timeouts for proxied requests: each read of the request body
	// must finish within ReadIdle and each write of the answer within
	// WriteIdle, however long the whole exchange lasts. Zero means no bound.
	ReadIdle, WriteIdle time.Duration
	// Routes are the route rules checked before proxying; nil: every
	// request needs authentication and nothing more.
	Routes *Routes
	// Timeout bounds a proxied exchange from the moment it is admitted to
	// its last byte, reading a slow request body included (SPEC §10.8,
	// --proxy-timeout): when it passes, the upstream request is cancelled
	// and the client gets 504 gateway_timeout (or, once the answer has
	// begun, a cut connection). Zero means no bound.
	Timeout time.Duration
	// Resource is the gateway's own resource (RFC 8707, RFC 9728): its
	// protected-resource metadata, and the resource_metadata its 401s
	// name; tokens bound to another resource are refused. Nil: tokens
	// are not checked for a resource and 401s name no metadata.
	Resource *Resource
}

// Proxy forwards authenticated requests to an upstream.
type Proxy struct {
	auth                *admission.Admitter
	routes              *Routes
	proxy               *httputil.ReverseProxy
	readIdle, writeIdle time.Duration
	timeout             time.Duration
	resource            *Resource
}

// NewProxy returns a proxy to cfg.Upstream that authenticates (and
// rate-limits) with cfg.Admit under cfg.Routes.
func NewProxy(cfg Config) *Proxy {
	a := cfg.Admit
	limitHeaders := a.Headers()
	p := &Proxy{auth: a, routes: cfg.Routes, readIdle: cfg.ReadIdle, writeIdle: cfg.WriteIdle, timeout: cfg.Timeout, resource: cfg.Resource}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(cfg.Upstream)
			h := pr.Out.Header
			// Credentials never reach the upstream, nor any identity header
			// a client made up; a public route's request has no identity.
			h.Del("Authorization")
			h.Del(a.Auth().APITokenHeader())
			h.Del(a.Auth().UserEmailHeader())
			StripClientHeaders(h, pr.In.Header["Connection"])
			// Then, so that no Connection header removes them: behind
			// trusted proxies, pass their chain on and add the peer;
			// X-Real-Ip is the client Gatehouse worked out, whatever the
			// client sent, and a client's True-Client-Ip goes no further.
			if chain := httpx.ForwardedFor(pr.In); chain != nil {
				h["X-Forwarded-For"] = chain
			}
			pr.SetXForwarded()
			if httpx.IsHTTPS(pr.In) {
				h.Set("X-Forwarded-Proto", "https")
			}
			h.Set("X-Real-Ip", httpx.ClientAddr(pr.In))
			// The method and path the upstream sees are the ones the rules
			// saw, and what the gateway decided (the client's address and
			// scheme, the host, the request id) comes in no other
			// spelling: a client's True-Client-Ip goes no further either.
			for name := range h {
				if IsMethodOverride(name) || IsProxyDecided(name) {
					delete(h, name)
				}
			}
			if who := gatehouse.FromContext(pr.In.Context()); who != nil {
				SetIdentity(h, who)
			}
			h.Set(httpx.RequestIDHeader, httpx.RequestID(pr.In.Context()))
		},
		ModifyResponse: func(res *http.Response) error {
			// The answer carries Gatehouse's request id, already set, and,
			// for an admitted request, Gatehouse's rate-limit headers: the
			// upstream's own would stand beside them as second values
			// (its Retry-After, which Gatehouse sets only on a refusal,
			// stays).
			res.Header.Del(httpx.RequestIDHeader)
			if gatehouse.FromContext(res.Request.Context()) != nil {
				limitHeaders.Strip(res.Header)
			}
			stripOwnCookies(res.Header)
			return nil
		},
		FlushInterval: -1, // stream answers as they come
		// Keep enough idle connections to the upstream for a busy API.
		// Under a traced request the upstream call is a span of its own and
		// the upstream gets its traceparent.
		Transport: tracing.Transport(&http.Transport{
			Proxy: nil, MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			ForceAttemptHTTP2: true, ResponseHeaderTimeout: 60 * time.Second,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		}),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The exchange ran out of its time, whichever read or write
			// noticed first: the context, the connection's deadline, or the
			// request body cut at it.
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || pastDeadline(r.Context()) {
				gatehouse.Logger(r.Context()).WarnContext(r.Context(), "proxied request cut at the proxy timeout", "method", r.Method, "path", r.URL.Path)
				w.Header().Set("Connection", "close")
				httpx.Error(w, r, gatehouse.Errorf(gatehouse.EGatewayTimeout, "The request took longer than the gateway allows"))
				return
			}
			// The client's side failed: it went away, or sent a body
			// that is not HTTP. Neither is the upstream's failure.
			if clientFailed(w, r) {
				return
			}
			gatehouse.Logger(r.Context()).WarnContext(r.Context(), "upstream failed", "method", r.Method, "path", r.URL.Path, "err", err)
			httpx.Error(w, r, gatehouse.Errorf(gatehouse.EBadGateway, "The upstream service did not answer"))
		},
	}
	return p
}

// Handler returns the proxy behind its route rules. A request Canonical
// refuses is answered 400; a public route's request is proxied as it is,
// without authentication or rate limit; every other request is admitted
// (admit) for its rule first. A proxied exchange lasts at most the
// configured Timeout, slow request bodies included.
func (p *Proxy) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := Canonical(r.Method, r.URL.EscapedPath(), r.Header)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		if rule := p.routes.Match(t); !rule.Public {
			pr, err := admitFor(p.auth, w, r, rule, p.resource.key())
			if err != nil {
				p.resource.challenge(w, err)
				httpx.Error(w, r, err)
				return
			}
			httpx.Admitted(r.Context(), pr)
		}
		var end time.Time
		if p.timeout > 0 {
			end = time.Now().Add(p.timeout)
			ctx, cancel := context.WithDeadline(r.Context(), end)
			defer cancel()
			r = r.WithContext(ctx)
		}
		d := newDeadlines(w, p.readIdle, p.writeIdle, end)
		defer d.finish()
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &deadlineBody{ReadCloser: r.Body, d: d}
			// The error handler learns from it how the body ended.
			r = r.WithContext(context.WithValue(r.Context(), deadlinesKey{}, d))
		}
		p.proxy.ServeHTTP(&deadlineWriter{ResponseWriter: w, d: d}, r)
	})
}

// deadlinesKey is the context key of a proxied request's deadlines, when
// it has a body.
type deadlinesKey struct{}

// clientFailed answers a proxied exchange that failed on the client's
// side, and reports whether it did: a client gone (its request canceled,
// or its body cut off) is recorded as 499, a body that is not HTTP (a
// malformed chunk) is 400 invalid_request.
func clientFailed(w http.ResponseWriter, r *http.Request) bool {
	var bodyErr error
	if d, ok := r.Context().Value(deadlinesKey{}).(*deadlines); ok {
		bodyErr = d.bodyFailed()
	}
	switch {
	case errors.Is(r.Context().Err(), context.Canceled) || errors.Is(bodyErr, io.ErrUnexpectedEOF) ||
		errors.Is(bodyErr, net.ErrClosed) || errors.Is(bodyErr, syscall.ECONNRESET):
		httpx.ClientClosed(w, r)
	case bodyErr != nil:
		httpx.Error(w, r, gatehouse.Errorf(gatehouse.EInvalidRequest, "Could not read the request body"))
	default:
		return false
	}
	return true
}

// pastDeadline reports whether ctx has a deadline (the proxy timeout's)
// and it has passed, whether or not its timer has fired yet.
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// stripOwnCookies removes from an upstream answer every Set-Cookie for a
// cookie named like Gatehouse's own (httpx.IsGatehouseCookie), so that
// the API cannot plant or replace the console's session or its CSRF
// cookies.
func stripOwnCookies(h http.Header) {
	cs := h["Set-Cookie"]
	if len(cs) == 0 {
		return
	}
	kept := make([]string, 0, len(cs))
	for _, c := range cs {
		name, _, _ := strings.Cut(c, "=")
		if !httpx.IsGatehouseCookie(strings.TrimSpace(name)) {
			kept = append(kept, c)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
