package e2e

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestAPIAccessLastUse checks SPEC §10.8 "Last use" for an API access
// application over HTTP: using one of its access tokens (not only a
// refresh) shows in GET /v1/api-access, and the answer's fields are the
// ones docs/api-access.md lists, enabled and not.
func TestAPIAccessLastUse(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	docFields := apiAccessDocFields(t)

	off := env.As(admin, "GET", "/v1/api-access", nil)
	servertest.Expect(t, off, http.StatusOK, "")
	if got := keys(off.Map(t)); !slices.Equal(got, docFields["disabled"]) {
		t.Errorf("disabled answer has %v, docs/api-access.md lists %v", got, docFields["disabled"])
	}

	before := time.Now().Add(-time.Second)
	app := enableAPIAccess(t, env, admin, nil)
	if v := env.As(admin, "GET", "/v1/api-access", nil).Map(t); v["last_used_at"] != nil {
		t.Fatalf("a new application was used at %v", v["last_used_at"])
	}
	servertest.Expect(t, env.As(app.AccessToken, "GET", "/v1/me", nil), http.StatusOK, "")
	v := env.As(admin, "GET", "/v1/api-access", nil).Map(t)
	used, err := time.Parse(time.RFC3339Nano, v["last_used_at"].(string))
	if err != nil || used.Before(before) || used.After(time.Now().Add(time.Second)) {
		t.Fatalf("last_used_at after an access token's use: %v (%v)", v["last_used_at"], err)
	}
	if got := keys(v); !slices.Equal(got, docFields["enabled"]) {
		t.Errorf("enabled answer has %v, docs/api-access.md lists %v", got, docFields["enabled"])
	}
}

// apiAccessDocFields reads the fields docs/api-access.md gives for the
// answer of GET /v1/api-access, enabled and disabled, sorted.
func apiAccessDocFields(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/api-access.md")
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for l := range strings.SplitSeq(string(doc), "\n") {
		if strings.HasPrefix(l, "| `GET /v1/api-access` |") {
			line = l
		}
	}
	objs := regexp.MustCompile("`(\\{[^`]*\\})`").FindAllStringSubmatch(line, -1)
	if len(objs) != 2 {
		t.Fatalf("docs/api-access.md: no two answers in %q", line)
	}
	field := regexp.MustCompile(`"([a-z_]+)"`)
	out := map[string][]string{}
	for i, name := range []string{"enabled", "disabled"} {
		var fs []string
		for _, m := range field.FindAllStringSubmatch(objs[i][1], -1) {
			fs = append(fs, m[1])
		}
		slices.Sort(fs)
		out[name] = fs
	}
	return out
}

// keys returns the sorted keys of m.
func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
