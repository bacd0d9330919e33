package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
)

// Rule is what the gateway requires of the requests one route rule matches
// (SPEC §9.1, --gateway-routes). The zero Rule is what a request matching
// no rule gets without a default: authentication and the rate limit,
// nothing more.
type Rule struct {
	// Pattern is the rule's http.ServeMux pattern ("POST
	// /v1/chains/{id}/execute", "/public/"); empty for the default.
	Pattern string
	// Public requests are proxied without authentication or rate limit.
	Public bool
	// Scopes must all be allowed by the principal's effective scopes; nil
	// requires none.
	Scopes gatehouse.Scopes
}

// Routes are the gateway's route rules, matched the way http.ServeMux
// matches its patterns: the most specific pattern wins. A nil *Routes has
// no rules. Routes are immutable once loaded and safe for concurrent use.
type Routes struct {
	rules []Rule
	// def is what a request matching no rule gets.
	def Rule
	// mux holds one ruleHandler per rule; it only matches, never serves.
	mux *http.ServeMux
}

// ruleHandler marks the rule a pattern of Routes.mux stands for.
type ruleHandler int

func (ruleHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// routesFile is the rules file: JSON or YAML of the same shape.
type routesFile struct {
	Routes  []ruleFile `json:"routes" yaml:"routes"`
	Default *ruleFile  `json:"default" yaml:"default"`
}

type ruleFile struct {
	Pattern string            `json:"pattern" yaml:"pattern"`
	Public  bool              `json:"public" yaml:"public"`
	Scopes  []gatehouse.Scope `json:"scopes" yaml:"scopes"`
}

// LoadRoutes reads and checks the rules file at name: JSON when its name
// ends in .json, YAML when in .yaml or .yml. Every error names the file and
// says what is wrong with it.
func LoadRoutes(name string) (*Routes, error) {
	var format string
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		format = "json"
	case ".yaml", ".yml":
		format = "yaml"
	default:
		return nil, fmt.Errorf("gateway-routes %s: the file name must end in .json, .yaml or .yml", name)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("gateway-routes: %w", err)
	}
	rs, err := ParseRoutes(data, format)
	if err != nil {
		return nil, fmt.Errorf("gateway-routes %s: %w", name, err)
	}
	return rs, nil
}

// ParseRoutes parses and checks rules in format "json" or "yaml". It
// refuses unknown fields, a rule without a pattern, a pattern http.ServeMux
// refuses, one that names a host or a lower-case method, two patterns that
// conflict (match the same requests with neither more specific), a rule
// that is public and has scopes, or neither, a malformed scope name, a
// public default, and a file with no rules at all.
func ParseRoutes(data []byte, format string) (*Routes, error) {
	var f routesFile
	var err error
	switch format {
	case "json":
		err = decodeJSON(data, &f)
	case "yaml":
		err = decodeYAML(data, &f)
	default:
		return nil, fmt.Errorf("unknown format %q (json or yaml)", format)
	}
	if err != nil {
		return nil, err
	}
	if len(f.Routes) == 0 && f.Default == nil {
		return nil, errors.New("no routes: give a list under \"routes\" (or leave --gateway-routes unset)")
	}
	rs := &Routes{mux: http.NewServeMux()}
	for i, rf := range f.Routes {
		r, err := rf.rule()
		if err == nil {
			err = rs.add(r, len(rs.rules))
		}
		if err != nil {
			return nil, fmt.Errorf("route %d (pattern %q): %w", i+1, rf.Pattern, err)
		}
		rs.rules = append(rs.rules, r)
	}
	if d := f.Default; d != nil {
		switch {
		case d.Pattern != "":
			return nil, errors.New("default: takes no pattern; it is for requests that match no route")
		case d.Public:
			return nil, errors.New("default: may not be public; list the public routes instead")
		case len(d.Scopes) == 0:
			return nil, errors.New("default: needs scopes (without a default, a request that matches no route needs none)")
		}
		if rs.def.Scopes, err = checkScopes(d.Scopes); err != nil {
			return nil, fmt.Errorf("default: %w", err)
		}
	}
	return rs, nil
}

// decodeJSON decodes one JSON object, refusing unknown fields and
// anything after it.
func decodeJSON(data []byte, f *routesFile) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the file is empty")
		}
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return fmt.Errorf("line %d: %w", lineOf(data, se.Offset), err)
		case errors.As(err, &te):
			return fmt.Errorf("line %d: %s must be a JSON %s, not %s", lineOf(data, te.Offset), te.Field, jsonKind(te.Type.Kind()), te.Value)
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("line %d: text after the JSON object", lineOf(data, dec.InputOffset()))
	}
	return nil
}

