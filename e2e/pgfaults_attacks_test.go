package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/token"
)

// The PgFaults class (SPEC §10.9; docs/deploy.md "When a dependency
// fails"): Gatehouse on a fresh PostgreSQL schema reached through a fault
// proxy the test controls, so the shared server is never touched.

// stallTimeout is the store timeout (--store-timeout) of these tests.
const stallTimeout = time.Second

// stallBound is the longest a request may take to be answered while the
// database is stalled: the store timeout a few times over (a read, then
// a write), far below a hang.
const stallBound = 3*stallTimeout + 500*time.Millisecond

// stallClient has a client-side bound far above stallBound, so that a hang
// shows as a measured duration rather than a stuck test.
var stallClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

// stallAnswer is one answer and how long it took.
type stallAnswer struct {
	status     int
	body       map[string]any
	retryAfter string
	took       time.Duration
	err        error
}

func (a stallAnswer) String() string {
	if a.err != nil {
		return fmt.Sprintf("no answer after %s: %v", a.took.Round(time.Millisecond), a.err)
	}
	return fmt.Sprintf("%d %v (Retry-After %q) after %s", a.status, a.body, a.retryAfter, a.took.Round(time.Millisecond))
}

// honest503 reports whether a is 503 temporarily_unavailable with Retry-After.
func (a stallAnswer) honest503() bool {
	// /readyz says which dependency is down instead of an error code.
	return a.err == nil && a.status == 503 && a.retryAfter != "" && (a.body["error"] == "temporarily_unavailable" || a.body["status"] == "unavailable")
}

