// Package api serves Gatehouse's JSON management and resource API under
// /v1. Handlers decode input strictly, call the service, and write JSON;
// every rule lives in the service.
package api

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// API holds the handlers' dependencies.
type API struct {
	Service *service.Service
	Admit   *admission.Admitter
	// Prefix goes in front of every route's path (the management prefix,
	// e.g. "/gatehouse"); empty serves the SPEC's paths.
	Prefix string
}

// handlerFunc is an authenticated JSON handler.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error

// route is one authenticated route and the scope a credential needs for it
// ("" for none: /v1/me answers whatever the credential).
type route struct {
	pattern string
	scope   gatehouse.Scope
	fn      handlerFunc
}

// routes is the one table of the API's routes and the scope each needs
// (SPEC §9.1). Who may do what beyond the scope is the service's rule.
func (a *API) routes() []route {
	const (
		wsR, wsW       = gatehouse.ScopeWorkspacesRead, gatehouse.ScopeWorkspacesWrite
		usersR, usersW = gatehouse.ScopeUsersRead, gatehouse.ScopeUsersWrite
		credR, credW   = gatehouse.ScopeCredentialsRead, gatehouse.ScopeCredentialsWrite
		setR, setW     = gatehouse.ScopeSettingsRead, gatehouse.ScopeSettingsWrite
		audit, accW    = gatehouse.ScopeAuditRead, gatehouse.ScopeAccountsWrite
		whR, whW       = gatehouse.ScopeWebhooksRead, gatehouse.ScopeWebhooksWrite
	)
	return []route{
		{"GET /v1/me", "", a.me},
		{"GET /v1/me/mfa", "", a.getMFA},
		{"POST /v1/me/mfa/totp", "", a.enrolTOTP},
		{"POST /v1/me/mfa/totp/confirm", "", a.confirmTOTP},
		{"DELETE /v1/me/mfa/totp", "", a.disableTOTP},
		{"GET /v1/me/mfa/passkeys", "", a.listPasskeys},
		{"POST /v1/me/mfa/passkeys/options", "", a.beginPasskey},
		{"POST /v1/me/mfa/passkeys", "", a.addPasskey},
		{"PATCH /v1/me/mfa/passkeys/{id}", "", a.renamePasskey},
		{"DELETE /v1/me/mfa/passkeys/{id}", "", a.removePasskey},
		{"GET /v1/me/sessions", "", a.mySessions},
		{"DELETE /v1/me/sessions/{id}", "", a.endMySession},
		{"GET /v1/users", usersR, a.listUsers},
		{"POST /v1/users", usersW, a.createUser},
		{"GET /v1/users/{id}", usersR, a.getUser},
		{"PATCH /v1/users/{id}", usersW, a.updateUser},
		{"DELETE /v1/users/{id}", usersW, a.deleteUser},
		{"DELETE /v1/users/{id}/throttle", usersW, a.clearThrottle},
		{"GET /v1/users/{id}/sessions", usersR, a.userSessions},
		{"DELETE /v1/users/{id}/sessions", usersW, a.endUserSessions},
		{"DELETE /v1/users/{id}/mfa", usersW, a.resetMFA},
		{"GET /v1/workspaces", wsR, a.listWorkspaces},
		{"POST /v1/workspaces", wsW, a.createWorkspace},
		{"GET /v1/workspaces/{id}", wsR, a.getWorkspace},
		{"DELETE /v1/workspaces/{id}", wsW, a.deleteWorkspace},
		{"GET /v1/workspaces/{id}/members", wsR, a.listMembers},
		{"PUT /v1/workspaces/{id}/members/{user_id}", wsW, a.addMember},
		{"DELETE /v1/workspaces/{id}/members/{user_id}", wsW, a.removeMember},
		{"GET /v1/metadata/workspace", wsR, a.workspaceMetadata},
		{"POST /v1/api-access", credW, a.enableAPIAccess},
		{"GET /v1/api-access", credR, a.getAPIAccess},
		{"PATCH /v1/api-access", credW, a.updateAPIAccess},
		{"DELETE /v1/api-access", credW, a.revokeAPIAccess},
		{"PUT /v1/developers/{user_id}", credW, a.addDeveloper},
		{"DELETE /v1/developers/{user_id}", credW, a.removeDeveloper},
		{"POST /v1/credentials", credW, a.createCredential},
		{"GET /v1/credentials", credR, a.listCredentials},
		{"PATCH /v1/credentials/{id}", credW, a.updateCredential},
		{"POST /v1/credentials/{id}/roll", credW, a.rollCredential},
		{"DELETE /v1/credentials/{id}", credW, a.deleteCredential},
		{"GET /v1/extensions", setR, a.getExtensions},
		{"PUT /v1/extensions/api_tokens", setW, a.setAPITokensExtension},
		{"POST /v1/api-tokens", credW, a.createAPIToken},
		{"GET /v1/api-tokens", credR, a.listAPITokens},
		{"PATCH /v1/api-tokens/{id}", credW, a.updateAPIToken},
		{"POST /v1/api-tokens/{id}/roll", credW, a.rollAPIToken},
		{"DELETE /v1/api-tokens/{id}", credW, a.deleteAPIToken},
		{"POST /v1/apps", credW, a.createApp},
		{"GET /v1/apps", credR, a.listApps},
		{"GET /v1/apps/{id}", credR, a.getApp},
		{"PATCH /v1/apps/{id}", credW, a.updateApp},
		{"POST /v1/apps/{id}/roll", credW, a.rollApp},
		{"DELETE /v1/apps/{id}", credW, a.deleteApp},
		{"PUT /v1/apps/{id}/approval", setW, a.approveApp},
		{"GET /v1/me/authorizations", "", a.listAuthorizations("")},
		{"DELETE /v1/me/authorizations/{client_id}", "", a.revokeAuthorization},
		{"GET /v1/users/{id}/authorizations", usersR, a.listAuthorizations("")},
		{"DELETE /v1/users/{id}/authorizations/{client_id}", usersW, a.revokeAuthorization},
		{"GET /v1/settings", setR, a.getSettings},
		{"PUT /v1/settings", setW, a.updateSettings},
		{"GET /v1/audit", audit, a.listAudit},
		{"GET /v1/usage", gatehouse.ScopeUsageRead, a.listUsage},
		{"POST /v1/accounts", accW, a.createAccount},
		{"GET /v1/accounts", accW, a.listAccounts},
		{"GET /v1/accounts/{id}", accW, a.getAccount},
		{"PATCH /v1/accounts/{id}", accW, a.updateAccount},
		{"DELETE /v1/accounts/{id}/users/{user_id}", accW, a.deleteAccountUser},
		{"GET /v1/webhooks", whR, a.listWebhooks},
		{"POST /v1/webhooks", whW, a.createWebhook},
		{"GET /v1/webhooks/{id}", whR, a.getWebhook},
		{"PATCH /v1/webhooks/{id}", whW, a.updateWebhook},
		{"DELETE /v1/webhooks/{id}", whW, a.deleteWebhook},
		{"POST /v1/webhooks/{id}/roll-secret", whW, a.rollWebhookSecret},
		{"POST /v1/webhooks/{id}/test", whW, a.testWebhook},
		{"GET /v1/webhooks/{id}/deliveries", whR, a.listDeliveries},
		{"POST /v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", whW, a.redeliver},
	}
}

