package e2e

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/webhook"
)

// bulkReport sends one bulk leak report.
func bulkReport(t *testing.T, env *servertest.Env, secrets ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string][]string{"credentials": secrets})
	servertest.Expect(t, env.Request("POST", "/v1/credentials/revoke", string(body), "Content-Type", "application/json"), 202, "")
}

// waitStatus waits until f() returns want (the bulk endpoint revokes
// just after its answer).
func waitStatus(t *testing.T, want int, f func() int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f()
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEventsLeakedRollRevivesMinted: a thief who finds a leaked API
// token mints a second API token through it (persistence). The leak is
// reported; the leaked token and its child stop. The owner follows the
// documented leak response and rolls the leaked token: the thief's child
// stays dead — a leaked token's roll carries nothing minted through it
// over to the new token (it did, and the child worked again).
func TestEventsLeakedRollRevivesMinted(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	leaked := withAPIToken(t, env, admin)

	// The thief mints a token of its own through the leaked one.
	r := env.Request("POST", "/v1/api-tokens", `{"name":"thief"}`, "X-API-Token", leaked.Token, "Content-Type", "application/json")
	servertest.Expect(t, r, 201, "")
	var child apiToken
	r.JSON(t, &child)
	servertest.Expect(t, env.Request("GET", "/v1/me", nil, "X-API-Token", child.Token), 200, "")

	// Reported leaked (bulk, GitHub or RFC 7009: the same revocation).
	bulkReport(t, env, leaked.Token)
	if s := waitStatus(t, 401, func() int { return env.Request("GET", "/v1/me", nil, "X-API-Token", leaked.Token).Status }); s != 401 {
		t.Fatalf("the leaked token answers %d after the report", s)
	}
	if s := env.Request("GET", "/v1/me", nil, "X-API-Token", child.Token).Status; s != 401 {
		t.Fatalf("the thief's child token answers %d right after the leak report; want 401", s)
	}

	// The owner rolls the leaked token, as docs/leak-response.md says.
	r = env.As(admin, "POST", "/v1/api-tokens/"+leaked.ID+"/roll", nil)
	servertest.Expect(t, r, 201, "")
	if s := env.Request("GET", "/v1/me", nil, "X-API-Token", child.Token).Status; s != 401 {
		t.Fatalf("after the owner rolled the leaked token, the token the thief minted through it works again (%d)", s)
	}
}

// TestEventsSSRFForms: without --webhook-allow-insecure, every spelling
// of a non-public address is refused at creation and at PATCH.
func TestEventsSSRFForms(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	forms := []string{
		"https://2130706433/", "https://0x7f.1/", "https://0x7f000001/", "https://017700000001/", "https://127.1/", "https://0177.0.0.1/",
		"https://[::ffff:7f00:1]/", "https://[0:0:0:0:0:ffff:127.0.0.1]/", "https://[::127.0.0.1]/", "https://[64:ff9b::127.0.0.1]/",
		"https://[2002:7f00:1::]/", "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "https://localhost./", "https://LOCALHOST/", "https://runsc/", "https://vm/",
		"https://[fd00::1]/", "https://[fe80::1%25lo]/", "https://100.64.0.1/", "https://0/", "https://[::]/", "https://224.0.0.1/",
		"https://255.255.255.255/", "https://192.0.0.170/", " https://127.0.0.1/", "HTTPS://127.0.0.1/", "https://example.com@127.0.0.1/",
		"https://127.0.0.1:443/", "https://169.254.169.254./", "https://[::ffff:169.254.169.254]/", "https://[fec0::1]/", "https://10.0.0.1%2f@example.com/",
		"https://127.0.0.1\t/", "https://xn--localhost/", "https://127.0.0.1.", "https://[::1]:443/", "https://[0::1]/", "https://[::ffff:0a00:0001]/",
		"https://0.0.0.0./", "https://[100::1]/", "https://198.18.0.1/", "https://localhost:6379/",
	}
	for _, u := range forms {
		r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": u, "events": []string{"*"}})
		if r.Status != 400 {
			t.Errorf("create %q: %d %s", u, r.Status, r.Body)
		}
	}
	// PATCH too, of an endpoint at a public address.
	r := env.As(admin, "POST", "/v1/webhooks", map[string]any{"url": "https://1.1.1.1/hook", "events": []string{"*"}})
	servertest.Expect(t, r, 201, "")
	id := r.Map(t)["id"].(string)
	for _, u := range forms {
		if r := env.As(admin, "PATCH", "/v1/webhooks/"+id, map[string]any{"url": u}); r.Status != 400 {
			t.Errorf("patch %q: %d %s", u, r.Status, r.Body)
		}
	}
}

// TestEventsDialRefusesNamesOfLoopback: the delivery client, without
// allow-insecure, never connects to a loopback listener, whatever the
// spelling of its host (the check DNS rebinding would have to pass).
func TestEventsDialRefusesNamesOfLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	c := webhook.Client(false)
	for _, host := range []string{"localhost", "runsc", "vm", "127.0.0.1", "[::ffff:127.0.0.1]", "2130706433", "127.1", "localhost."} {
		u := "http://" + host + ":" + strconv.Itoa(port) + "/"
		resp, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: connected (%d)", u, resp.StatusCode)
		} else if !errors.Is(err, webhook.ErrRefusedAddress) && !strings.Contains(err.Error(), "no such host") {
			t.Logf("%s: %v", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback listener got %d requests", n)
	}
}

// TestEventsDeadRolledSecretRevokesLiveCredential: a developer rolls a
// client credential (say, because its secret was committed to a
// repository) with a short overlap; once the overlap is over the old
// secret is dead — the token endpoint refuses it. Anyone who finds that
// dead secret (in the repository's history, where it stays for ever)
// reports it to the unauthenticated bulk endpoint: the report reaches
// nothing, and the credential's new, live secret — which the reporter
// never held — keeps working (it was revoked for good).
func TestEventsDeadRolledSecretRevokesLiveCredential(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, old := developer(t, env)
	r := env.As(devTok, "POST", "/v1/credentials/"+old.ID+"/roll", map[string]any{"overlap_seconds": 1})
	servertest.Expect(t, r, 200, "")
	var rolled credential
	r.JSON(t, &rolled)
	live := credential{ClientID: rolled.ClientID, ClientSecret: rolled.ClientSecret}
	if live.ClientID == "" {
		live.ClientID = old.ClientID
	}
	time.Sleep(1500 * time.Millisecond)
	if s := clientToken(env, old).Status; s == 200 {
		t.Fatalf("the old secret still works after its overlap")
	}
	accessToken(t, clientToken(env, live)) // the new secret works

	// The dead secret is reported by someone who never held the new one.
	bulkReport(t, env, old.ClientSecret)
	time.Sleep(500 * time.Millisecond)
	if s := waitStatus(t, 401, func() int { return clientToken(env, live).Status }); s != 200 {
		t.Fatalf("reporting a dead, rolled-over secret revoked the credential's live secret: the token endpoint now answers %d", s)
	}
}
