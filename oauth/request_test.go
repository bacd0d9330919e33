package oauth

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestParseRequestOneAuthenticationMethod: RFC 6749 §2.3 — a request
// authenticates one way. Client credentials in HTTP Basic and in the
// body, or in the body with a bearer token, are invalid_request; a bearer
// token alone is kept for the caller to authenticate, with no client.
func TestParseRequestOneAuthenticationMethod(t *testing.T) {
	const basic = "Basic Z2NpX2E6Z2NzX2I=" // gci_a:gcs_b
	for _, tc := range []struct {
		name, body, authz string
		code              string // "" for accepted
		bearer, basicOK   bool
		clientID          string
	}{
		{"bearer alone", "token=t", "Bearer gat_x", "", true, false, ""},
		{"bearer and body client_id", "token=t&client_id=gci_a", "Bearer gat_x", gatehouse.EInvalidRequest, false, false, ""},
		{"bearer and body secret", "token=t&client_secret=gcs_b", "Bearer gat_x", gatehouse.EInvalidRequest, false, false, ""},
		{"bearer and body client credentials", "token=t&client_id=gci_a&client_secret=gcs_b", "bearer gat_x", gatehouse.EInvalidRequest, false, false, ""},
		{"basic alone", "token=t", basic, "", false, true, "gci_a"},
		{"basic and body secret", "token=t&client_secret=gcs_b", basic, gatehouse.EInvalidRequest, false, false, ""},
		{"basic and another body client_id", "token=t&client_id=gci_other", basic, gatehouse.EInvalidRequest, false, false, ""},
		{"body alone", "token=t&client_id=gci_a&client_secret=gcs_b", "", "", false, false, "gci_a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/oauth/revoke", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			req, err := ParseRequest(httptest.NewRecorder(), r, false)
			if tc.code != "" {
				if gatehouse.ErrorCode(err) != tc.code {
					t.Fatalf("err %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Bearer != tc.bearer || req.Basic != tc.basicOK || req.ClientID != tc.clientID {
				t.Fatalf("Bearer %v Basic %v ClientID %q, want %v %v %q", req.Bearer, req.Basic, req.ClientID, tc.bearer, tc.basicOK, tc.clientID)
			}
		})
	}
}
