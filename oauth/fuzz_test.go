package oauth

import (
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
)

// FuzzParseRequest feeds arbitrary token requests — body, content type,
// query and Authorization header — to the token endpoint's parser: it never
// panics, refuses only with invalid_request or payload_too_large, and what
// it accepts has each parameter once, as clean text, and one way to
// authenticate.
func FuzzParseRequest(f *testing.F) {
	f.Add("grant_type=client_credentials&client_id=a&client_secret=b", "application/x-www-form-urlencoded", "", "")
	f.Add(`{"grant_type":"refresh_token","client_id":"gci_x","refresh_token":"grt_y"}`, "application/json", "", "")
	f.Add(`{"a":"1","a":"2"}`, "application/json", "", "")
	f.Add(`{"a":1}`, "application/json; charset=utf-8", "", "")
	f.Add("grant_type=password", "", "username=a&password=b", "")
	f.Add("grant_type=client_credentials", "application/x-www-form-urlencoded", "", "Basic YTpi")
	f.Add("client_secret=x", "application/x-www-form-urlencoded", "", "Basic YTpi")
	f.Add("", "", "", "Basic !!!")
	f.Add("", "", "", "Bearer x")
	f.Add("client_id=a", "application/x-www-form-urlencoded", "", "Bearer x")
	f.Fuzz(func(t *testing.T, body, contentType, query, authz string) {
		r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(body))
		r.URL.RawQuery = query
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		req, err := ParseRequest(httptest.NewRecorder(), r, true)
		if err != nil {
			switch gatehouse.ErrorCode(err) {
			case gatehouse.EInvalidRequest, gatehouse.EPayloadTooLarge:
			default:
				t.Fatalf("code %q for %q: %v", gatehouse.ErrorCode(err), body, err)
			}
			return
		}
		for k, v := range req.Params {
			if httpx.CheckText("x", k+v) != nil {
				t.Fatalf("accepted bad parameter %q=%q", k, v)
			}
		}
		if !utf8.ValidString(req.ClientID + req.ClientSecret) {
			t.Fatalf("bad client credentials accepted")
		}
		if req.Basic && req.Params["client_secret"] != "" {
			t.Fatalf("client authenticated twice")
		}
		if req.Bearer && (req.ClientID != "" || req.ClientSecret != "" || req.Basic) {
			t.Fatalf("bearer token and client credentials both accepted")
		}
	})
}
