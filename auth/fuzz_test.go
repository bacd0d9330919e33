package auth

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// FuzzCredentials feeds arbitrary Authorization, API-token and act-as
// header values to the credential parser: it never panics, refuses with
// invalid_request or invalid_token, and never accepts a user header without
// an API token or two credentials at once.
func FuzzCredentials(f *testing.F) {
	f.Add("Bearer gat_x", "", "")
	f.Add("", "gak_x", "ann@example.com")
	f.Add("Bearer gat_x", "gak_x", "")
	f.Add("", "", "ann@example.com")
	f.Add("Basic YTpi", "", "")
	f.Add("bearer    ", "", "")
	f.Add("", "gak_x", "a\r\nb")
	f.Fuzz(func(t *testing.T, authz, apiToken, actAs string) {
		a := New(Config{})
		r := httptest.NewRequest("GET", "/v1/me", nil)
		for name, v := range map[string]string{"Authorization": authz, a.APITokenHeader(): apiToken, a.UserEmailHeader(): actAs} {
			if v != "" {
				r.Header[name] = []string{v}
			}
		}
		bearer, tok, as, err := a.Credentials(r)
		if err != nil {
			switch gatehouse.ErrorCode(err) {
			case gatehouse.EInvalidRequest, gatehouse.EInvalidToken:
			default:
				t.Fatalf("code %q", gatehouse.ErrorCode(err))
			}
			return
		}
		if bearer != "" && tok != "" {
			t.Fatal("two credentials accepted")
		}
		if as != "" && tok == "" {
			t.Fatal("act-as accepted without an API token")
		}
		if strings.ContainsAny(bearer+tok+as, "\r\n\x00") {
			t.Fatal("control characters accepted")
		}
	})
}
