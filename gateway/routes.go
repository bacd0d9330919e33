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
	"path"
	"path/filepath"
	"reflect"
	"regexp"
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
	rs.mux.Handle(r.Pattern, ruleHandler(i))
	return nil
}

// Len returns the number of rules, the default not counted.
func (rs *Routes) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// Match returns the rule for a request of method to u: the rule whose
// pattern http.ServeMux would choose for it, or the default when none
// matches (the zero Rule without one, and always for a nil *Routes). The
// path is matched once normalised as RFC 3986 allows and ServeMux does:
// percent-encoded unreserved characters decoded, dot segments and repeated
// slashes removed. A trailing-slash redirect is not a match. A public rule
// counts only for a path cleaning leaves as it is, with no backslash or
// semicolon and no encoded slash, backslash or semicolon, which a server
// behind might read differently; another path gets the default instead.
func (rs *Routes) Match(method string, u *url.URL) Rule {
	if rs == nil || u == nil {
		return Rule{}
	}
	escaped := u.EscapedPath()
	if !strings.HasPrefix(escaped, "/") {
		return rs.def
	}
	norm, plain := normalPath(escaped)
	nu := u
	if norm != escaped {
		var err error
		if nu, err = url.Parse(norm); err != nil {
			return rs.def
		}
	}
	h, _ := rs.mux.Handler(&http.Request{Method: method, URL: nu})
	i, ok := h.(ruleHandler)
	if !ok {
		return rs.def
	}
	r := rs.rules[i]
	if r.Public && !plain {
		return rs.def
	}
	return r
}

// normalPath returns escaped with percent-encoded unreserved characters
// decoded (RFC 3986 §6.2.2.2) and cleaned as http.ServeMux cleans paths;
// plain reports whether cleaning changed nothing and escaped holds no
// character some servers read as a separator: '\', ';', or an encoded '/',
// '\' or ';'.
func normalPath(escaped string) (norm string, plain bool) {
	// The common case: nothing to decode, no dot segment, no empty one.
	if !strings.ContainsAny(escaped, `%\;`) && !strings.Contains(escaped, "//") && !strings.Contains(escaped, "/.") {
		return escaped, true
	}
	var b strings.Builder
	for i := 0; i < len(escaped); i++ {
		c := escaped[i]
		if c == '%' && i+2 < len(escaped) {
			if d, ok := unhex2(escaped[i+1], escaped[i+2]); ok && unreserved(d) {
				b.WriteByte(d)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	decoded := b.String()
	norm = cleanPath(decoded)
	lower := strings.ToLower(escaped)
	plain = norm == decoded && !strings.ContainsAny(escaped, `\;`) &&
		!strings.Contains(lower, "%2f") && !strings.Contains(lower, "%5c") && !strings.Contains(lower, "%3b")
	return norm, plain
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

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// cleanPath is http.ServeMux's path cleaning: path.Clean, keeping a
// trailing slash.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
