package e2e

import (
	"fmt"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestConflictDeleteUserVsOwnCredentials attacks DELETE /v1/users/{id}
// released together with the user's own deletions and renames of their
// credentials. The user's deletion locks the account, then the user, then
// removes the credentials; a credential's deletion or rename must take the
// owner before the credential (docs/design.md, Errors). Locking the
// credential first and its owner after deadlocked on PostgreSQL (40P01),
// answered 503.
func TestConflictDeleteUserVsOwnCredentials(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	const creds = 6
	for round := 0; round < 8; round++ {
		email := fmt.Sprintf("owner%d@example.com", round)
		uid := env.CreateUser(admin, email, memberPW)
		servertest.Expect(t, env.As(admin, "PUT", "/v1/developers/"+uid, nil), 204, "")
		dev := env.Login(email, memberPW)
		var shots []volleyReq
		for i := 0; i < creds; i++ {
			r := env.As(dev, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", i)})
			servertest.Expect(t, r, 201, "")
			id := r.Map(t)["id"].(string)
			if i == creds/2 {
				shots = append(shots, volleyReq{req: asRequest(t, env, admin, "DELETE", "/v1/users/"+uid, "")})
			}
			if i%2 == 0 {
				shots = append(shots, volleyReq{req: asRequest(t, env, dev, "DELETE", "/v1/credentials/"+id, "")})
			} else {
				shots = append(shots, volleyReq{req: asRequest(t, env, dev, "PATCH", "/v1/credentials/"+id, `{"name":"renamed"}`)})
			}
		}
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		if t.Failed() {
			return
		}
		// The user is gone, and so is everything they held.
		servertest.Expect(t, env.As(admin, "GET", "/v1/users/"+uid, nil), 404, "")
		servertest.Expect(t, env.As(dev, "GET", "/v1/me", nil), 401, "")
	}
}

// TestConflictAPITokenRenames attacks PATCH /v1/api-tokens/{id} of several
// tokens at once, each renamed and given a plan's field, released together
// with a creation: a rename writes the token's plan and then locks the
// account (names are unique in it), a creation locks the account first.
// No answer is a 5xx, and of two renames to one name exactly one wins.
func TestConflictAPITokenRenames(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	unlimit(t, env, admin)
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	const tokens = 6
	ids := make([]string, tokens)
	for i := range ids {
		r := env.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("t%d", i)})
		servertest.Expect(t, r, 201, "")
		ids[i] = r.Map(t)["id"].(string)
	}
	for round := 0; round < 8; round++ {
		var shots []volleyReq
		for i, id := range ids {
			// Two of them ask for the same name: one gets it.
			name := fmt.Sprintf("r%d-%d", round, i/2*2)
			shots = append(shots, volleyReq{req: asRequest(t, env, admin, "PATCH", "/v1/api-tokens/"+id,
				fmt.Sprintf(`{"name":%q,"external_id":"ext-%d"}`, name, round))})
		}
		shots = append(shots, volleyReq{req: asRequest(t, env, admin, "POST", "/v1/api-tokens", fmt.Sprintf(`{"name":"new%d"}`, round))})
		res := volley(t, shots)
		no5xx(t, fmt.Sprintf("round %d", round), res, func(i int) string { return shots[i].req.Method + " " + shots[i].req.URL.Path })
		if t.Failed() {
			return
		}
		if n := countStatus(res, 200); n != tokens/2 {
			t.Fatalf("round %d: %d renames answered 200, want %d (one of each pair)", round, n, tokens/2)
		}
	}
}
