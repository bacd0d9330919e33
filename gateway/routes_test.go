package gateway

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// exampleJSON and exampleYAML are the same rules in both formats.
const exampleJSON = `{
  "routes": [
    {"pattern": "GET /v1/metadata/", "scopes": ["metadata:read"]},
    {"pattern": "POST /v1/chains/{id}/execute", "scopes": ["chains:execute"]},
    {"pattern": "/v1/chains/", "scopes": ["chains:write", "chains:execute"]},
    {"pattern": "/public/", "public": true},
    {"pattern": "GET /status", "public": true}
  ]
}`

const exampleYAML = `
# the same rules as exampleJSON
routes:
  - pattern: GET /v1/metadata/
    scopes: [metadata:read]
  - pattern: POST /v1/chains/{id}/execute
    scopes:
      - chains:execute
  - pattern: /v1/chains/
    scopes: [chains:write, chains:execute]
  - pattern: /public/
    public: true
  - pattern: "GET /status"
    public: true
`

func TestParseRoutesFormats(t *testing.T) {
	want := []Rule{
		{Pattern: "GET /v1/metadata/", Scopes: gatehouse.Scopes{"metadata:read"}},
		{Pattern: "POST /v1/chains/{id}/execute", Scopes: gatehouse.Scopes{"chains:execute"}},
		{Pattern: "/v1/chains/", Scopes: gatehouse.Scopes{"chains:execute", "chains:write"}},
		{Pattern: "/public/", Public: true},
		{Pattern: "GET /status", Public: true},
	}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			text := exampleJSON
			if format == "yaml" {
				text = exampleYAML
			}
			rs, err := ParseRoutes([]byte(text), format)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(rs.rules, want, equalRule) || rs.Len() != len(want) {
				t.Fatalf("rules %+v, want %+v", rs.rules, want)
			}
			if !equalRule(rs.def, Rule{}) {
				t.Fatalf("default %+v, want none", rs.def)
			}
		})
	}
}

func equalRule(a, b Rule) bool {
	return a.Pattern == b.Pattern && a.Public == b.Public && slices.Equal(a.Scopes, b.Scopes) && (a.Scopes == nil) == (b.Scopes == nil)
}

func TestLoadRoutes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, name := range []string{"routes.json", "routes.JSON"} {
		if rs, err := LoadRoutes(write(name, exampleJSON)); err != nil || rs.Len() != 5 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"routes.yaml", "routes.yml"} {
		if rs, err := LoadRoutes(write(name, exampleYAML)); err != nil || rs.Len() != 5 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// JSON in a .yaml file is YAML too.
	if _, err := LoadRoutes(write("json.yaml", exampleJSON)); err != nil {
		t.Fatal(err)
	}
	for name, wantErr := range map[string]string{
		write("routes.txt", exampleJSON):         "must end in .json, .yaml or .yml",
		filepath.Join(dir, "missing.json"):       "no such file",
		write("bad.json", `{"routes": [}`):       "bad.json: line 1:",
		write("yaml.json", exampleYAML):          "yaml.json: line 2:",
		write("bad.yaml", "routes:\n  - pat: x"): `bad.yaml: line 2: unknown field "pat"`,
	} {
		_, err := LoadRoutes(name)
		if err == nil || !strings.Contains(err.Error(), wantErr) || !strings.HasPrefix(err.Error(), "gateway-routes") {
			t.Errorf("LoadRoutes(%s) = %v, want an error with %q", filepath.Base(name), err, wantErr)
		}
	}
}

func TestParseRoutesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, format, text, want string
	}{
		{"empty json", "json", ``, "the file is empty"},
		{"empty yaml", "yaml", "# nothing\n", "the file is empty"},
		{"no routes", "json", `{"routes": []}`, "no routes"},
		{"unknown field json", "json", `{"routes": [{"pattern": "/a", "scope": ["x"]}]}`, `unknown field "scope"`},
		{"unknown field yaml", "yaml", "routes:\n  - pattern: /a\n    scope: [x]\n", `line 3: unknown field "scope"`},
		{"unknown top-level field", "json", `{"rules": []}`, `unknown field "rules"`},
		{"repeated key yaml", "yaml", "routes:\n  - pattern: /a\n    pattern: /b\n    public: true\n", "already defined"},
		{"two documents", "yaml", "routes:\n  - {pattern: /a, public: true}\n---\nroutes: []\n", "more than one YAML document"},
		{"trailing json", "json", `{"routes": [{"pattern": "/a", "public": true}]} {}`, "text after the JSON object"},
		{"wrong type", "json", `{"routes": [{"pattern": "/a", "public": "yes"}]}`, "line 1: routes.public must be a JSON boolean, not string"},
		{"json not a list", "json", "{\n\"routes\": \"/a\"}", "line 2: routes must be a JSON array, not string"},
		{"yaml wrong type", "yaml", "routes:\n  - {pattern: /a, public: maybe}\n", "line 2: cannot unmarshal !!str `maybe` into bool"},
		{"yaml not a list", "yaml", "routes: /a\n", "line 1: cannot unmarshal !!str `/a`"},
		{"no pattern", "json", `{"routes": [{"scopes": ["a"]}]}`, "route 1 (pattern \"\"): needs a pattern"},
		{"neither scopes nor public", "json", `{"routes": [{"pattern": "/a"}]}`, "route 1 (pattern \"/a\"): needs scopes, or public: true"},
		{"empty scopes", "json", `{"routes": [{"pattern": "/a", "scopes": []}]}`, "needs scopes, or public: true"},
		{"public with scopes", "json", `{"routes": [{"pattern": "/a", "public": true, "scopes": ["a"]}]}`, "a public route takes no scopes"},
		{"public with empty scopes", "json", `{"routes": [{"pattern": "/a", "public": true, "scopes": []}]}`, "a public route takes no scopes"},
		{"bad scope", "json", `{"routes": [{"pattern": "/a", "scopes": ["a b"]}]}`, `scope "a b" is not a scope name`},
		{"quote in scope", "json", `{"routes": [{"pattern": "/a", "scopes": ["a\""]}]}`, `is not a scope name`},
		{"bad wildcard", "json", `{"routes": [{"pattern": "GET /a/{id", "scopes": ["a"]}]}`, "bad wildcard segment"},
		{"wildcard not at end", "json", `{"routes": [{"pattern": "/a/{x...}/b", "scopes": ["a"]}]}`, "wildcard not at end"},
		{"host", "json", `{"routes": [{"pattern": "api.example.com/a", "scopes": ["a"]}]}`, "must start with /"},
		{"method only", "json", `{"routes": [{"pattern": "GET", "scopes": ["a"]}]}`, "must start with /"},
		{"lower-case method", "json", `{"routes": [{"pattern": "get /a", "scopes": ["a"]}]}`, `the method "get" must be upper case`},
		{"spaces around", "json", `{"routes": [{"pattern": " /a", "scopes": ["a"]}]}`, "spaces around it"},
		{"duplicate", "yaml", "routes:\n  - {pattern: /a, scopes: [a]}\n  - {pattern: /a, public: true}\n",
			`route 2 (pattern "/a"): pattern "/a" conflicts with pattern "/a": /a matches the same requests as /a`},
		{"same wildcards renamed", "json", `{"routes": [{"pattern": "GET /a/{x}", "scopes": ["a"]}, {"pattern": "GET /a/{y}", "scopes": ["b"]}]}`,
			"matches the same requests"},
		{"neither more specific", "json", `{"routes": [{"pattern": "GET /a/{x}", "scopes": ["a"]}, {"pattern": "GET /{y}/b", "scopes": ["b"]}]}`,
			"neither is more specific than the other"},
		{"public default", "json", `{"routes": [{"pattern": "/a", "scopes": ["a"]}], "default": {"public": true}}`, "default: may not be public"},
		{"default without scopes", "json", `{"routes": [{"pattern": "/a", "scopes": ["a"]}], "default": {}}`, "default: needs scopes"},
		{"default with pattern", "json", `{"default": {"pattern": "/", "scopes": ["a"]}}`, "default: takes no pattern"},
		{"default bad scope", "json", `{"default": {"scopes": [""]}}`, `default: scope "" is not a scope name`},
		{"unknown format", "toml", `routes = []`, `unknown format "toml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRoutes([]byte(tc.text), tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseRoutes = %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "registered at") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error names the mux's registration or spans lines: %q", err)
			}
		})
	}
}

// target returns the Target of a request line, as the server would parse
// it.
func target(t testing.TB, method, uri string, h http.Header) (Target, error) {
	t.Helper()
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		t.Fatalf("%s: %v", uri, err)
	}
	return Canonical(method, u.EscapedPath(), h)
}

func TestRoutesMatch(t *testing.T) {
	rs, err := ParseRoutes([]byte(exampleYAML), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	withDefault, err := ParseRoutes([]byte(exampleJSON[:len(exampleJSON)-1]+`, "default": {"scopes": ["api:use"]}}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	var (
		none     = Rule{}
		def      = Rule{Scopes: gatehouse.Scopes{"api:use"}}
		metadata = Rule{Pattern: "GET /v1/metadata/", Scopes: gatehouse.Scopes{"metadata:read"}}
		execute  = Rule{Pattern: "POST /v1/chains/{id}/execute", Scopes: gatehouse.Scopes{"chains:execute"}}
		chains   = Rule{Pattern: "/v1/chains/", Scopes: gatehouse.Scopes{"chains:execute", "chains:write"}}
		public   = Rule{Pattern: "/public/", Public: true}
		status   = Rule{Pattern: "GET /status", Public: true}
	)
	for _, tc := range []struct {
		method, uri string
		want        Rule
	}{
		{"GET", "/v1/metadata/workspace", metadata},
		{"HEAD", "/v1/metadata/workspace", metadata}, // GET patterns match HEAD, as in ServeMux
		{"GET", "/v1/metadata/", metadata},
		{"POST", "/v1/metadata/workspace", none},
		{"GET", "/v1/metadata", metadata}, // the subtree's root without its slash
		{"GET", "/V1/Metadata", metadata},
		{"POST", "/v1/chains/c1/execute", execute},
		{"POST", "/v1/chains/c1/execute?x=1", execute},
		{"POST", "/v1/chains/c%31/execute", execute},
		{"POST", "/V1/CHAINS/c1/Execute", execute},
		{"GET", "/v1/chains/c1/execute", chains}, // most specific that matches the method
		{"DELETE", "/v1/chains/c1", chains},
		{"POST", "/v1/chains/c1/execute/more", chains},
		// With a trailing slash: the strictest of the subtree it lies in
		// and the rule of the path without it.
		{"POST", "/v1/chains/c1/execute/", chains},
		{"GET", "/public/", public},
		{"PUT", "/public/a/b.txt", public},
		{"GET", "/public/%41bc", public},
		{"GET", "/public", none}, // public only under the tree: the literal path is not
		{"GET", "/status", status},
		{"GET", "/status/", none}, // public is for the spelling listed
		{"HEAD", "/status", status},
		{"POST", "/status", none},
		{"GET", "/orders/1", none},
		{"GET", "/", none},
	} {
		tg, err := target(t, tc.method, tc.uri, nil)
		if err != nil {
			t.Fatalf("Canonical(%s %s): %v", tc.method, tc.uri, err)
		}
		if got := rs.Match(tg); !equalRule(got, tc.want) {
			t.Errorf("Match(%s %s) = %+v, want %+v", tc.method, tc.uri, got, tc.want)
		}
		// With a default, what matches no rule gets it, and the rule of a
		// trailing-slash twin matched only by it adds to it.
		want := tc.want
		switch {
		case equalRule(want, none):
			want = def
		case tc.uri == "/v1/metadata" || tc.uri == "/V1/Metadata":
			want = Rule{Scopes: gatehouse.Scopes{"api:use", "metadata:read"}}
		}
		if got := withDefault.Match(tg); !equalRule(got, want) {
			t.Errorf("with a default, Match(%s %s) = %+v, want %+v", tc.method, tc.uri, got, want)
		}
	}
	// A method override is matched too, the strictest winning.
	tg, err := target(t, "GET", "/v1/metadata/x", http.Header{"X-Http-Method-Override": {"post"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Match(tg); !equalRule(got, metadata) {
		t.Errorf("GET overridden to POST on metadata: %+v", got)
	}
	tg, _ = target(t, "GET", "/public/x", http.Header{"X_Method_Override": {"DELETE"}})
	if got := withDefault.Match(tg); !equalRule(got, public) {
		t.Errorf("override on a public tree: %+v", got)
	}
	var nilRoutes *Routes
	if got := nilRoutes.Match(Target{Methods: []string{"GET"}, Path: "/public/"}); !equalRule(got, none) || nilRoutes.Len() != 0 || !equalRule(nilRoutes.Default(), none) {
		t.Fatalf("nil Routes matched %+v", got)
	}
	if !equalRule(withDefault.Default(), def) {
		t.Fatalf("default %+v", withDefault.Default())
	}
}

// TestRoutesNestedTreesAndFormats: a path whose twin with a slash is a
// pattern of its own keeps the rule of the tree it lies in; a format
// suffix also gets its stem's rule when a more specific pattern matches
// the stem; a public file with a pattern of its own stays public.
func TestRoutesNestedTreesAndFormats(t *testing.T) {
	rs, err := ParseRoutes([]byte(`
routes:
  - {pattern: /ops/, scopes: [settings:write]}
  - {pattern: /ops/status/, public: true}
  - {pattern: /reports/summary, scopes: [audit:read]}
  - {pattern: /reports/, public: true}
  - {pattern: /favicon.ico, public: true}
`), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	ops := Rule{Pattern: "/ops/", Scopes: gatehouse.Scopes{"settings:write"}}
	audit := Rule{Pattern: "/reports/summary", Scopes: gatehouse.Scopes{"audit:read"}}
	for _, tc := range []struct {
		method, uri string
		want        Rule
	}{
		{"DELETE", "/ops/status", ops},
		{"POST", "/OPS/Status", ops},
		{"GET", "/ops/status/", Rule{Pattern: "/ops/status/", Public: true}},
		{"GET", "/reports/summary.json", audit},
		{"GET", "/reports/summary.tar.gz", Rule{Pattern: "/reports/", Public: true}}, // stem summary.tar: no more specific pattern
		{"GET", "/reports/other.json", Rule{Pattern: "/reports/", Public: true}},
		{"GET", "/favicon.ico", Rule{Pattern: "/favicon.ico", Public: true}},
	} {
		tg, err := target(t, tc.method, tc.uri, nil)
		if err != nil {
			t.Fatalf("Canonical(%s %s): %v", tc.method, tc.uri, err)
		}
		if got := rs.Match(tg); !equalRule(got, tc.want) {
			t.Errorf("Match(%s %s) = %+v, want %+v", tc.method, tc.uri, got, tc.want)
		}
	}
}

// TestRoutesCaseConflicts: patterns differing only in case are one path,
// so the file is refused as conflicting.
func TestRoutesCaseConflicts(t *testing.T) {
	_, err := ParseRoutes([]byte(`{"routes": [{"pattern": "GET /Reports", "scopes": ["a:b"]}, {"pattern": "GET /reports", "public": true}]}`), "json")
	if err == nil || !strings.Contains(err.Error(), "conflicts") {
		t.Fatalf("err %v", err)
	}
}

func TestStrictest(t *testing.T) {
	pub := Rule{Pattern: "/p/", Public: true}
	auth := Rule{}
	a := Rule{Pattern: "A", Scopes: gatehouse.Scopes{"a:read"}}
	ab := Rule{Pattern: "B", Scopes: gatehouse.Scopes{"a:write", "b:read"}}
	for _, tc := range []struct{ x, y, want Rule }{
		{pub, pub, pub},
		{pub, auth, auth},
		{auth, pub, auth},
		{pub, a, a},
		{a, auth, a},
		{a, ab, Rule{Pattern: "B", Scopes: gatehouse.Scopes{"a:read", "a:write", "b:read"}}},
	} {
		if got := Strictest(tc.x, tc.y); !equalRule(got, tc.want) {
			t.Errorf("Strictest(%+v, %+v) = %+v, want %+v", tc.x, tc.y, got, tc.want)
		}
	}
	if a.Scopes[0] != "a:read" || len(a.Scopes) != 1 {
		t.Fatal("Strictest changed its argument")
	}
}

// TestRoutesDocExamples parses every YAML and JSON example of the route
// rules in docs/gateway.md, and checks that the two formats agree.
func TestRoutesDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/gateway.md")
	if err != nil {
		t.Fatal(err)
	}
	var parsed []*Routes
	for _, block := range strings.Split(string(doc), "```")[1:] {
		format, text, _ := strings.Cut(block, "\n")
		if (format != "yaml" && format != "json") || !strings.Contains(text, "routes") {
			continue
		}
		rs, err := ParseRoutes([]byte(text), format)
		if err != nil {
			t.Fatalf("%s example: %v\n%s", format, err, text)
		}
		parsed = append(parsed, rs)
	}
	if len(parsed) != 2 || !slices.EqualFunc(parsed[0].rules, parsed[1].rules, equalRule) {
		t.Fatalf("want a YAML and a JSON example of the same rules, got %d examples", len(parsed))
	}
}

func BenchmarkRoutesMatch(b *testing.B) {
	rs, err := ParseRoutes([]byte(exampleYAML), "yaml")
	if err != nil {
		b.Fatal(err)
	}
	for _, uri := range []string{"/v1/chains/c1/execute", "/V1/chains/c%31/execute/"} {
		u, _ := url.ParseRequestURI(uri)
		b.Run(uri, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tg, _ := Canonical("POST", u.EscapedPath(), nil)
				rs.Match(tg)
			}
		})
	}
}
