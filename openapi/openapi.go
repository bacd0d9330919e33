// Package openapi builds Gatehouse's OpenAPI 3.1 document, served at
// GET /openapi.json.
//
// The paths, request and response schemas are written by hand in
// openapi.yaml (embedded). What the code knows is not repeated there: Build
// takes each management route's scope from the API's route table
// (api.Routes) and writes it as the operation's x-gatehouse-scope and its
// OAuth 2.0 security requirement; it adds the path parameters, the error
// answers every authenticated route can give, the servers (the public URL
// and the management prefix) and the header names the server is configured
// with. A route of the table without an operation in openapi.yaml is
// reported by Build (and fails this package's tests).
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/httpx"
)

//go:embed openapi.yaml
var source []byte

// Options are the server's settings the document depends on.
type Options struct {
	// Issuer is the origin clients reach Gatehouse at (the public URL, or
	// the one built from the listen address).
	Issuer string
	// Prefix is the management prefix ("" for none): the management API
	// and /v1/auth/check sit under it, the OAuth endpoints and the health
	// checks do not.
	Prefix string
	// APITokenHeader and UserEmailHeader are the names of the API-token
	// and act-as headers; empty means X-API-Token and X-User-Email.
	APITokenHeader, UserEmailHeader string
	// RateLimitStatus is the status of a rate-limit refusal; 0 means 422.
	RateLimitStatus int
}

// Extension names Gatehouse adds to operations.
const (
	// ExtScope is the scope an operation needs, when it needs one.
	ExtScope = "x-gatehouse-scope"
	// ExtErrors lists, per operation, the error codes it can answer. In
	// openapi.yaml it names the codes particular to the operation; Build
	// adds the ones every authenticated route shares.
	ExtErrors = "x-gatehouse-errors"
	// extAuth marks an operation of openapi.yaml that is authenticated
	// but not in the API's route table (e.g. /v1/auth/check).
	extAuth = "x-gatehouse-authenticated"
	// extRootServer marks a path served outside the management prefix.
	extRootServer = "x-gatehouse-root"
	// extPublic marks an operation of openapi.yaml under the management
	// prefix that takes no credential and is not in the API's route
	// table (e.g. /v1/credentials/revoke).
	extPublic = "x-gatehouse-public"
)

// Security scheme names.
const (
	SchemeBearer   = "bearer"
	SchemeOAuth    = "oauth2"
	SchemeAPIToken = "apiToken"
	SchemeActAs    = "actAs"
)

// authErrors are the codes every authenticated route can answer: its
// input, its credential, its scope, the rate limit, an outage, a bug.
var authErrors = []string{
	gatehouse.EInvalidRequest, gatehouse.EUnauthorized, gatehouse.EInvalidToken,
	gatehouse.EForbidden, gatehouse.EInvalidUser, gatehouse.EInsufficientScope,
	gatehouse.ERateLimitExceeded, gatehouse.EUnavailable, gatehouse.EInternal, gatehouse.EIPNotAllowed,
	gatehouse.EQuotaExceeded,
}

// bodyErrors are the codes a route taking a body can answer besides.
var bodyErrors = []string{gatehouse.EPayloadTooLarge}

