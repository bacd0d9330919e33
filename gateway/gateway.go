// Package gateway puts Gatehouse in front of an API (SPEC §7): a
// forward-auth endpoint for nginx auth_request, Traefik ForwardAuth and
// Envoy ext_authz, and a reverse proxy that authenticates, rate-limits and
// forwards requests with identity headers instead of credentials.
package gateway

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
)

// Identity header names.
const (
	HeaderUserID     = "X-Gatehouse-User-Id"
	HeaderAccountID  = "X-Gatehouse-Account-Id"
	HeaderUserEmail  = "X-Gatehouse-User-Email"
	HeaderRoles      = "X-Gatehouse-Roles"
	HeaderAuthMethod = "X-Gatehouse-Auth-Method"
	identityPrefix   = "X-Gatehouse-"
)

// SetIdentity writes the principal's identity headers to h.
func SetIdentity(h http.Header, p *gatehouse.Principal) {
	h.Set(HeaderAccountID, p.AccountID)
	h.Set(HeaderRoles, p.Roles().String())
	h.Set(HeaderAuthMethod, string(p.Method))
	if p.User != nil {
		h.Set(HeaderUserID, p.User.ID)
		h.Set(HeaderUserEmail, p.User.Email)
	}
}

// Check serves GET /v1/auth/check: behind the authenticator (and its rate
// limit), it answers 200 with the identity headers; failures get the usual
// 401/403/422 answers from the authenticator.
func Check(w http.ResponseWriter, r *http.Request) {
	SetIdentity(w.Header(), gatehouse.FromContext(r.Context()))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// Proxy forwards authenticated requests to an upstream.
type Proxy struct {
	auth   *auth.Authenticator
	proxy  *httputil.ReverseProxy
	logger *slog.Logger
}

// NewProxy returns a proxy to upstream that authenticates (and
// rate-limits) with a.
func NewProxy(upstream *url.URL, a *auth.Authenticator, logger *slog.Logger) *Proxy {
	p := &Proxy{auth: a, logger: logger}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
			h := pr.Out.Header
			// Credentials never reach the upstream, nor any identity header
			// a client made up.
			h.Del("Authorization")
			h.Del(a.APITokenHeader)
			h.Del(a.UserEmailHeader)
			for name := range h {
				if strings.HasPrefix(name, identityPrefix) {
					delete(h, name)
				}
			}
			SetIdentity(h, gatehouse.FromContext(pr.In.Context()))
		},
		FlushInterval: -1, // stream answers as they come
		// Keep enough idle connections to the upstream for a busy API.
		Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
			ForceAttemptHTTP2: true, ResponseHeaderTimeout: 60 * time.Second,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			logger.Warn("upstream failed", "method", r.Method, "path", r.URL.Path, "err", err)
			httpx.Error(w, r, gatehouse.Errorf(gatehouse.EBadGateway, "The upstream service did not answer"))
		},
	}
	return p
}

// Handler returns the proxy behind authentication.
func (p *Proxy) Handler() http.Handler { return p.auth.Require(p.proxy) }
