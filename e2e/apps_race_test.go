package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestAppsRaceOnTwoNodes races a change that ends a third-party
// application's standing (its publisher suspended; the user's account
// turning third-party applications off) against racers on two nodes of
// one cluster, each over connections opened in advance: racers using the
// application's access tokens on the API and on forward auth, each token
// served by both nodes first so that both have it cached, and racers
// rotating its refresh tokens on both nodes and using each new access
// token once. Before the change answers a use may work; once it has
// answered, every use sent is refused, and afterwards nothing of the
// application works on either node: the tokens from before, and every
// pair a racer obtained while the change was out.
func TestAppsRaceOnTwoNodes(t *testing.T) {
	a, b := twoLeakNodes(t)
	nodes := [2]*servertest.Env{a, b}
	op := a.AdminToken()
	unlimit(t, a, op)
	servertest.Expect(t, a.As(op, "PUT", "/v1/settings", map[string]string{"third_party_apps": "any"}), 200, "")
	a.CreateUser(op, appMember, memberPW)
	pubID, boss := a.CreateAccount(op, "publisher", "boss@publisher.example", memberPW)
	a.CreateUser(boss, "dev@publisher.example", memberPW, "developer")
	dev := a.Login("dev@publisher.example", memberPW)
	const redirect = "http://127.0.0.1:7000/cb"

	type pair struct{ access, refresh string }
	// tokens authorises app for the member through node i's pages and
	// exchanges the code there; both nodes then serve the access token.
	tokens := func(app thirdPartyApp, i int) pair {
		t.Helper()
		n := nodes[i%2]
		conf := &oauth2.Config{ClientID: app.ClientID, RedirectURL: redirect, Scopes: []string{"workspaces:read"},
			Endpoint: oauth2.Endpoint{AuthURL: n.URL + "/oauth/authorize", TokenURL: n.URL + "/oauth/token"}}
		v := oauth2.GenerateVerifier()
		cb, resp, body := newUserAgent(t, n.URL).authorize(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), appMember, memberPW, "allow")
		if cb == nil || cb.Query().Get("code") == "" {
			t.Fatalf("no code: %v %d %s", cb, resp.StatusCode, body)
		}
		r := exchange(n, app, cb.Query().Get("code"), redirect, v)
		servertest.Expect(t, r, 200, "")
		m := r.Map(t)
		p := pair{access: m["access_token"].(string), refresh: m["refresh_token"].(string)}
		for _, n := range nodes {
			servertest.Expect(t, n.As(p.access, "GET", "/v1/me", nil), 200, "")
			servertest.Expect(t, n.As(p.access, "GET", "/v1/auth/check", nil), 200, "")
		}
		return p
	}

	changes := []struct {
		name    string
		refused func(reply) bool // a refresh once the change holds
		change  func(h *hammer) reply
		undo    func()
	}{
		{"publisher suspended", func(r reply) bool { return r.is(http.StatusUnauthorized, "invalid_client") },
			func(h *hammer) reply {
				return h.as(op, "PATCH", "/v1/accounts/"+pubID, map[string]string{"status": "suspended"})
			}, func() {
				servertest.Expect(t, a.As(op, "PATCH", "/v1/accounts/"+pubID, map[string]string{"status": "active"}), 200, "")
			}},
		{"third_party_apps none", func(r reply) bool { return r.is(http.StatusBadRequest, "invalid_grant") },
			func(h *hammer) reply {
				return h.as(op, "PUT", "/v1/settings", map[string]string{"third_party_apps": "none"})
			}, func() {
				servertest.Expect(t, a.As(op, "PUT", "/v1/settings", map[string]string{"third_party_apps": "any"}), 200, "")
			}},
	}
	const rounds, pairs, usersPerToken = 4, 4, 4
	var tl tally
	for round := range rounds {
		c := changes[round%len(changes)]
		app := registerApp(t, a, dev, "public", []string{redirect}, nil)
		ps := make([]pair, pairs)
		for i := range ps {
			ps[i] = tokens(app, i)
		}
		hs := [2]*hammer{newHammer(t, a, pairs*usersPerToken), newHammer(t, b, pairs*usersPerToken)}
		r := newRace(t, fireAt(round, rounds, pairs*usersPerToken))
		for i, p := range ps {
			r.keep(p.access, "")
			for k := range usersPerToken {
				h := hs[k%2]
				path := []string{"/v1/me", "/v1/auth/check"}[k/2%2]
				r.racer(func() {
					r.use(fmt.Sprintf("%s on node %d", path, k%2), func() reply { return h.as(p.access, "GET", path, nil) })
				})
			}
			// Each pair's refresh token is rotated by two refreshers, one
			// on each node: the newest is presented each time.
			cur := &atomic.Pointer[string]{}
			cur.Store(&p.refresh)
			for k := range 2 {
				h := hs[(i+k)%2]
				r.racer(func() { r.refreshChainUntil(h, app.ClientID, cur, c.refused) })
			}
		}
		r.revoke(c.name, http.StatusOK, func() reply { return c.change(hs[round%2]) })
		r.run()
		// Afterwards, on both nodes: every access token is refused on the
		// API and forward auth, every refresh token as the change says.
		checked := 0
		for _, h := range hs {
			each(r.access, func(tok string) {
				for _, path := range []string{"/v1/me", "/v1/auth/check"} {
					if rep := h.as(tok, "GET", path, nil); rep.status != http.StatusUnauthorized {
						t.Errorf("%s: after the change, an access token on %s %s: %v", c.name, h.url, path, rep)
					}
				}
			})
			refresh := append([]string{}, r.refresh...)
			for _, p := range ps {
				refresh = append(refresh, p.refresh)
			}
			each(refresh, func(rt string) {
				if rep := h.refreshGrant(app.ClientID, rt); !c.refused(rep) {
					t.Errorf("%s: after the change, a refresh token on %s: %v", c.name, h.url, rep)
				}
			})
			checked += 2*len(r.access) + len(refresh)
		}
		tl.add(r, checked)
		tl.endRound(t, round, " ("+c.name+")")
		c.undo()
	}
	tl.log(t)
}

// asRequest returns a request with a bearer token and, when body is not
// empty, a JSON body.
func asRequest(t *testing.T, n *servertest.Env, tok, method, path, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, n.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return req
}
