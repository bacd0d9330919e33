package oauth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// AuthorizationCodeGrant is the authorization_code grant of third-party
// applications (SPEC §10.3, RFC 6749 §4.1.3, RFC 7636 §4.5): code,
// redirect_uri and code_verifier, with client authentication by HTTP
// Basic or the body for confidential applications, client_id alone for
// public ones.
type AuthorizationCodeGrant struct {
	Service *service.Service
}

var _ Grant = (*AuthorizationCodeGrant)(nil)

// Token exchanges the code.
func (g *AuthorizationCodeGrant) Token(ctx context.Context, req *Request) (*service.Issued, error) {
	if req.ClientID == "" {
		return nil, gatehouse.Errorf(gatehouse.EInvalidClient, "Client authentication is required")
	}
	code := req.Get("code")
	if code == "" {
		return nil, gatehouse.Invalid("code is required")
	}
	return g.Service.CodeGrant(ctx, req.ClientID, req.ClientSecret, code, req.Get("redirect_uri"), req.Get("code_verifier"), req.Get("resource"))
}

// AuthorizePath is the authorization endpoint's path (SPEC §10.3).
const AuthorizePath = "/oauth/authorize"

// Authorize serves GET /oauth/authorize. A request naming an unknown
// client or a redirect URI the client did not register, or whose query is
// not input Gatehouse reads (httpx.CheckInput), gets an error page (400,
// plain text), never a redirect; any other is sent to the console's
// authorization page (consolePath) with its query unchanged, which signs
// the person in, checks the rest and asks for consent.
func Authorize(svc *service.Service, consolePath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The query is checked as the API's are (httpx.CheckInput): one
		// that does not parse, or holds NUL or invalid UTF-8, is the
		// client's error and never reaches the store.
		err := httpx.CheckInput(r)
		var q url.Values
		if err == nil {
			q, err = url.ParseQuery(r.URL.RawQuery)
		}
		if err == nil {
			for _, k := range []string{"client_id", "redirect_uri"} {
				if len(q[k]) > 1 {
					err = gatehouse.Invalid("The authorization request repeats %s", k)
				}
			}
		}
		if err == nil {
			_, err = svc.AuthClient(r.Context(), service.AuthRequest{ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri")})
		}
		if err != nil {
			msg := "The authorization request is malformed."
			if gatehouse.ErrorCode(err) == gatehouse.EInvalidRequest {
				msg = gatehouse.ErrorMessage(err)
			}
			status := http.StatusBadRequest
			if c := gatehouse.ErrorCode(err); c != gatehouse.EInvalidRequest && c != "" {
				status = httpx.Status(c)
			}
			httpx.Info(r.Context()).SetErrorCode(gatehouse.ErrorCode(err))
			// Plain text: nothing of the request is ever markup here.
			h.Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintf(w, "Authorization refused: %s\nThe application that sent you here is misconfigured; nothing was shared with it.\n", msg)
			return
		}
		target := consolePath
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}
