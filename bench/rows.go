package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// DefaultRows are the scenarios of `gatehouse bench`.
func DefaultRows() []Row {
	return []Row{
		{Name: "GET /v1/me (bearer)", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			return Scenario{Next: get(e.URL+"/v1/me", "Authorization", "Bearer "+e.AdminToken), Want: http.StatusOK}, nil
		}},
		{Name: "GET /v1/me (API token, act-as)", Setup: setupAPIToken},
		{Name: "GET /v1/auth/check (forward auth)", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			return Scenario{Next: get(e.URL+"/v1/auth/check", "Authorization", "Bearer "+e.AdminToken), Want: http.StatusOK}, nil
		}},
		{Name: "GET /v1/auth/check (client credential, no plan)", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			return setupCredentialCheck(ctx, e, false)
		}},
		{Name: "GET /v1/auth/check (plans: limits, quota)", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			return setupCredentialCheck(ctx, e, true)
		}},
		{Name: "gateway → baseline handler", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			return Scenario{Next: get(e.URL+"/api/anything", "Authorization", "Bearer "+e.AdminToken), Want: http.StatusOK}, nil
		}},
		{Name: "client credentials issuance", Setup: setupClientCredentials},
		{Name: "refresh (rotating)", Setup: setupRefresh},
		{Name: "password grant (argon2id)", Setup: func(ctx context.Context, e *Env, _ int) (Scenario, error) {
			body := url.Values{"username": {e.AdminEmail}, "password": {e.AdminPasswd}}.Encode()
			// Beyond the hasher's running and waiting turns a sign-in is
			// refused with 503 by design; measure within them.
			l := e.Server.Service.PasswordLimits()
			return Scenario{Want: http.StatusOK, MaxConcurrency: l.Concurrency + l.Queue,
				Next: func(int, int) *http.Request { return formPost(e.URL+"/authorization", body) }}, nil
		}},
	}
}

// get returns requests for GET u with the given header name/value pairs.
func get(u string, headers ...string) Request {
	return func(int, int) *http.Request {
		req, _ := http.NewRequest("GET", u, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return req
	}
}

// formPost returns a POST to u of the encoded form body.
func formPost(u, body string) *http.Request {
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// setupClientCredentials makes a developer with a credential.
func setupClientCredentials(ctx context.Context, e *Env, _ int) (Scenario, error) {
	email := "bench-dev@example.com"
	_, err := e.Do("POST", "/v1/users", e.AdminToken, map[string]any{"email": email, "password": benchPassword, "roles": []string{"developer"}}, http.StatusCreated)
	if err != nil {
		return Scenario{}, err
	}
	dev, err := e.Login(email, benchPassword)
	if err != nil {
		return Scenario{}, err
	}
	c, err := e.Do("POST", "/v1/credentials", dev, map[string]string{"name": "bench"}, http.StatusCreated)
	if err != nil {
		return Scenario{}, err
	}
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}.Encode()
	return Scenario{Want: http.StatusOK, Next: func(int, int) *http.Request { return formPost(e.URL+"/oauth/token", body) }}, nil
}

// setupCredentialCheck makes a developer and a client credential and
// returns forward-auth checks with the credential's token. With plans, the
// developer has a rate limit of their own and the credential a rate limit
// and a monthly quota (SPEC §10.5), all far above what the run sends: each
// request counts against the account's budgets, both plans' and the
// quota, in the same one step as without plans — the row without them is
// the same credential's, to compare with.
func setupCredentialCheck(ctx context.Context, e *Env, plans bool) (Scenario, error) {
	huge := map[string]int{"daily": 100_000_000, "burst": 1_000_000, "burst_window_seconds": 1}
	name := "bench-noplan"
	if plans {
		name = "bench-plans"
	}
	u, err := e.Do("POST", "/v1/users", e.AdminToken, map[string]any{"email": name + "@example.com", "password": benchPassword, "roles": []string{"developer"}}, http.StatusCreated)
	if err != nil {
		return Scenario{}, err
	}
	credential := map[string]any{"name": name}
	if plans {
		if _, err := e.Do("PATCH", "/v1/users/"+u["id"].(string), e.AdminToken, map[string]any{"rate_limit": huge}, http.StatusOK); err != nil {
			return Scenario{}, err
		}
		credential["rate_limit"] = huge
		credential["quota"] = map[string]any{"limit": 1_000_000_000, "period": "month"}
	}
	dev, err := e.Login(name+"@example.com", benchPassword)
	if err != nil {
		return Scenario{}, err
	}
	c, err := e.Do("POST", "/v1/credentials", dev, credential, http.StatusCreated)
	if err != nil {
		return Scenario{}, err
	}
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {c["client_id"].(string)}, "client_secret": {c["client_secret"].(string)}}.Encode()
	resp, err := http.DefaultClient.Do(formPost(e.URL+"/oauth/token", body).WithContext(ctx))
	if err != nil {
		return Scenario{}, err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		return Scenario{}, fmt.Errorf("%s: token: %d %v", name, resp.StatusCode, err)
	}
	return Scenario{Next: get(e.URL+"/v1/auth/check", "Authorization", "Bearer "+tok.AccessToken), Want: http.StatusOK}, nil
}

// setupRefresh gives every worker an admin with API access and refreshes
// along each worker's own chain.
func setupRefresh(ctx context.Context, e *Env, workers int) (Scenario, error) {
	clients := make([]string, workers)
	chains := make([]string, workers)
	for w := 0; w < workers; w++ {
		email := fmt.Sprintf("bench-admin-%d@example.com", w)
		if _, err := e.Do("POST", "/v1/users", e.AdminToken, map[string]any{"email": email, "password": benchPassword, "roles": []string{"admin"}}, http.StatusCreated); err != nil {
			return Scenario{}, err
		}
		tok, err := e.Login(email, benchPassword)
		if err != nil {
			return Scenario{}, err
		}
		app, err := e.Do("POST", "/v1/api-access", tok, nil, http.StatusCreated)
		if err != nil {
			return Scenario{}, err
		}
		clients[w], chains[w] = app["client_id"].(string), app["refresh_token"].(string)
	}
	var mu sync.Mutex
	return Scenario{
		Want: http.StatusOK,
		Next: func(w, _ int) *http.Request {
			mu.Lock()
			body := url.Values{"grant_type": {"refresh_token"}, "client_id": {clients[w]}, "refresh_token": {chains[w]}}.Encode()
			mu.Unlock()
			return formPost(e.URL+"/oauth/token", body)
		},
		Observe: func(w int, body []byte) {
			var out struct {
				RefreshToken string `json:"refresh_token"`
			}
			if json.Unmarshal(body, &out) == nil && out.RefreshToken != "" {
				mu.Lock()
				chains[w] = out.RefreshToken
				mu.Unlock()
			}
		},
	}, nil
}

// setupAPIToken turns the extension on and makes a token acting as the
// admin.
func setupAPIToken(ctx context.Context, e *Env, _ int) (Scenario, error) {
	if _, err := e.Do("PUT", "/v1/extensions/api_tokens", e.AdminToken, map[string]bool{"enabled": true}, http.StatusOK); err != nil {
		return Scenario{}, err
	}
	t, err := e.Do("POST", "/v1/api-tokens", e.AdminToken, map[string]string{"name": "bench"}, http.StatusCreated)
	if err != nil {
		return Scenario{}, err
	}
	return Scenario{Want: http.StatusOK, Next: get(e.URL+"/v1/me", "X-API-Token", t["token"].(string), "X-User-Email", e.AdminEmail)}, nil
}
