package gateway

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

func TestIsIdentityHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Gatehouse-User-Id":   true,
		"x-gatehouse-roles":     true,
		"X_Gatehouse_Roles":     true,
		"x_GATEHOUSE-user_id":   true,
		"X-Gatehouse_Scopes":    true,
		"X-Gatehouse-":          true,
		"X-Gatehouse":           false,
		"X-Gatehouses-Roles":    false,
		"X-Gate-House-Roles":    false,
		"Gatehouse-Roles":       false,
		"X-Forwarded-For":       false,
		"X-Gatehouse\x00-Roles": false,
	} {
		if got := IsIdentityHeader(name); got != want {
			t.Errorf("IsIdentityHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestStripClientHeaders(t *testing.T) {
	h := http.Header{
		"X-Gatehouse-User-Id": {"usr_forged"},
		"X_gatehouse_roles":   {"admin"},
		"x-gatehouse-extra":   {"1"},
		"X-Smuggled":          {"secret"},
		"x-other-listed":      {"2"},
		"X-Kept":              {"ok"},
		"Accept":              {"*/*"},
	}
	StripClientHeaders(h, []string{"keep-alive, X-Smuggled", " X-Other-Listed ,"})
	var left []string
	for name := range h {
		left = append(left, name)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"Accept", "X-Kept"}) {
		t.Fatalf("left %v", left)
	}
}

func TestOriginalRequest(t *testing.T) {
	for _, tc := range []struct {
		name         string
		h            http.Header
		method, path string // want; path "" for no original request
		err          string // part of the error
	}{
		{name: "none", h: http.Header{}},
		{name: "nginx", h: http.Header{"X-Original-Method": {"POST"}, "X-Original-Uri": {"/v1/chains/c1/execute?x=1"}},
			method: "POST", path: "/v1/chains/c1/execute"},
		{name: "traefik", h: http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/public/a"}},
			method: "GET", path: "/public/a"},
		{name: "both agree", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/a"},
			"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/a"}}, method: "GET", path: "/a"},
		{name: "absolute form", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"http://api.example.com/a/b"}},
			method: "GET", path: "/a/b"},
		{name: "double slash is a path", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"//public/a"}},
			method: "GET", path: "//public/a"},
		{name: "a client's pair against the proxy's", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/public/x"},
			"X-Forwarded-Method": {"POST"}, "X-Forwarded-Uri": {"/v1/chains/c1/execute"}}, err: "name another request"},
		{name: "same path, other method", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/a"},
			"X-Forwarded-Method": {"POST"}, "X-Forwarded-Uri": {"/a"}}, err: "name another request"},
		{name: "URI without method", h: http.Header{"X-Original-Uri": {"/a"}}, err: "X-Original-URI header comes with X-Original-Method"},
		{name: "method without URI", h: http.Header{"X-Forwarded-Method": {"GET"}}},
		{name: "repeated", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/public/x", "/v1/x"}}, err: "must be sent once"},
		{name: "bad method", h: http.Header{"X-Original-Method": {"GET /x"}, "X-Original-Uri": {"/a"}}, err: "is not a method"},
		{name: "bad URI", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"/a%zz"}}, err: "is not a request URI"},
		{name: "relative URI", h: http.Header{"X-Original-Method": {"GET"}, "X-Original-Uri": {"a/b"}}, err: "is not a request URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, u, err := OriginalRequest(tc.h)
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || gatehouse.ErrorCode(err) != gatehouse.EInvalidRequest {
					t.Fatalf("err %v, want invalid_request with %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.path == "":
				if u != nil {
					t.Fatalf("original request %s %v, want none", method, u)
				}
			case u == nil || method != tc.method || u.Path != tc.path:
				t.Fatalf("original request %s %v, want %s %s", method, u, tc.method, tc.path)
			}
		})
	}
}

// TestSetIdentity: the identity headers, under their canonical names (so
// that Header.Get finds them), replacing whatever a handler had set, and
// without user headers for an API token's anonymous admin; a sealed
// principal answers the same as an unsealed one.
func TestSetIdentity(t *testing.T) {
	user := &gatehouse.User{ID: "usr_1", Email: "ada@example.com", Roles: gatehouse.Roles{gatehouse.RoleAdmin, gatehouse.RoleDeveloper}}
	for _, p := range []*gatehouse.Principal{
		{AccountID: "acc_1", User: user, Method: gatehouse.MethodPassword, Scopes: gatehouse.Scopes{"users:read"}},
		(&gatehouse.Principal{AccountID: "acc_1", User: user, Method: gatehouse.MethodPassword, Scopes: gatehouse.Scopes{"users:read"}}).Seal(),
		{AccountID: "acc_2", Method: gatehouse.MethodAPIToken, Scopes: gatehouse.Scopes{"users:read"}},
	} {
		h := http.Header{}
		h.Set(HeaderRoles, "made-up")
		h.Set(HeaderUserID, "usr_forged")
		SetIdentity(h, p)
		want := map[string]string{HeaderAccountID: p.AccountID, HeaderRoles: p.Roles().String(),
			HeaderAuthMethod: string(p.Method), HeaderScopes: "users:read"}
		if p.User != nil {
			want[HeaderUserID], want[HeaderUserEmail] = "usr_1", "ada@example.com"
		} else {
			want[HeaderUserID] = "usr_forged" // not ours to remove: StripClientHeaders does
		}
		for name, v := range want {
			if http.CanonicalHeaderKey(name) != name || len(h.Values(name)) != 1 || h.Get(name) != v {
				t.Errorf("%s: %q, want %q", name, h.Values(name), v)
			}
		}
		h.Add(HeaderRoles, "appended")
		if p.User != nil && h.Get(HeaderUserID) != "usr_1" {
			t.Error("appending to one header changed another")
		}
	}
}