// lineOf returns the 1-based line of byte offset off in data.
func lineOf(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// decodeYAML decodes one YAML document, refusing unknown fields, repeated
// keys and a second document.
func decodeYAML(data []byte, f *routesFile) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("the file is empty")
		case errors.As(err, &te):
			// One line per problem, naming Go types: one line naming fields.
			msgs := make([]string, len(te.Errors))
			for i, m := range te.Errors {
				msgs[i] = yamlGoType.ReplaceAllString(strings.TrimSpace(m), "")
				msgs[i] = yamlUnknownField.ReplaceAllString(msgs[i], `unknown field "$1"`)
			}
			return errors.New(strings.Join(msgs, "; "))
		}
		return err
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return errors.New("the file holds more than one YAML document")
	}
	return nil
}

// Rewrites of the YAML decoder's messages, which name Go types.
var (
	yamlUnknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlGoType       = regexp.MustCompile(` into \S*\.\S+$`)
)

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice:
		return "array"
	case reflect.Struct, reflect.Pointer:
		return "object"
	}
	return k.String()
}

// rule checks one rule of the file.
func (rf ruleFile) rule() (Rule, error) {
	r := Rule{Pattern: rf.Pattern, Public: rf.Public}
	switch {
	case rf.Pattern == "":
		return r, errors.New("needs a pattern such as \"GET /v1/items/{id}\" or \"/public/\"")
	case rf.Public && rf.Scopes != nil:
		return r, errors.New("a public route takes no scopes: it is not authenticated")
	case !rf.Public && len(rf.Scopes) == 0:
		return r, errors.New("needs scopes, or public: true (a route that needs only authentication need not be listed)")
	}
	if strings.TrimSpace(rf.Pattern) != rf.Pattern {
		return r, errors.New("the pattern has spaces around it")
	}
	rest := rf.Pattern
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		if method := rest[:i]; method != strings.ToUpper(method) {
			return r, fmt.Errorf("the method %q must be upper case, as requests send it", method)
		}
		rest = strings.TrimLeft(rest[i+1:], " \t")
	}
	if !strings.HasPrefix(rest, "/") {
		return r, errors.New("the path must start with / (route rules match paths, not hosts)")
	}
	if rf.Public {
		return r, nil
	}
	var err error
	r.Scopes, err = checkScopes(rf.Scopes)
	return r, err
}

// checkScopes checks scope names: built-in or any custom scope name, which
// each account defines for itself.
func checkScopes(ss []gatehouse.Scope) (gatehouse.Scopes, error) {
	for _, s := range ss {
		if !gatehouse.ValidScopeName(string(s)) {
			return nil, fmt.Errorf("scope %q is not a scope name (1 to %d printable characters, no spaces, quotes or backslashes)",
				s, gatehouse.MaxScopeLen)
		}
	}
	return gatehouse.NormalizeScopes(ss), nil
}

// registeredAt is the "(registered at file:line)" of ServeMux's panics,
// which would name this file, not the rules file.
var registeredAt = regexp.MustCompile(`\s*\(registered at [^)]*\)`)

// add registers r as rule i of the mux, turning the mux's panic for a bad
// or conflicting pattern into an error.
func (rs *Routes) add(r Rule, i int) (err error) {
	defer func() {
		if v := recover(); v != nil {
			msg := registeredAt.ReplaceAllString(fmt.Sprint(v), "")
			err = errors.New(strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", " ")), " "))
		}
	}()
	rs.mux.Handle(lowerPath(r.Pattern), ruleHandler(i))
	return nil
}

// lowerPath returns a pattern with its path in lower case (Match compares
// paths without regard to case); the method stays as it is.
func lowerPath(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return pattern[:i+1] + strings.ToLower(pattern[i+1:])
	}
	return strings.ToLower(pattern)
}

// Len returns the number of rules, the default not counted.
func (rs *Routes) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// Default returns what a request matching no rule gets: the default's
// scopes, or the zero Rule without a default (and for a nil *Routes).
func (rs *Routes) Default() Rule {
	if rs == nil {
		return Rule{}
	}
	return rs.def
}

// Match returns the rule for a target: for each of its methods the rule
// of its path (matchPath), and of these the strictest (Strictest). Paths
// and patterns are compared without regard to case, so
// /V1/Chains/c1/execute is matched as /v1/chains/c1/execute. A nil
// *Routes has no rules: the zero Rule.
func (rs *Routes) Match(t Target) Rule {
	if rs == nil {
		return Rule{}
	}
	p := strings.ToLower(t.Path)
	var out Rule
	for i, m := range t.Methods {
		r := rs.matchPath(m, p)
		if i == 0 {
			out = r
		} else {
			out = Strictest(out, r)
		}
	}
	return out
}