// stallCall sends one JSON request (with a bearer token when tok is set).
func stallCall(base, method, path, tok string, body any) stallAnswer {
	var rd *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	start := time.Now()
	resp, err := stallClient.Do(req)
	if err != nil {
		return stallAnswer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	a := stallAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	json.NewDecoder(resp.Body).Decode(&a.body)
	a.took = time.Since(start)
	return a
}

// stallTogether releases n calls at once and returns their answers.
func stallTogether(n int, call func(i int) stallAnswer) []stallAnswer {
	out := make([]stallAnswer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = call(i)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// stallHost returns the host:port of a database URL.
func stallHost(dbURL string) string {
	return strings.SplitN(strings.SplitN(dbURL, "@", 2)[1], "/", 2)[0]
}

// stallVia returns dbURL with its host replaced by addr.
func stallVia(dbURL, addr string) string {
	host := stallHost(dbURL)
	return strings.Replace(dbURL, "@"+host+"/", "@"+addr+"/", 1)
}

// stallNode starts an in-process server on a fresh schema reached through
// a fault proxy, with the store timeout stallTimeout.
func stallNode(t *testing.T) (*servertest.Env, *faultproxy.Proxy) {
	t.Helper()
	dbURL := pgtest.Schema(t)
	p, err := faultproxy.Start(stallHost(dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	env := servertest.Start(t, func(c *server.Config) {
		c.DatabaseURL = stallVia(dbURL, p.Addr())
		c.StoreTimeout = stallTimeout
	})
	// Whatever happens, let the server reach its database again before
	// it is shut down (cleanups run last in, first out).
	t.Cleanup(func() { p.Set(faultproxy.Pass) })
	return env, p
}

// stallWaitReady waits until base's /readyz answers 200 (no restart).
func stallWaitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := stallCall(base, "GET", "/readyz", "", nil)
		if a.err == nil && a.status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready again after the database came back: %s", base, a)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stallUntil503 sends GET /v1/me with tok until it is answered 503 (the
// node no longer serves from a cache it cannot confirm), and returns that
// answer.
func stallUntil503(t *testing.T, base, tok string) stallAnswer {
	t.Helper()
	var a stallAnswer
	for range 30 {
		a = stallCall(base, "GET", "/v1/me", tok, nil)
		if a.err == nil && a.status == 503 {
			return a
		}
		if a.err == nil && a.status != 200 {
			t.Fatalf("a live token while the database is stalled: %s", a)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the node kept serving from its cache with the database stalled: %s", a)
	return a
}

// TestPgFaultsStallConcurrentRequests: with the database stalled (the
// proxy holds every packet: TCP accepted, nothing answered), requests
// released together are each answered 503 with Retry-After within the
// store's deadline — not one after another, each waiting for the one
// before it to time out. deploy.md: "PostgreSQL stalled … 503 after
// --store-timeout"; SPEC §10.9: "answered 503 … within it — never a 500,
// never a hang".
func TestPgFaultsStallConcurrentRequests(t *testing.T) {
	env, proxy := stallNode(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	tok := env.Login("ann@example.com", memberPW)
	for range 3 {
		if a := stallCall(env.URL, "GET", "/v1/me", tok, nil); a.status != 200 {
			t.Fatalf("warm-up: %s", a)
		}
	}

	proxy.Set(faultproxy.Blackhole)
	first := stallUntil503(t, env.URL, tok)
	t.Logf("first 503: %s", first)
	if !first.honest503() || first.took > stallBound {
		t.Errorf("first refusal: %s", first)
	}

	const n = 12
	answers := stallTogether(n, func(i int) stallAnswer {
		if i%4 == 3 {
			return stallCall(env.URL, "GET", "/readyz", "", nil)
		}
		return stallCall(env.URL, "GET", "/v1/me", tok, nil)
	})
	var late, served int
	var slowest time.Duration
	for i, a := range answers {
		slowest = max(slowest, a.took)
		switch {
		case a.err == nil && a.status == 200:
			served++
			t.Errorf("request %d answered 200 while the database is stalled: %s", i, a)
		case !a.honest503():
			t.Errorf("request %d: %s", i, a)
		}
		if a.took > stallBound {
			late++
			t.Logf("request %d: %s", i, a)
		}
	}
	if late > 0 {
		t.Errorf("%d of %d requests released together with the database stalled took longer than %s (store timeout %s); slowest %s",
			late, n, stallBound, stallTimeout, slowest.Round(time.Millisecond))
	}

	proxy.Set(faultproxy.Pass)
	stallWaitReady(t, env.URL)
	if a := stallCall(env.URL, "GET", "/v1/me", tok, nil); a.status != 200 {
		t.Fatalf("after the stall: %s", a)
	}
}

// TestPgFaultsStallRevokeSecret: RFC 7009 revocation (anonymous, by
// possession) of a client secret while the database is stalled is
// answered 503 within the store's deadline, never held until the database
// answers again, and never 200 (nothing was revoked).
func TestPgFaultsStallRevokeSecret(t *testing.T) {
	env, proxy := stallNode(t)
	// Before: an unknown secret is "revoked" (200, RFC 7009).
	if a := stallCall(env.URL, "POST", "/oauth/revoke", "", map[string]string{"token": token.New(token.ClientSecret)}); a.status != 200 {
		t.Fatalf("before the stall: %s", a)
	}
	proxy.Set(faultproxy.Blackhole)
	for _, kind := range []token.Prefix{token.APIToken, token.ClientSecret} {
		a := stallCall(env.URL, "POST", "/oauth/revoke", "", map[string]string{"token": token.New(kind)})
		t.Logf("%s: %s", kind, a)
		if !a.honest503() || a.took > stallBound {
			t.Errorf("revoking a %s with the database stalled: %s (want 503 within %s)", kind, a, stallBound)
		}
	}
	proxy.Set(faultproxy.Pass)
	stallWaitReady(t, env.URL)
}

// commitCutter is a TCP proxy to PostgreSQL that, once armed, lets a
// transaction's COMMIT reach the server and then resets the connection
// instead of passing the server's answer on: the commit is made, its
// answer is lost. It picks the connection whose client sent a statement
// containing mark.
type commitCutter struct {
	ln     net.Listener
	target string
	mark   atomic.Pointer[string]
	fired  atomic.Int32
}

func startCommitCutter(t *testing.T, target string) *commitCutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &commitCutter{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.serve(conn.(*net.TCPConn))
		}
	}()
	return c
}

func (c *commitCutter) Addr() string { return c.ln.Addr().String() }

// arm makes the next commit of a transaction that sent mark lose its answer.
func (c *commitCutter) arm(mark string) { c.mark.Store(&mark) }

// commitDone is the server's CommandComplete of a COMMIT.
var commitDone = []byte("C\x00\x00\x00\x0bCOMMIT\x00")

func (c *commitCutter) serve(client *net.TCPConn) {
	d, err := net.Dial("tcp", c.target)
	if err != nil {
		client.SetLinger(0)
		client.Close()
		return
	}
	server := d.(*net.TCPConn)
	var marked atomic.Bool
	cut := func() {
		client.SetLinger(0)
		server.SetLinger(0)
		client.Close()
		server.Close()
	}
	go func() { // client → server
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if m := c.mark.Load(); m != nil && *m != "" && bytes.Contains(buf[:n], []byte(*m)) {
					marked.Store(true)
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					cut()
					return
				}
			}
			if err != nil {
				server.CloseWrite()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if marked.Load() && bytes.Contains(buf[:n], commitDone) {
				if m := c.mark.Load(); m != nil && *m != "" && c.mark.CompareAndSwap(m, nil) {
					c.fired.Add(1)
					cut()
					return
				}
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				cut()
				return
			}
		}
		if err != nil {
			client.Close()
			return
		}
	}
}

// TestPgFaultsRefreshCommitAnswerLost: a refresh rotation commits, and
// the database's answer to the COMMIT is lost (the connection is reset
// between commit and answer). The client's request is answered 503 (the
// node cannot know), and the client retrying within the grace period gets
// the pair the rotation committed — working, refreshable — and never a
// revoked lineage (api-access.md: "a client that retries a refresh after a
// 503, a timeout or a lost answer gets the pair the first attempt
// committed").
func TestPgFaultsRefreshCommitAnswerLost(t *testing.T) {
	dbURL := pgtest.Schema(t)
	cutter := startCommitCutter(t, stallHost(dbURL))
	env := servertest.Start(t, func(c *server.Config) {
		c.DatabaseURL = stallVia(dbURL, cutter.Addr())
		c.StoreTimeout = stallTimeout
	})
	admin := env.AdminToken()
	app := enableAPIAccess(t, env, admin, nil)

	cutter.arm("INSERT INTO refresh_retries")
	first := stallCall(env.URL, "POST", "/oauth/token", "", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID, "refresh_token": app.RefreshToken})
	t.Logf("first attempt: %s", first)
	if cutter.fired.Load() == 0 {
		t.Fatalf("the rotation's commit was not cut (answer %s)", first)
	}
	if first.status == 200 {
		t.Fatalf("answered 200 though the commit's answer was lost: %s", first)
	}
	if !first.honest503() || first.took > stallBound {
		t.Errorf("first attempt, commit answer lost: %s (want 503 with Retry-After)", first)
	}
	retry := stallCall(env.URL, "POST", "/oauth/token", "", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID, "refresh_token": app.RefreshToken})
	t.Logf("retry: %s", retry)
	if retry.status != 200 {
		t.Fatalf("the client's retry after a lost answer: %s", retry)
	}
	acc, _ := retry.body["access_token"].(string)
	rt, _ := retry.body["refresh_token"].(string)
	if a := stallCall(env.URL, "GET", "/v1/me", acc, nil); a.status != 200 {
		t.Errorf("the retried pair's access token: %s", a)
	}
	again := stallCall(env.URL, "POST", "/oauth/token", "", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID, "refresh_token": app.RefreshToken})
	if again.status != 200 || again.body["access_token"] != acc || again.body["refresh_token"] != rt {
		t.Errorf("a second retry got another answer: %s", again)
	}
	next := stallCall(env.URL, "POST", "/oauth/token", "", map[string]string{"grant_type": "refresh_token", "client_id": app.ClientID, "refresh_token": rt})
	if next.status != 200 {
		t.Errorf("the retried pair's refresh token does not refresh: %s", next)
	}
}

// stallClusterUser creates a user on node and returns their id and a token
// signed in on node.
func stallClusterUser(t *testing.T, node *process, admin, email string) (id, tok string) {
	t.Helper()
	st, out := node.send(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...)
	if st != 201 {
		t.Fatalf("create %s: %d %v", email, st, out)
	}
	return out["id"].(string), login(t, node, email, memberPW)
}

// TestPgFaultsClusterRevokeWhileCut: two nodes on one schema and one
// Redis; node A reaches the database through a proxy. With A's database
// stalled, then reset, credentials cached on A are revoked, or their user
// disabled, through node B (acknowledged 200). A, asked with them all at
// once, never admits one (401 or 503); a revocation sent to A meanwhile is
// never acknowledged unless it holds. When A's database is back, without
// a restart, every acknowledged revocation holds on both nodes and the
// credentials nobody revoked work again on both.
func TestPgFaultsClusterRevokeWhileCut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	proxy, err := faultproxy.Start(stallHost(dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	t.Cleanup(func() { proxy.Set(faultproxy.Pass) })
	flags := []string{"--redis-url", redisURL, "--log-level", "error", "--store-timeout", stallTimeout.String()}
	a := launch(t, append([]string{"--database-url", stallVia(dbURL, proxy.Addr())}, flags...)...)
	b := launch(t, append([]string{"--database-url", dbURL}, flags...)...)
	a.waitReady(t)
	b.waitReady(t)
	admin := login(t, b, "admin@example.com", processAdminPassword)

	for _, fault := range []faultproxy.Mode{faultproxy.Blackhole, faultproxy.Reset} {
		t.Run(fault.String(), func(t *testing.T) {
			_, revokedTok := stallClusterUser(t, b, admin, "rev-"+fault.String()+"@example.com")
			disabledID, disabledTok := stallClusterUser(t, b, admin, "dis-"+fault.String()+"@example.com")
			_, keptTok := stallClusterUser(t, b, admin, "kept-"+fault.String()+"@example.com")
			_, viaATok := stallClusterUser(t, b, admin, "via-a-"+fault.String()+"@example.com")
			all := []string{revokedTok, disabledTok, keptTok, viaATok}
			for range 2 {
				for _, tok := range all {
					wantStatus(t, "cached", 200, tok, a, b)
				}
			}
			proxy.Set(fault)
			// Revocations through B, acknowledged.
			if st, out := b.send(t, "POST", "/oauth/revoke", map[string]string{"token": revokedTok}); st != 200 {
				t.Fatalf("revoke on B: %d %v", st, out)
			}
			if st, out := b.send(t, "PATCH", "/v1/users/"+disabledID, map[string]string{"status": "disabled"}, bearer(admin)...); st != 200 {
				t.Fatalf("disable on B: %d %v", st, out)
			}
			// Released together on A: the revoked ones never admitted, and a
			// revocation sent to A itself.
			answers := stallTogether(12, func(i int) stallAnswer {
				switch i % 4 {
				case 0:
					return stallCall(a.url, "GET", "/v1/me", revokedTok, nil)
				case 1:
					return stallCall(a.url, "GET", "/v1/me", disabledTok, nil)
				case 2:
					return stallCall(a.url, "GET", "/v1/me", keptTok, nil)
				}
				if i == 3 {
					return stallCall(a.url, "POST", "/oauth/revoke", "", map[string]string{"token": viaATok})
				}
				return stallCall(a.url, "GET", "/readyz", "", nil)
			})
			viaAAcked := false
			for i, ans := range answers {
				readyz := i%4 == 3 && i != 3
				switch {
				case readyz && (ans.err != nil || ans.status != 503 || ans.retryAfter == ""):
					t.Errorf("/readyz on A with its database %s: %s", fault, ans)
				case readyz && (ans.body["store"] != false || ans.body["redis"] != true):
					// Each check has a deadline of its own: Redis is
					// not reported down with the database.
					t.Errorf("/readyz on A with its database %s names the wrong dependency: %s", fault, ans)
				case readyz:
				case ans.err != nil || ans.status >= 500 && !ans.honest503():
					t.Errorf("request %d on A: %s", i, ans)
				case i%4 < 2 && ans.status == 200:
					t.Errorf("request %d on A admitted a credential revoked on B: %s", i, ans)
				case i == 3 && ans.status == 200:
					viaAAcked = true
				}
			}
			t.Logf("revocation sent to A with its database %s: %s", fault, answers[3])
			proxy.Set(faultproxy.Pass)
			stallWaitReady(t, a.url)
			wantStatus(t, "revoked on B, after A's database is back", 401, revokedTok, a, b)
			wantStatus(t, "disabled on B, after A's database is back", 401, disabledTok, a, b)
			wantStatus(t, "revoked by nobody, after A's database is back", 200, keptTok, a, b)
			if viaAAcked {
				wantStatus(t, "revocation acknowledged by A", 401, viaATok, a, b)
			} else {
				// Not acknowledged: it may or may not hold, but a retry does.
				if st, out := a.send(t, "POST", "/oauth/revoke", map[string]string{"token": viaATok}); st != 200 {
					t.Fatalf("revocation retried on A after the fault: %d %v", st, out)
				}
				wantStatus(t, "revocation retried on A", 401, viaATok, a, b)
			}
		})
	}
}

// TestPgFaultsClusterRevokeCommitAnswerLost: node A's revocation
// commits but the database's answer to its COMMIT is lost. A answers 503
// (not 200: it cannot know); the client retries on A and gets 200; from
// that 200 on, the token is refused on both nodes at once — also on B,
// which cached it and was never rung for the first, committed attempt.
func TestPgFaultsClusterRevokeCommitAnswerLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dbURL := pgtest.Schema(t)
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	cutter := startCommitCutter(t, stallHost(dbURL))
	flags := []string{"--redis-url", redisURL, "--log-level", "error", "--store-timeout", stallTimeout.String()}
	a := launch(t, append([]string{"--database-url", stallVia(dbURL, cutter.Addr())}, flags...)...)
	b := launch(t, append([]string{"--database-url", dbURL}, flags...)...)
	a.waitReady(t)
	b.waitReady(t)
	admin := login(t, b, "admin@example.com", processAdminPassword)
	_, tok := stallClusterUser(t, b, admin, "lost@example.com")
	for range 2 {
		wantStatus(t, "cached", 200, tok, a, b)
	}
	cutter.arm("UPDATE tokens SET revoked_at")
	first := stallCall(a.url, "POST", "/oauth/revoke", "", map[string]string{"token": tok})
	t.Logf("revocation on A, commit answer lost: %s", first)
	if cutter.fired.Load() == 0 {
		t.Fatalf("the revocation's commit was not cut (answer %s)", first)
	}
	if first.status == 200 {
		t.Fatalf("revocation answered 200 though its commit's answer was lost")
	}
	if !first.honest503() {
		t.Errorf("revocation, commit answer lost: %s", first)
	}
	retry := stallCall(a.url, "POST", "/oauth/revoke", "", map[string]string{"token": tok})
	if retry.status != 200 {
		t.Fatalf("revocation retried on A: %s", retry)
	}
	wantStatus(t, "right after the retried revocation's 200", 401, tok, b, a)
}

// TestPgFaultsLockedTable: another session holds a lock on the users
// table (a migration, a long transaction: deploy.md's "a locked table").
// Sign-ins, which read it, released together are answered 503 within the
// deadline; requests that do not touch the table — a cached token's GET
// /v1/me — are not starved of the pool by them.
func TestPgFaultsLockedTable(t *testing.T) {
	dbURL := pgtest.Schema(t)
	env := servertest.Start(t, func(c *server.Config) {
		c.DatabaseURL = dbURL
		c.StoreTimeout = stallTimeout
	})
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	tok := env.Login("ann@example.com", memberPW)
	if a := stallCall(env.URL, "GET", "/v1/me", tok, nil); a.status != 200 {
		t.Fatalf("warm-up: %s", a)
	}
	const n = 40
	for i := range n {
		env.CreateUser(admin, fmt.Sprintf("signer%d@example.com", i), memberPW)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`LOCK TABLE users IN ACCESS EXCLUSIVE MODE`); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	answers := stallTogether(n, func(i int) stallAnswer {
		if i%4 == 0 {
			return stallCall(env.URL, "GET", "/v1/me", tok, nil)
		}
		return stallCall(env.URL, "POST", "/authorization", "", map[string]string{"username": fmt.Sprintf("signer%d@example.com", i), "password": memberPW})
	})
	tx.Rollback()
	var meOK, meRefused, late int
	for i, a := range answers {
		if a.took > stallBound {
			late++
		}
		if i%4 == 0 {
			if a.status == 200 {
				meOK++
			} else {
				meRefused++
				t.Logf("cached GET /v1/me %d: %s", i, a)
			}
			continue
		}
		if a.status == 200 {
			continue
		}
		if !a.honest503() {
			t.Errorf("sign-in %d with the users table locked: %s", i, a)
		}
	}
	t.Logf("cached GET /v1/me: %d served, %d refused; %d answers later than %s", meOK, meRefused, late, stallBound)
	if late > 0 {
		t.Errorf("%d answers later than %s", late, stallBound)
	}
	if meRefused > 0 {
		t.Errorf("%d of %d cached requests that do not read the locked table were refused", meRefused, n/4)
	}
	stallWaitReady(t, env.URL)
}

// TestPgFaultsSignInAfterOutage: sign-ins with the right password that
// were answered 503 while the database was away are not failed attempts:
// once it is back, the user signs in (no lock-out earned by the outage),
// without a restart.
func TestPgFaultsSignInAfterOutage(t *testing.T) {
	env, proxy := stallNode(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "ann@example.com", memberPW)
	for _, fault := range []faultproxy.Mode{faultproxy.Reset, faultproxy.Blackhole} {
		proxy.Set(fault)
		for i := range 8 {
			a := stallCall(env.URL, "POST", "/authorization", "", map[string]string{"username": "ann@example.com", "password": memberPW})
			if a.status == 200 || a.err != nil || a.status >= 500 && !a.honest503() {
				t.Errorf("sign-in %d with the database %s: %s", i, fault, a)
			}
			if a.status == 429 {
				t.Logf("sign-in %d with the database %s: %s", i, fault, a)
			}
		}
		proxy.Set(faultproxy.Pass)
		stallWaitReady(t, env.URL)
		if a := stallCall(env.URL, "POST", "/authorization", "", map[string]string{"username": "ann@example.com", "password": memberPW}); a.status != 200 {
			t.Errorf("sign-in with the right password once the database (%s) is back: %s", fault, a)
		}
	}
}
