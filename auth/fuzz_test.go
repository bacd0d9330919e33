package auth

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestBlankActAsHeader: an act-as header sent blank names nobody. With an
// API token it is invalid_user (not the header left out, which would make
// the request the anonymous admin's); with a bearer token, or alone, it is
// refused as the header always is without an API token.
func TestBlankActAsHeader(t *testing.T) {
	a := New(Config{})
	for _, tc := range []struct {
		headers map[string]string
		code    string
	}{
		{map[string]string{a.APITokenHeader(): "gak_x", a.UserEmailHeader(): ""}, gatehouse.EInvalidUser},
		{map[string]string{"Authorization": "Bearer gat_x", a.UserEmailHeader(): ""}, gatehouse.EInvalidRequest},
		{map[string]string{a.UserEmailHeader(): ""}, gatehouse.EInvalidRequest},
	} {
		r := httptest.NewRequest("GET", "/v1/me", nil)
		for name, v := range tc.headers {
			r.Header[name] = []string{v}
		}
		if _, _, _, err := a.Credentials(r); gatehouse.ErrorCode(err) != tc.code {
			t.Errorf("%v: %v, want %s", tc.headers, err, tc.code)
		}
	}
	// Left out, it is nobody's business: the token acts as itself.
	r := httptest.NewRequest("GET", "/v1/me", nil)
	r.Header.Set(a.APITokenHeader(), "gak_x")
	if _, tok, as, err := a.Credentials(r); err != nil || tok != "gak_x" || as != "" {
		t.Errorf("no act-as header: %q %q %v", tok, as, err)
	}
}

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
	f.Add("", "gak_x", "   ")
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
			case gatehouse.EInvalidUser:
				if strings.TrimSpace(actAs) != "" {
					t.Fatalf("invalid_user for the act-as header %q, which names someone", actAs)
				}
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
