package gateway

import (
	"net/http"
	"path"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pathattack"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		method, escaped string
		path            string // want; "" for refused
		why             string // part of the refusal
	}{
		{"GET", "/", "/", ""},
		{"GET", "/a/b/", "/a/b/", ""},
		{"GET", "/a/%41", "/a/A", ""},
		{"GET", "/a/%7e/caf%C3%A9", "/a/~/café", ""},
		{"GET", "/a/%20b", "/a/ b", ""},
		{"GET", "/a/.hidden/b.", "/a/.hidden/b.", ""},
		{"GET", "/a/...", "/a/...", ""},
		{"M-SEARCH", "/x", "/x", ""},
		{"get", "/x", "", "upper-case token"},
		{"Get", "/x", "", "upper-case token"},
		{"GET /x", "/x", "", "upper-case token"},
		{"", "/x", "", "upper-case token"},
		{"GET", "*", "", "start with /"},
		{"GET", "a/b", "", "start with /"},
		{"GET", "/a/%2f", "", "encoded"},
		{"GET", "/a%2Fb", "", "encoded"},
		{"GET", "/a%5Cb", "", "encoded"},
		{"GET", "/a%255cb", "", "encoded"},
		{"GET", "/a/%252e%252e/b", "", "encoded"},
		{"GET", "/a%3Fb", "", "encoded"},
		{"GET", "/a%23b", "", "encoded"},
		{"GET", "/a%3bb", "", "path parameter"},
		{"GET", "/a;b", "", "path parameters"},
		{"GET", "/a/..;/b", "", "path parameters"},
		{"GET", `/a\b`, "", `\`},
		{"GET", "/a%00b", "", "control"},
		{"GET", "/a%0d%0ab", "", "control"},
		{"GET", "/a\x7fb", "", "control"},
		{"GET", "/a/%", "", "malformed"},
		{"GET", "/a/%2", "", "malformed"},
		{"GET", "/a/%zz", "", "malformed"},
		{"GET", "/a/%c0%ae%c0%ae/b", "", "UTF-8"},
		{"GET", "/a/%c0%af", "", "UTF-8"},
		{"GET", "/a/%e0%80%ae", "", "UTF-8"},
		{"GET", "/a/%ff", "", "UTF-8"},
		{"GET", "/a/../b", "", "dot segment"},
		{"GET", "/a/./b", "", "dot segment"},
		{"GET", "/a/..", "", "dot segment"},
		{"GET", "/a/.", "", "dot segment"},
		{"GET", "/a/%2e%2e/b", "", "dot segment"},
		{"GET", "/a/.%2E/", "", "dot segment"},
		{"GET", "//a", "", "empty segment"},
		{"GET", "/a//b", "", "empty segment"},
		{"GET", "/a//", "", "empty segment"},
	} {
		tg, err := Canonical(tc.method, tc.escaped, nil)
		switch {
		case tc.path != "" && err != nil:
			t.Errorf("Canonical(%q, %q): %v", tc.method, tc.escaped, err)
		case tc.path != "" && (tg.Path != tc.path || !slices.Equal(tg.Methods, []string{tc.method})):
			t.Errorf("Canonical(%q, %q) = %+v, want path %q", tc.method, tc.escaped, tg, tc.path)
		case tc.path == "" && err == nil:
			t.Errorf("Canonical(%q, %q) = %+v, want a refusal", tc.method, tc.escaped, tg)
		case tc.path == "" && (gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("Canonical(%q, %q): %v, want invalid_request with %q", tc.method, tc.escaped, err, tc.why)
		}
	}
	// Method overrides join the methods, upper-cased; a bad one is refused.
	tg, err := Canonical("GET", "/x", http.Header{"X-Http-Method-Override": {"delete"}, "X_method_override": {" PUT "}, "Accept": {"*/*"}})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tg.Methods[1:])
	if !slices.Equal(tg.Methods, []string{"GET", "DELETE", "PUT"}) {
		t.Fatalf("methods %v", tg.Methods)
	}
	if _, err := Canonical("GET", "/x", http.Header{"X-Http-Method": {"POST, DELETE"}}); gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
		t.Fatalf("override list: %v", err)
	}
}

// TestCanonicalOverridesBounded: a method named again by the override
// headers counts once, and more than three others are refused.
func TestCanonicalOverridesBounded(t *testing.T) {
	h := http.Header{"X-Http-Method": make([]string, 1500)}
	for i := range h["X-Http-Method"] {
		h["X-Http-Method"][i] = "get"
	}
	tg, err := Canonical("POST", "/a", h)
	if err != nil || !slices.Equal(tg.Methods, []string{"POST", "GET"}) {
		t.Fatalf("one method named 1,500 times: %d methods %.60v, %v", len(tg.Methods), tg.Methods, err)
	}
	h = http.Header{"X-Http-Method": {"PUT", "PATCH"}, "X-Method-Override": {"DELETE", "GET"}}
	if _, err := Canonical("POST", "/a", h); err == nil {
		t.Fatal("four other methods accepted")
	}
}

func TestIsMethodOverride(t *testing.T) {
	for name, want := range map[string]bool{
		"X-HTTP-Method-Override": true, "x-http-method-override": true, "X_HTTP_METHOD_OVERRIDE": true,
		"X-Http-Method": true, "X-Method-Override": true, "x_method-override": true,
		"X-HTTP-Methods": false, "X-Method": false, "X-HTTP-Method-Overrides": false, "Method": false, "": false,
	} {
		if got := IsMethodOverride(name); got != want {
			t.Errorf("IsMethodOverride(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestIsProxyDecided: the "_" spellings of the headers the gateway
// decides go, and so do True-Client-Ip, the path overrides and
// X-Forwarded-Prefix in any spelling; the gateway's own spellings stay,
// to be set by it, and other headers are not its business.
func TestIsProxyDecided(t *testing.T) {
	for name, want := range map[string]bool{
		"X_Real_Ip": true, "x_forwarded_for": true, "X_Forwarded_Proto": true, "X_forwarded_host": true, "X_Request_Id": true,
		"True-Client-Ip": true, "True_client_ip": true, "X-Original-Url": true, "X_Original_URL": true, "X-Rewrite-Url": true,
		"X-Forwarded-Prefix": true, "x_forwarded_prefix": true,
		"X-Real-Ip": false, "X-Forwarded-For": false, "X-Forwarded-Proto": false, "X-Forwarded-Host": false, "Forwarded": false,
		"X-Request-Id": false, "X_Real_Ip_2": false, "X-Original-Uri": false, "Accept": false, "": false,
	} {
		if got := IsProxyDecided(name); got != want {
			t.Errorf("IsProxyDecided(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestPathAttackTable runs every spelling of the one path-confusion table
// through Canonical and Match with its rules: each is refused, or gets
// the rule it aims at, so a token without that rule's scope is refused.
func TestPathAttackTable(t *testing.T) {
	rs, err := ParseRoutes([]byte(pathattack.Rules), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	narrow := gatehouse.Scopes{}
	for _, s := range pathattack.NarrowScopes {
		narrow = append(narrow, gatehouse.Scope(s))
	}
	for _, c := range pathattack.Cases {
		t.Run(c.Name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(c.Header); i += 2 {
				h.Add(c.Header[i], c.Header[i+1])
			}
			path, _, _ := strings.Cut(c.Target, "?")
			tg, err := Canonical(c.Method, path, h)
			switch c.Want {
			case pathattack.Refused:
				if gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
					t.Fatalf("%s %s: %v %+v, want refused", c.Method, c.Target, err, tg)
				}
			case pathattack.Matched:
				if err != nil {
					t.Fatalf("%s %s: %v", c.Method, c.Target, err)
				}
				r := rs.Match(tg)
				if r.Public || !slices.Contains(r.Scopes, gatehouse.Scope(c.Scope)) {
					t.Fatalf("%s %s matched %+v, want a rule needing %s", c.Method, c.Target, r, c.Scope)
				}
				if slices.ContainsFunc(r.Scopes, func(s gatehouse.Scope) bool { return slices.Contains(narrow, s) }) {
					t.Fatalf("the narrow token would pass %+v", r)
				}
			default:
				t.Fatalf("case without an outcome")
			}
		})
	}
}

func TestStripOwnCookies(t *testing.T) {
	h := http.Header{"Set-Cookie": {
		"gatehouse_session=evil; Path=/admin; HttpOnly",
		"Gatehouse_Login_CSRF=known; Path=/admin/login",
		" gatehouse_secret_x=1",
		"app=1; Path=/",
		"gatehouses=2",
	}}
	stripOwnCookies(h)
	if got := h["Set-Cookie"]; !slices.Equal(got, []string{"app=1; Path=/", "gatehouses=2"}) {
		t.Fatalf("kept %q", got)
	}
	h = http.Header{"Set-Cookie": {"gatehouse_flash=x"}}
	stripOwnCookies(h)
	if _, ok := h["Set-Cookie"]; ok {
		t.Fatalf("kept %q", h["Set-Cookie"])
	}
}

// FuzzCanonical: whatever Canonical accepts is one path to every server —
// cleaning leaves it as it is, it holds no separator another server could
// read, it is valid UTF-8 — and its rule does not depend on the case of
// its ASCII letters.
func FuzzCanonical(f *testing.F) {
	for _, c := range pathattack.Cases {
		f.Add(c.Method, c.Target)
	}
	f.Add("GET", "/a/%41/b/")
	rs, err := ParseRoutes([]byte(pathattack.Rules), "yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, escaped string) {
		tg, err := Canonical(method, escaped, nil)
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		p := tg.Path
		if !utf8.ValidString(p) || strings.ContainsAny(p, "\\;") || strings.Contains(p, "//") {
			t.Fatalf("accepted %q as %q", escaped, p)
		}
		clean := path.Clean(p)
		if strings.HasSuffix(p, "/") && p != "/" {
			clean += "/"
		}
		if clean != p {
			t.Fatalf("accepted %q as %q, which cleaning makes %q", escaped, p, clean)
		}
		// ASCII letters in upper case (Unicode case mappings need not
		// round-trip: ı upper-cases to I).
		upper := Target{Methods: tg.Methods, Path: strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' {
				return r - 'a' + 'A'
			}
			return r
		}, p)}
		if a, b := rs.Match(tg), rs.Match(upper); !equalRule(a, b) {
			t.Fatalf("%q matched %+v, in upper case %+v", p, a, b)
		}
	})
}
