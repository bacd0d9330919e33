package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestOpenAPIDocument: GET /openapi.json needs no credentials; its servers
// are the public URL with the management prefix (the OAuth endpoints and
// health checks at the bare origin); its schemes carry the configured
// header names; and every operation it lists is served where it says (no
// route-not-found, no wrong method), each answer checked against it.
func TestOpenAPIDocument(t *testing.T) {
	// The upstream answers 418, never "route not found": with a gateway
	// (for its protected-resource metadata) a route missing from the
	// server would be proxied there.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	t.Cleanup(up.Close)
	env := servertest.Start(t, func(c *server.Config) {
		c.PublicURL, c.ManagementPrefix = "https://auth.example.com", "/gatehouse"
		c.APITokenHeader, c.UserEmailHeader = "X-Key", "X-As"
		c.DynamicRegistration, c.Upstream, c.ConsoleSameOrigin = true, up.URL, true
	})
	r := env.Request("GET", "/openapi.json", nil)
	servertest.Expect(t, r, 200, "")
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	type server struct {
		URL string `json:"url"`
	}
	var doc struct {
		OpenAPI string   `json:"openapi"`
		Servers []server `json:"servers"`
		Paths   map[string]map[string]json.RawMessage
		Comp    struct {
			Schemes map[string]struct {
				Name string `json:"name"`
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	r.JSON(t, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://auth.example.com/gatehouse" {
		t.Fatalf("servers %+v", doc.Servers)
	}
	if doc.Comp.Schemes["apiToken"].Name != "X-Key" || doc.Comp.Schemes["actAs"].Name != "X-As" {
		t.Fatalf("security schemes %+v", doc.Comp.Schemes)
	}

	param := regexp.MustCompile(`\{[a-z_]+\}`)
	methods := []string{"get", "put", "post", "patch", "delete"}
	var ops int
	for path, item := range doc.Paths {
		prefix := "/gatehouse"
		if raw, ok := item["servers"]; ok {
			var ss []server
			if err := json.Unmarshal(raw, &ss); err != nil || len(ss) != 1 || ss[0].URL != "https://auth.example.com" {
				t.Fatalf("%s: servers %s", path, raw)
			}
			prefix = ""
		}
		for m := range item {
			if !slices.Contains(methods, m) {
				continue
			}
			ops++
			method, target := strings.ToUpper(m), prefix+param.ReplaceAllString(path, "x")
			r := env.Request(method, target, nil)
			if r.Status == 405 || r.Status == http.StatusTeapot || (r.Status == 404 && strings.Contains(string(r.Body), "route not found")) {
				t.Errorf("%s %s (%s in the document): %d %s", method, target, path, r.Status, r.Body)
			}
		}
	}
	if ops < 40 {
		t.Fatalf("only %d operations", ops)
	}
}
