package openapi_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/api"
	"github.com/gatehouse/gatehouse/openapi"
)

var opts = openapi.Options{Issuer: "https://auth.example.com", Prefix: "/gatehouse",
	APITokenHeader: "X-Key", UserEmailHeader: "X-As", RateLimitStatus: 429}

// load builds the document for routes and loads it with kin-openapi,
// validating it as OpenAPI 3.1.
func load(t *testing.T, routes []api.Route) (*openapi3.T, []string) {
	t.Helper()
	doc, missing, err := openapi.Build(routes, opts)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(doc)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !d.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", d.OpenAPI)
	}
	if err := d.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return d, missing
}

// TestEveryRouteHasAnOperation: each route of the API's one route table has
// its operation, with the table's scope, and the document has no /v1
// operation the table lacks.
func TestEveryRouteHasAnOperation(t *testing.T) {
	d, missing := load(t, api.Routes())
	if len(missing) != 0 {
		t.Fatalf("the document and the route table disagree:\n%s", strings.Join(missing, "\n"))
	}
	for _, rt := range api.Routes() {
		op := d.Paths.Find(rt.Path).GetOperation(rt.Method)
		if op == nil {
			t.Fatalf("%s %s: no operation", rt.Method, rt.Path)
		}
		got, _ := op.Extensions[openapi.ExtScope].(string)
		if got != string(rt.Scope) {
			t.Errorf("%s %s: %s %q, want %q", rt.Method, rt.Path, openapi.ExtScope, got, rt.Scope)
		}
		var oauthScopes []string
		for _, req := range *op.Security {
			if s, ok := req[openapi.SchemeOAuth]; ok {
				oauthScopes = s
			}
		}
		if want := []string{string(rt.Scope)}; rt.Scope != "" && !slices.Equal(oauthScopes, want) {
			t.Errorf("%s %s: oauth2 scopes %v, want %v", rt.Method, rt.Path, oauthScopes, want)
		}
		for _, st := range []string{"400", "401", "403", "429", "503", "500"} {
			if op.Responses.Value(st) == nil {
				t.Errorf("%s %s: no %s answer", rt.Method, rt.Path, st)
			}
		}
		if op.Responses.Value("422") != nil {
			t.Errorf("%s %s: a 422 answer although the rate-limit status is 429", rt.Method, rt.Path)
		}
	}
}

// TestARouteWithoutAnOperationIsReported: a route added to the table
// without its operation, and an operation whose route went away, are
// both reported.
func TestARouteWithoutAnOperationIsReported(t *testing.T) {
	routes := append(api.Routes(), api.Route{Method: "POST", Path: "/v1/widgets", Scope: gatehouse.ScopeWorkspacesWrite})
	routes = slices.DeleteFunc(routes, func(r api.Route) bool { return r.Method == "GET" && r.Path == "/v1/audit" })
	d, missing := load(t, routes)
	want := []string{
		"no operation in openapi.yaml for route POST /v1/widgets",
		"operation GET /v1/audit in openapi.yaml is no route of the API",
	}
	if !slices.Equal(missing, want) {
		t.Fatalf("missing %q, want %q", missing, want)
	}
	if d.Paths.Find("/v1/audit").GetOperation("GET") != nil {
		t.Fatal("an operation without its route is still in the document")
	}
}

// TestServersAndSchemes: the management prefix and the public URL make the
// servers; the OAuth endpoints stay at the origin; the configured header
// names and the built-in scopes make the security schemes.
func TestServersAndSchemes(t *testing.T) {
	d, _ := load(t, api.Routes())
	if len(d.Servers) != 1 || d.Servers[0].URL != "https://auth.example.com/gatehouse" {
		t.Fatalf("servers %+v", d.Servers)
	}
	for _, p := range []string{"/oauth/token", "/v1/oauth/token", "/authorization", "/healthz", "/.well-known/oauth-authorization-server"} {
		item := d.Paths.Find(p)
		if item == nil || len(item.Servers) != 1 || item.Servers[0].URL != "https://auth.example.com" {
			t.Errorf("%s: servers not the origin", p)
		}
	}
	for _, p := range []string{"/v1/users", "/v1/auth/check"} {
		if item := d.Paths.Find(p); item == nil || len(item.Servers) != 0 {
			t.Errorf("%s: not under the document's server", p)
		}
	}
	schemes := d.Components.SecuritySchemes
	if s := schemes[openapi.SchemeAPIToken].Value; s.In != "header" || s.Name != "X-Key" {
		t.Errorf("api token scheme %+v", s)
	}
	if s := schemes[openapi.SchemeActAs].Value; s.Name != "X-As" {
		t.Errorf("act-as scheme %+v", s)
	}
	flows := schemes[openapi.SchemeOAuth].Value.Flows
	for name, f := range map[string]*openapi3.OAuthFlow{"clientCredentials": flows.ClientCredentials, "password": flows.Password} {
		if f == nil || f.TokenURL != "https://auth.example.com/oauth/token" || f.RefreshURL != f.TokenURL || len(f.Scopes) != len(gatehouse.BuiltinScopes) {
			t.Errorf("flow %s: %+v", name, f)
		}
	}
}

// TestResponseSchemasAreClosed: every object schema of an answer refuses
// fields it does not name, so an answer with an undocumented field fails
// the e2e suite's check.
func TestResponseSchemasAreClosed(t *testing.T) {
	doc, _, err := openapi.Build(api.Routes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var walk func(name string, s map[string]any)
	walk = func(name string, s map[string]any) {
		if _, ok := s["properties"]; ok && s["additionalProperties"] != false {
			t.Errorf("schema %s: an object without additionalProperties: false", name)
		}
		props, _ := s["properties"].(map[string]any)
		for k, v := range props {
			if sub, ok := v.(map[string]any); ok {
				walk(name+"."+k, sub)
				if items, ok := sub["items"].(map[string]any); ok {
					walk(name+"."+k+"[]", items)
				}
			}
		}
	}
	for name, s := range d.Components.Schemas {
		walk(name, s)
	}
}