// matchPath returns the rule of a lower-case path for one method, a path
// and its trailing-slash twin being one path to servers that add or drop
// the slash:
//   - a path with a trailing slash gets the strictest of its own rule and
//     that of the path without the slash, when a pattern matches it;
//   - a path without one gets its own rule, made stricter by the twin's
//     when a pattern matches the twin at its root (/ops/ for /ops, not
//     /v1/chains/ for /v1/chains/c1/execute, which the path itself is
//     under) or when no pattern matches the path itself.
//
// A last segment with a format suffix (summary.json) is also its stem
// (summary) to servers that route the suffix as a format (Rails'
// (.:format), Spring's suffix matching): when a more specific pattern
// matches the stem than the path, its rule applies too.
func (rs *Routes) matchPath(method, p string) Rule {
	r, pattern := rs.matchSlashes(method, p)
	if stem, ok := formatStem(p); ok {
		if sr, sp := rs.matchSlashes(method, stem); len(sp) > len(pattern) {
			r = Strictest(r, sr)
		}
	}
	return r
}

// matchSlashes is matchPath without format suffixes; it returns the rule
// and the pattern of the path's own match ("" for none).
func (rs *Routes) matchSlashes(method, p string) (Rule, string) {
	own, pattern, ownOK, _ := rs.match(method, p)
	switch {
	case p == "/":
		return own, pattern
	case strings.HasSuffix(p, "/"):
		if twin, _, ok, _ := rs.match(method, p[:len(p)-1]); ok {
			return Strictest(own, twin), pattern
		}
		return own, pattern
	}
	if !ownOK {
		// ServeMux answers a path whose twin is a pattern (/ops/status
		// for /ops/status/) with a redirect, not a rule: the path's own
		// rule is the subtree's it lies in (/ops/).
		own, pattern = rs.enclosing(method, p)
	}
	if twin, _, ok, root := rs.match(method, p+"/"); ok && (root || !ownOK) {
		return Strictest(own, twin), pattern
	}
	return own, pattern
}

// enclosing returns the rule and pattern of the nearest subtree pattern
// that holds p, or the default and "".
func (rs *Routes) enclosing(method, p string) (Rule, string) {
	for dir := p; ; {
		i := strings.LastIndexByte(dir, '/')
		if i < 0 {
			return rs.def, ""
		}
		dir = dir[:i]
		r, pattern, ok, _ := rs.match(method, dir+"/")
		if ok && strings.HasSuffix(pattern, "/") {
			return r, pattern
		}
		if dir == "" {
			return rs.def, ""
		}
	}
}

// formatStem returns p without the format suffix of its last segment
// (".json" of /reports/summary.json), if it has one.
func formatStem(p string) (string, bool) {
	last := p[strings.LastIndexByte(p, '/')+1:]
	i := strings.LastIndexByte(last, '.')
	if i <= 0 || i == len(last)-1 {
		return "", false
	}
	return p[:len(p)-len(last)+i], true
}

// match returns the rule ServeMux chooses for method and a lower-case
// decoded path, or the default, with the pattern that matched (without
// its method); ok reports a pattern matched, root that it matched a path
// ending in "/" as its last segment rather than as a subtree the path
// lies deeper in.
func (rs *Routes) match(method, path string) (r Rule, pattern string, ok, root bool) {
	h, pattern := rs.mux.Handler(&http.Request{Method: method, URL: &url.URL{Path: path}})
	i, ok := h.(ruleHandler)
	if !ok {
		return rs.def, "", false, false
	}
	if j := strings.IndexAny(pattern, " \t"); j >= 0 {
		pattern = strings.TrimLeft(pattern[j:], " \t")
	}
	return rs.rules[i], pattern, true, strings.Count(pattern, "/") == strings.Count(path, "/")
}

// Strictest returns what satisfies both a and b: public only when both
// are; otherwise every scope either requires (the pattern of the one that
// requires more, for the record).
func Strictest(a, b Rule) Rule {
	switch {
	case b.Public:
		return a
	case a.Public:
		return b
	}
	if len(b.Scopes) > len(a.Scopes) {
		a, b = b, a
	}
	if len(b.Scopes) == 0 {
		return a
	}
	a.Scopes = gatehouse.NormalizeScopes(append(slices.Clone(a.Scopes), b.Scopes...))
	return a
}

func unhex2(a, b byte) (byte, bool) {
	x, ok1 := unhex(a)
	y, ok2 := unhex(b)
	return x<<4 | y, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Scopes returns every scope the rules (and the default) require: the
// platform's own scopes (SPEC §10.8), which only the operator grants.
func (rs *Routes) Scopes() gatehouse.Scopes {
	if rs == nil {
		return nil
	}
	var out []gatehouse.Scope
	for _, r := range append([]Rule{rs.def}, rs.rules...) {
		out = append(out, r.Scopes...)
	}
	return gatehouse.NormalizeScopes(out)
}
