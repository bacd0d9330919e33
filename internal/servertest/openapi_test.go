package servertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/localserver"
)

// recorder is a testing.TB that keeps the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestContractCheck: the check every Request makes reports an answer the
// server's OpenAPI document does not allow, and nothing else.
func TestContractCheck(t *testing.T) {
	env := Start(t)
	admin := env.AdminToken()
	me := env.As(admin, "GET", "/v1/me", nil)
	Expect(t, me, 200, "")
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for _, tc := range []struct {
		name, method, path string
		status             int
		body               string
		want               string // "" for no error
	}{
		{"a real answer", "GET", "/v1/me", 200, string(me.Body), ""},
		{"a field the document does not have", "GET", "/v1/me",
			200, strings.Replace(string(me.Body), `{"user"`, `{"password_hash":"x","user"`, 1), `property "password_hash" is unsupported`},
		{"a field missing", "GET", "/v1/me", 200, `{"user":null}`, "doesn't match schema"},
		{"a status the operation does not list", "GET", "/v1/users", http.StatusTeapot, `{"error":"x","error_description":"y"}`, "status is not supported"},
		{"an error code of another status", "GET", "/v1/users/usr_x", 404, `{"error":"conflict","error_description":"y"}`, "doesn't match schema"},
		{"a documented error", "GET", "/v1/users/usr_x", 404, `{"error":"not_found","error_description":"User not found"}`, ""},
		{"an error body without its description", "GET", "/v1/users/usr_x", 404, `{"error":"not_found"}`, "doesn't match schema"},
		{"a body on a 204", "DELETE", "/v1/workspaces/wsp_x", 204, `{"deleted":true}`, "a body the document does not have"},
		{"outside the document", "GET", "/admin/users", 200, "<html>", ""},
		{"an unknown path", "GET", "/v1/nothing", 404, `{"error":"not_found"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			e := &Env{T: rec, Server: env.Server, URL: env.URL, Client: env.Client}
			e.checkContract(tc.method, tc.path, []string{"Authorization", "Bearer " + admin},
				&localserver.Response{Status: tc.status, Header: jsonHeader, Body: []byte(tc.body)})
			got := strings.Join(rec.errs, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Fatalf("reported %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Fatalf("reported %q, want %q", got, tc.want)
			}
		})
	}
}
