// Package api serves Gatehouse's JSON management and resource API under
// /v1. Handlers decode input strictly, call the service, and write JSON;
// every rule lives in the service.
package api

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

// API holds the handlers' dependencies.
type API struct {
	Service *service.Service
	Auth    *auth.Authenticator
}

// Register adds the API's routes to mux. Each authenticated route passes
// through the authenticator (and its rate limit).
func (a *API) Register(mux *http.ServeMux) {
	a.registerUsers(mux)
	a.registerWorkspaces(mux)
	a.registerAccounts(mux)
	a.registerAPIAccess(mux)
	a.registerCredentials(mux)
	a.registerAPITokens(mux)
}

// handle registers an authenticated JSON route.
func (a *API) handle(mux *http.ServeMux, pattern string, fn func(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error) {
	mux.Handle(pattern, a.Auth.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r, gatehouse.FromContext(r.Context())); err != nil {
			httpx.Error(w, r, err)
		}
	})))
}

// List is the shape of every list answer.
type List[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// page reads ?limit= (1–200, default 50) and ?cursor=.
func page(r *http.Request) (gatehouse.Page, error) {
	var p gatehouse.Page
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return p, gatehouse.Invalid("limit must be a whole number from 1 to 200")
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return p, gatehouse.Invalid("cursor is not one this server issued")
		}
		p.After = string(b)
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

// noContent answers 204.
func noContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }
