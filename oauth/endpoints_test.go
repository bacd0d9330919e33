package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/admission"
	"github.com/gatehouse/gatehouse/auth"
	"github.com/gatehouse/gatehouse/service"
)

// TestEndpointsRefuseMixedCredentials: revocation and introspection
// refuse, before any credential is looked up (the service here is nil),
// a request that authenticates two ways — an API token with client
// credentials, a bearer token with body credentials — and the act-as-user
// header with anything but an API token (SPEC §3.2), whatever names the
// headers are configured under.
func TestEndpointsRefuseMixedCredentials(t *testing.T) {
	const (
		apiHeader  = "X-Gate-Key"
		userHeader = "X-Gate-User"
		basic      = "Basic Z2NpX2E6Z2NzX2I=" // gci_a:gcs_b
	)
	e := &Endpoints{Admit: admission.New(admission.Config{Auth: auth.New(auth.Config{APITokenHeader: apiHeader, UserEmailHeader: userHeader})})}
	for _, tc := range []struct {
		name    string
		body    string
		headers map[string]string
	}{
		{"act-as with basic", "token=t", map[string]string{"Authorization": basic, userHeader: "ann@example.com"}},
		{"act-as with body client credentials", "token=t&client_id=gci_a&client_secret=gcs_b", map[string]string{userHeader: "ann@example.com"}},
		{"act-as with a public client id", "token=t&client_id=gci_a", map[string]string{userHeader: "ann@example.com"}},
		{"act-as alone", "token=t", map[string]string{userHeader: "ann@example.com"}},
		{"blank act-as with basic", "token=t", map[string]string{"Authorization": basic, userHeader: ""}},
		{"act-as with bearer", "token=t", map[string]string{"Authorization": "Bearer gat_x", userHeader: "ann@example.com"}},
		{"API token with basic", "token=t", map[string]string{"Authorization": basic, apiHeader: "gak_x"}},
		{"API token with an empty basic pair", "token=t", map[string]string{"Authorization": "Basic Og==", apiHeader: "gak_x"}},
		{"API token with body client credentials", "token=t&client_id=gci_a&client_secret=gcs_b", map[string]string{apiHeader: "gak_x"}},
		{"API token with a public client id", "token=t&client_id=gci_a", map[string]string{apiHeader: "gak_x"}},
		{"API token with bearer", "token=t", map[string]string{"Authorization": "Bearer gat_x", apiHeader: "gak_x"}},
		{"bearer with body client id", "token=t&client_id=gci_a", map[string]string{"Authorization": "Bearer gat_x"}},
		{"bearer with body secret", "token=t&client_secret=gcs_b", map[string]string{"Authorization": "Bearer gat_x"}},
	} {
		for path, h := range map[string]http.HandlerFunc{"/oauth/revoke": e.Revoke, "/oauth/introspect": e.Introspect} {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				r := httptest.NewRequest("POST", path, strings.NewReader(tc.body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tc.headers {
					r.Header[http.CanonicalHeaderKey(k)] = []string{v}
				}
				w := httptest.NewRecorder()
				h(w, r)
				var body struct {
					Error string `json:"error"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusBadRequest || body.Error != "invalid_request" {
					t.Fatalf("%d %s, want 400 invalid_request", w.Code, w.Body)
				}
				if w.Header().Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
				}
			})
		}
	}
}

// calledGrant records whether a token request reached it.
type calledGrant struct{ called bool }

func (g *calledGrant) Token(context.Context, *Request) (*service.Issued, error) {
	g.called = true
	return &service.Issued{AccessToken: "gat_x"}, nil
}

// TestTokenEndpointRefusesActAs: the token endpoints (/oauth/token and
// /authorization) take no API token, so a request that sends the act-as
// header, under whatever name it is configured, is 400 invalid_request
// before any grant runs (SPEC §3.2) — never a token for the client or
// password user while the caller asked for someone else.
func TestTokenEndpointRefusesActAs(t *testing.T) {
	const userHeader = "X-Gate-User"
	for _, tc := range []struct {
		name, body string
		headers    map[string]string
		serve      func(*Handler) http.HandlerFunc
	}{
		{"client credentials with basic", "grant_type=client_credentials", map[string]string{"Authorization": "Basic Z2NpX2E6Z2NzX2I=", userHeader: "ann@example.com"}, func(h *Handler) http.HandlerFunc { return h.ServeHTTP }},
		{"client credentials in the body", "grant_type=client_credentials&client_id=gci_a&client_secret=gcs_b", map[string]string{userHeader: "ann@example.com"}, func(h *Handler) http.HandlerFunc { return h.ServeHTTP }},
		{"password grant", "grant_type=password&username=bob@example.com&password=p", map[string]string{userHeader: ""}, func(h *Handler) http.HandlerFunc { return h.ServeHTTP }},
		{"/authorization", "username=bob@example.com&password=p", map[string]string{userHeader: "ann@example.com"}, func(h *Handler) http.HandlerFunc { return h.Authorization }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &calledGrant{}
			h := NewHandler()
			h.UserEmailHeader = userHeader
			h.Register("client_credentials", g)
			h.Register("password", g)
			r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				r.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			w := httptest.NewRecorder()
			tc.serve(h)(w, r)
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != http.StatusBadRequest || body.Error != "invalid_request" {
				t.Fatalf("%d %s, want 400 invalid_request", w.Code, w.Body)
			}
			if g.called {
				t.Fatal("the grant ran")
			}
			if w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", w.Header().Get("Cache-Control"))
			}
		})
	}
}