// Route is one route of the API as the OpenAPI document describes it:
// its method, its path without the management prefix (with {name} for a
// path parameter), and the scope a credential needs ("" for none).
type Route struct {
	Method, Path string
	Scope        gatehouse.Scope
}

// Routes returns the route table (the one Register serves), for the
// OpenAPI document and the test that every route has its entry there.
func Routes() []Route {
	var out []Route
	for _, rt := range (&API{}).routes() {
		method, path, _ := strings.Cut(rt.pattern, " ")
		out = append(out, Route{Method: method, Path: path, Scope: rt.scope})
	}
	return out
}

// Register adds the API's routes to mux. Each checks its path and query
// (checked), then passes through the authenticator (and its rate limit),
// then the scope check.
func (a *API) Register(mux *http.ServeMux) {
	for _, rt := range a.routes() {
		mux.Handle(httpx.PrefixPattern(a.Prefix, rt.pattern), checked(a.Admit.Require(a.scoped(rt))))
	}
}

// checked refuses, with 400 invalid_request, a request whose path ids or
// query parameters are not text (httpx.CheckInput), or whose limit or
// cursor is not one this server issues (page): the one place the API
// checks them, before authentication and before anything else reads them.
func checked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := httpx.CheckInput(r)
		if err == nil {
			_, err = page(r)
		}
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// scoped answers a route after checking its scope: a credential without
// it is insufficient_scope when the principal's roles would allow the
// scope, forbidden when they would not (the role decides first).
func (a *API) scoped(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := gatehouse.FromContext(r.Context())
		if p == nil { // served outside httpx.Requests: fail closed
			httpx.Error(w, r, errors.New("api: a route served without an admitted principal"))
			return
		}
		if rt.scope != "" {
			if err := auth.RequireScope(w, p, rt.scope); err != nil {
				httpx.Error(w, r, err)
				return
			}
		}
		if err := rt.fn(w, r, p); err != nil {
			httpx.Error(w, r, err)
		}
	})
}

// List is the shape of every list answer. PrevCursor, on the lists that
// page both ways, asks for the page before this one.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
	PrevCursor string `json:"prev_cursor,omitempty"`
}

// beforeMark starts a cursor that asks for the page before an id; ids
// never start with it.
const beforeMark = "<"

// page reads ?limit= (1 to gatehouse.MaxPageSize, default
// gatehouse.DefaultPageSize) and ?cursor=.
func page(r *http.Request) (gatehouse.Page, error) {
	var p gatehouse.Page
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > gatehouse.MaxPageSize {
			return p, gatehouse.Invalid("limit must be a whole number from 1 to %d", gatehouse.MaxPageSize)
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 || httpx.CheckText("cursor", string(b)) != nil {
			return p, gatehouse.Invalid("cursor is not one this server issued")
		}
		if before, ok := strings.CutPrefix(string(b), beforeMark); ok {
			p.Before = before
		} else {
			p.After = string(b)
		}
	}
	return p, nil
}

// writeList writes a list answer with an opaque cursor for the next page.
func writeList[T any](w http.ResponseWriter, items []T, next string) {
	out := List[T]{Data: items}
	if out.Data == nil {
		out.Data = []T{}
	}
	if next != "" {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// writePage writes one page of a list that pages both ways.
func writePage[T any](w http.ResponseWriter, items []T, c gatehouse.Cursors) {
	out := List[T]{Data: items}
	if out.Data == nil {
		out.Data = []T{}
	}
	if c.Next != "" {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(c.Next))
	}
	if c.Prev != "" {
		out.PrevCursor = base64.RawURLEncoding.EncodeToString([]byte(beforeMark + c.Prev))
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// noContent answers 204.
func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
