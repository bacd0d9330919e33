package e2e

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestCredentialDeleteVolleyOnTwoNodes releases together, over
// connections opened in advance and split between two nodes of one
// cluster (one store, one Redis): the deletion of half of a developer's
// credentials, requests with every credential's token, and an unrelated
// developer's requests. Each round's tokens were served by both nodes
// first, so every node has them cached on an earlier cluster state. In
// the volley a deletion answers 204 and a token is served or refused,
// never 5xx; the unrelated developer's requests and the kept credentials'
// tokens are all served (the revocations touched nothing they rest on);
// and once the volley has answered, every deleted credential's token is
// refused on both nodes, the kept ones still served.
func TestCredentialDeleteVolleyOnTwoNodes(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := [2]*servertest.Env{a, b}
	admin, _, devTok, _ := developer(t, a)
	unlimit(t, a, admin)
	otherID := a.CreateUser(admin, "other@example.com", memberPW)
	servertest.Expect(t, a.As(admin, "PUT", "/v1/developers/"+otherID, nil), 204, "")
	other := a.Login("other@example.com", memberPW)

	const perRound = 8
	for round := range 3 {
		creds := make([]credential, perRound)
		toks := make([]string, perRound)
		for i := range creds {
			r := a.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("volley %d-%d", round, i)})
			servertest.Expect(t, r, 201, "")
			r.JSON(t, &creds[i])
			toks[i] = accessToken(t, clientToken(nodes[i%2], creds[i]))
			for _, n := range nodes {
				servertest.Expect(t, n.As(toks[i], "GET", "/v1/me", nil), 200, "")
			}
		}
		servertest.Expect(t, b.As(other, "GET", "/v1/me", nil), 200, "")

		get := func(n *servertest.Env, tok string) volleyReq {
			req, _ := http.NewRequest("GET", n.URL+"/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			return volleyReq{req: req}
		}
		const (
			kindDelete = iota
			kindDeleted
			kindKept
			kindOther
		)
		var shots []volleyReq
		var kinds []int
		for i, c := range creds {
			deleted := i%2 == 0
			if deleted {
				req, _ := http.NewRequest("DELETE", nodes[(i/2+round)%2].URL+"/v1/credentials/"+c.ID, nil)
				req.Header.Set("Authorization", "Bearer "+devTok)
				shots, kinds = append(shots, volleyReq{req: req}), append(kinds, kindDelete)
			}
			for k := range 4 {
				kind := kindKept
				if deleted {
					kind = kindDeleted
				}
				shots, kinds = append(shots, get(nodes[k%2], toks[i])), append(kinds, kind)
			}
		}
		for k := range 16 {
			shots, kinds = append(shots, get(nodes[k%2], other)), append(kinds, kindOther)
		}
		res := volley(t, shots)
		for i, r := range res.resps {
			switch kinds[i] {
			case kindDelete:
				servertest.Expect(t, r, 204, "")
			case kindDeleted:
				if r.Status != 200 && r.Status != 401 {
					t.Errorf("round %d: a token of a credential being deleted: %d %s", round, r.Status, r.Body)
				}
			default:
				if r.Status != 200 {
					t.Errorf("round %d: a request resting on nothing deleted (kind %d): %d %s", round, kinds[i], r.Status, r.Body)
				}
			}
		}
		for i, tok := range toks {
			want := 200
			if i%2 == 0 {
				want = 401
			}
			for _, n := range nodes {
				if r := n.As(tok, "GET", "/v1/me", nil); r.Status != want {
					t.Errorf("round %d: after the volley, credential %d's token on %s: %d, want %d", round, i, n.URL, r.Status, want)
				}
			}
		}
	}
}
