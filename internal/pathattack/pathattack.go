// Package pathattack is the one table of request spellings that try to
// dodge a route rule (SPEC §10.8, "one path, one rule"). The gateway's
// unit tests run it through gateway.Canonical and Routes.Match; the
// end-to-end tests send it over TCP to the built-in gateway and to real
// nginx running docs/examples/nginx.conf, against an upstream that
// records what reaches it. docs/gateway.md cites it.
package pathattack

// Rules are the route rules the spellings attack. They name built-in
// scopes only, so that any account's admin holds them all and a token can
// be narrowed to lack each one.
const Rules = `routes:
  - pattern: POST /v1/chains/{id}/execute
    scopes: [workspaces:write]
  - pattern: GET /reports/summary
    scopes: [audit:read]
  - pattern: /ops/
    scopes: [settings:write]
  - pattern: /public/
    public: true
`

// NarrowScopes are the scopes of a token that holds none of the Rules'
// scopes; WideScopes hold them all.
var (
	NarrowScopes = []string{"workspaces:read"}
	WideScopes   = []string{"workspaces:write", "audit:read", "settings:write"}
)

// Outcome is what Gatehouse does with a spelling.
type Outcome int

const (
	// Refused: 400 invalid_request, whoever asks; nothing reaches the
	// upstream.
	Refused Outcome = iota + 1
	// Matched: the spelling gets the rule it aims at, so a token without
	// Scope is refused (401 without a credential, 403 with a narrow one)
	// and one with it reaches the upstream.
	Matched
)

// Case is one spelling of a protected request.
type Case struct {
	Name string
	// Method and Target are the request line's method and target, as
	// sent, byte for byte.
	Method, Target string
	// Header holds extra name/value pairs sent with the request.
	Header []string
	// Scope is the scope of the rule the spelling aims at.
	Scope string
	// Want is what Gatehouse does with it.
	Want Outcome
	// NginxAnswers is set where nginx refuses the request itself (400,
	// its own page) before asking Gatehouse.
	NginxAnswers bool
	// Dodges names the servers behind that read the spelling as the
	// protected request: what the outcome protects against.
	Dodges string
}