var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Build returns the document as JSON for routes (the API's route table,
// normally api.Routes()) and opts. missing lists the routes of the table
// without an operation in openapi.yaml, and the operations of openapi.yaml
// under /v1 that no route serves (they are left out of the document); an
// error means openapi.yaml itself is broken.
func Build(routes []api.Route, opts Options) (doc []byte, missing []string, err error) {
	var d map[string]any
	if err := yaml.Unmarshal(source, &d); err != nil {
		return nil, nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	paths, _ := d["paths"].(map[string]any)
	if paths == nil {
		return nil, nil, fmt.Errorf("openapi.yaml: no paths")
	}
	if opts.APITokenHeader == "" {
		opts.APITokenHeader = "X-API-Token"
	}
	if opts.UserEmailHeader == "" {
		opts.UserEmailHeader = "X-User-Email"
	}
	if opts.RateLimitStatus == 0 {
		opts.RateLimitStatus = http.StatusUnprocessableEntity
	}

	served := map[string]bool{}
	for _, rt := range routes {
		key := strings.ToLower(rt.Method) + " " + rt.Path
		served[key] = true
		op := operation(paths, rt.Path, rt.Method)
		if op == nil {
			missing = append(missing, "no operation in openapi.yaml for route "+rt.Method+" "+rt.Path)
			continue
		}
		secure(op, rt.Scope, true)
	}
	for _, path := range slices.Sorted(maps.Keys(paths)) {
		item, _ := paths[path].(map[string]any)
		root := item[extRootServer] == true
		delete(item, extRootServer)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			switch {
			case op[extAuth] == true:
				delete(op, extAuth)
				secure(op, "", false)
			case op[extPublic] == true:
				delete(op, extPublic)
			case !root && !served[m+" "+path]:
				missing = append(missing, "operation "+strings.ToUpper(m)+" "+path+" in openapi.yaml is no route of the API")
				delete(item, m)
				continue
			}
			if err := addErrors(op, opts.RateLimitStatus); err != nil {
				return nil, nil, fmt.Errorf("openapi.yaml: %s %s: %w", m, path, err)
			}
		}
		addPathParams(item, path)
		if root {
			item["servers"] = []any{map[string]any{"url": opts.Issuer}}
		}
	}
	if tok, ok := paths["/oauth/token"]; ok {
		// The same endpoint, also served under /v1.
		b, _ := json.Marshal(tok)
		var alias map[string]any
		_ = json.Unmarshal(b, &alias)
		if post, ok := alias["post"].(map[string]any); ok {
			post["operationId"] = "tokenV1"
		}
		paths["/v1/oauth/token"] = alias
	}

	d["servers"] = []any{map[string]any{"url": opts.Issuer + opts.Prefix,
		"description": "the management API (under the management prefix, if any)"}}
	comp, _ := d["components"].(map[string]any)
	schemes, _ := comp["securitySchemes"].(map[string]any)
	if schemes == nil {
		return nil, nil, fmt.Errorf("openapi.yaml: no components.securitySchemes")
	}
	setIn(schemes, SchemeAPIToken, "name", opts.APITokenHeader)
	setIn(schemes, SchemeActAs, "name", opts.UserEmailHeader)
	scopes := map[string]any{}
	for _, s := range gatehouse.BuiltinScopes {
		scopes[string(s)] = "Gatehouse's " + strings.Replace(string(s), ":", " ", 1)
	}
	flows := map[string]any{}
	for name, f := range map[string]map[string]any{
		"clientCredentials": {"tokenUrl": opts.Issuer + "/oauth/token"},
		"password":          {"tokenUrl": opts.Issuer + "/oauth/token"},
	} {
		f["refreshUrl"] = opts.Issuer + "/oauth/token"
		f["scopes"] = scopes
		flows[name] = f
	}
	setIn(schemes, SchemeOAuth, "flows", flows)

	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	return append(out, '\n'), missing, nil
}

// operation returns the operation of method on path, nil when there is none.
func operation(paths map[string]any, path, method string) map[string]any {
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// secure writes op's security: a bearer token, an OAuth 2.0 token with
// scope, an API token (alone or acting as a user). inTable says the scope
// comes from the route table.
func secure(op map[string]any, scope gatehouse.Scope, inTable bool) {
	var oauthScopes []any = []any{}
	if scope != "" {
		op[ExtScope] = string(scope)
		oauthScopes = []any{string(scope)}
	} else if inTable {
		delete(op, ExtScope)
	}
	op["security"] = []any{
		map[string]any{SchemeBearer: []any{}},
		map[string]any{SchemeOAuth: oauthScopes},
		map[string]any{SchemeAPIToken: []any{}},
		map[string]any{SchemeAPIToken: []any{}, SchemeActAs: []any{}},
	}
	errs := codes(op[ExtErrors])
	errs = append(errs, authErrors...)
	if op["requestBody"] != nil {
		errs = append(errs, bodyErrors...)
	}
	op[ExtErrors] = errs
}

// codes reads an x-gatehouse-errors list.
func codes(v any) []string {
	if l, ok := v.([]string); ok {
		return slices.Clone(l)
	}
	l, _ := v.([]any)
	var out []string
	for _, c := range l {
		if s, ok := c.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// addErrors writes op's error answers from its x-gatehouse-errors: one
// response per status, whose body is the error body with the codes of that
// status.
func addErrors(op map[string]any, rateLimitStatus int) error {
	errs := codes(op[ExtErrors])
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs)
	errs = slices.Compact(errs)
	op[ExtErrors] = errs
	byStatus := map[int][]any{}
	for _, c := range errs {
		if !knownCode(c) {
			return fmt.Errorf("unknown error code %q", c)
		}
		st := httpx.Status(c)
		if c == gatehouse.ERateLimitExceeded || c == gatehouse.EQuotaExceeded {
			st = rateLimitStatus
		}
		byStatus[st] = append(byStatus[st], c)
	}
	responses, _ := op["responses"].(map[string]any)
	if responses == nil {
		responses = map[string]any{}
		op["responses"] = responses
	}
	for st, cs := range byStatus {
		key := strconv.Itoa(st)
		if _, ok := responses[key]; ok {
			return fmt.Errorf("response %s is written by hand; list its codes in %s instead", key, ExtErrors)
		}
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.(string)
		}
		resp := map[string]any{
			"description": "Error: " + strings.Join(names, ", "),
			"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
				"allOf": []any{
					map[string]any{"$ref": "#/components/schemas/Error"},
					map[string]any{"properties": map[string]any{"error": map[string]any{"enum": cs}}},
				},
			}}},
		}
		if st == http.StatusTooManyRequests || st == rateLimitStatus || st == http.StatusServiceUnavailable {
			resp["headers"] = map[string]any{"Retry-After": map[string]any{
				"description": "seconds to wait before trying again",
				"schema":      map[string]any{"type": "integer"},
			}}
		}
		responses[key] = resp
	}
	return nil
}

// knownCode reports whether c is one of gatehouse's error codes.
func knownCode(c string) bool {
	return c == gatehouse.EInternal || httpx.Status(c) != http.StatusInternalServerError
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// addPathParams declares path's parameters on item (a string each).
func addPathParams(item map[string]any, path string) {
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true,
			"schema": map[string]any{"type": "string"}})
	}
	if params != nil {
		item["parameters"] = params
	}
}

// setIn sets m[key][field] = v for a map m[key].
func setIn(m map[string]any, key, field string, v any) {
	if sub, ok := m[key].(map[string]any); ok {
		sub[field] = v
	}
}

// Handler serves doc (Build's JSON) with its content type.
func Handler(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	})
}