// Cases are the spellings: for each rule the plain request first (the
// control), then its disguises.
var Cases = []Case{
	// POST /v1/chains/{id}/execute needs workspaces:write.
	{Name: "chains: plain", Method: "POST", Target: "/v1/chains/c1/execute", Scope: "workspaces:write", Want: Matched},
	{Name: "chains: encoded slash", Method: "POST", Target: "/v1%2Fchains/c1/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that decode %2F before routing (Werkzeug/Flask, proxies that pass the decoded path)"},
	{Name: "chains: encoded slash, lower-case hex", Method: "POST", Target: "/v1%2fchains/c1/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "the same, spelled in lower case"},
	{Name: "chains: upper-case path", Method: "POST", Target: "/V1/chains/c1/execute", Scope: "workspaces:write", Want: Matched,
		Dodges: "case-insensitive routers (Express by default, ASP.NET, Spring on Windows file systems)"},
	{Name: "chains: mixed-case path", Method: "POST", Target: "/v1/CHAINS/c1/Execute", Scope: "workspaces:write", Want: Matched,
		Dodges: "case-insensitive routers"},
	{Name: "chains: trailing slash", Method: "POST", Target: "/v1/chains/c1/execute/", Scope: "workspaces:write", Want: Matched,
		Dodges: "routers that ignore a trailing slash (Express non-strict routing, Flask's redirect, Rails)"},
	{Name: "chains: lower-case method", Method: "post", Target: "/v1/chains/c1/execute", Scope: "workspaces:write", Want: Refused, NginxAnswers: true,
		Dodges: "servers that upper-case the method before routing (Werkzeug, some Node servers)"},
	{Name: "chains: X-HTTP-Method-Override", Method: "GET", Target: "/v1/chains/c1/execute", Header: []string{"X-HTTP-Method-Override", "POST"},
		Scope: "workspaces:write", Want: Matched, Dodges: "method-override middleware (Express method-override, Symfony, Laravel, Spring)"},
	{Name: "chains: X-HTTP-Method", Method: "GET", Target: "/v1/chains/c1/execute", Header: []string{"X-HTTP-Method", "POST"},
		Scope: "workspaces:write", Want: Matched, Dodges: "ASP.NET and OData method override"},
	{Name: "chains: X-Method-Override, lower case", Method: "GET", Target: "/v1/chains/c1/execute", Header: []string{"x-method-override", "post"},
		Scope: "workspaces:write", Want: Matched, Dodges: "method-override middleware that upper-cases the value"},
	{Name: "chains: dot segment", Method: "POST", Target: "/v1/chains/c1/./execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that remove dot segments after the check (every RFC 3986 resolver)"},
	{Name: "chains: encoded dot segment", Method: "POST", Target: "/v1/chains/c1/%2e/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that decode, then remove dot segments"},
	{Name: "chains: empty segment", Method: "POST", Target: "/v1//chains/c1/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that merge slashes (nginx merge_slashes, Spring, Go's ServeMux redirect)"},
	{Name: "chains: path parameter", Method: "POST", Target: "/v1/chains/c1;x=1/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that strip ;parameters from segments (Tomcat, Jetty, Spring)"},
	{Name: "chains: path parameter at the end", Method: "POST", Target: "/v1/chains/c1/execute;.json", Scope: "workspaces:write", Want: Refused,
		Dodges: "the same, after the last segment"},
	{Name: "chains: encoded semicolon", Method: "POST", Target: "/v1/chains/c1%3Bx/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that decode before stripping parameters"},
	{Name: "chains: encoded backslash", Method: "POST", Target: "/v1/chains/c1%5Cexecute", Scope: "workspaces:write", Want: Refused,
		Dodges: "servers that read \\ as / (IIS, ASP.NET, some Windows file servers)"},
	{Name: "chains: backslash", Method: "POST", Target: `/v1\chains\c1\execute`, Scope: "workspaces:write", Want: Refused,
		Dodges: "the same, unencoded"},
	{Name: "chains: overlong dots", Method: "POST", Target: "/v1/chains/c1/x/%c0%ae%c0%ae/execute", Scope: "workspaces:write", Want: Refused,
		Dodges: "decoders that accept overlong UTF-8 (%c0%ae is '.')"},

	// GET /reports/summary needs audit:read.
	{Name: "reports: plain", Method: "GET", Target: "/reports/summary", Scope: "audit:read", Want: Matched},
	{Name: "reports: trailing slash", Method: "GET", Target: "/reports/summary/", Scope: "audit:read", Want: Matched,
		Dodges: "routers that ignore a trailing slash (Flask with strict_slashes off, Express)"},
	{Name: "reports: lower-case method", Method: "get", Target: "/reports/summary", Scope: "audit:read", Want: Refused, NginxAnswers: true,
		Dodges: "servers that upper-case the method (Werkzeug/Flask)"},
	{Name: "reports: capitalised", Method: "GET", Target: "/Reports/Summary", Scope: "audit:read", Want: Matched,
		Dodges: "case-insensitive routers"},
	{Name: "reports: encoded letter", Method: "GET", Target: "/reports/%73ummary", Scope: "audit:read", Want: Matched,
		Dodges: "every server: %73 is s"},
	{Name: "reports: HEAD", Method: "HEAD", Target: "/reports/summary", Scope: "audit:read", Want: Matched,
		Dodges: "servers that answer HEAD with the GET handler"},
	{Name: "reports: up from public", Method: "GET", Target: "/public/../reports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "servers that remove dot segments"},
	{Name: "reports: encoded dots from public", Method: "GET", Target: "/public/%2e%2e/reports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "servers that decode, then remove dot segments"},
	{Name: "reports: double-encoded dots from public", Method: "GET", Target: "/public/%252e%252e/reports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "a proxy or framework that decodes twice"},
	{Name: "reports: overlong dots from public", Method: "GET", Target: "/public/%c0%ae%c0%ae/reports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "decoders that accept overlong UTF-8"},
	{Name: "reports: Tomcat dots from public", Method: "GET", Target: "/public/..;/reports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "Tomcat, which reads ..; as .."},
	{Name: "reports: encoded slashes from public", Method: "GET", Target: "/public%2F..%2Freports/summary", Scope: "audit:read", Want: Refused,
		Dodges: "servers that decode %2F, then remove dot segments"},

	// /ops/ needs settings:write.
	{Name: "ops: plain", Method: "GET", Target: "/ops/secret", Scope: "settings:write", Want: Matched},
	{Name: "ops: upper case", Method: "GET", Target: "/OPS/secret", Scope: "settings:write", Want: Matched,
		Dodges: "case-insensitive routers (Express)"},
	{Name: "ops: without trailing slash", Method: "GET", Target: "/ops", Scope: "settings:write", Want: Matched,
		Dodges: "routers that serve /ops for a /ops/ tree"},
	{Name: "ops: encoded letter", Method: "DELETE", Target: "/%6fps/secret", Scope: "settings:write", Want: Matched,
		Dodges: "every server: %6f is o"},
	{Name: "ops: encoded slash", Method: "GET", Target: "/ops%2Fsecret", Scope: "settings:write", Want: Refused,
		Dodges: "servers that decode %2F before routing"},
	{Name: "ops: encoded dots and slash from public", Method: "GET", Target: "/public/%2e%2e%2fops/secret", Scope: "settings:write", Want: Refused,
		Dodges: "servers that decode, then resolve the path"},
	{Name: "ops: encoded query mark", Method: "GET", Target: "/ops%3F/secret", Scope: "settings:write", Want: Refused,
		Dodges: "servers that decode the path and parse it again"},
}
