package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/internal/testenv"
)

// The fault suite (SPEC §10.9) runs real processes against real
// dependencies and breaks them while a storm of requests runs, keeping a
// ledger on the client side of everything the server acknowledged: every
// answer must be 2xx, 4xx or 503 temporarily_unavailable with
// Retry-After, within a bound far above the store timeout (no hang);
// nothing acknowledged may be lost and nothing whose revocation was
// acknowledged may work again.

// faultStoreTimeout is the nodes' --store-timeout in the fault suite.
const faultStoreTimeout = time.Second

// hangBound is how long the suite waits for any answer before calling it
// a hang: far above the store timeout, far below the 28–30 s a stalled
// database used to hold a request.
const hangBound = 10 * time.Second

// faultAnswer is one answer as the suite's client saw it.
type faultAnswer struct {
	status     int
	body       map[string]any
	retryAfter string
	err        error // transport error: no answer
}

// faultClient sends requests with connections kept open between them and
// a client-side bound on every answer.
var faultClient = &http.Client{
	Timeout:   hangBound,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true},
}

// faultCall sends one JSON request to base (with a bearer token when tok
// is set).
func faultCall(base, method, path, tok string, body any) faultAnswer {
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
	resp, err := faultClient.Do(req)
	if err != nil {
		return faultAnswer{err: err}
	}
	defer resp.Body.Close()
	a := faultAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	json.NewDecoder(resp.Body).Decode(&a.body)
	return a
}

// unavailable reports whether a is the one acceptable server-side
// failure: 503 temporarily_unavailable with Retry-After.
func (a faultAnswer) unavailable() bool {
	return a.err == nil && a.status == http.StatusServiceUnavailable && a.retryAfter != "" && a.body["error"] == "temporarily_unavailable"
}

// check reports a problem with the form of a (no answer, a 5xx other than
// a proper 503), or "".
func (a faultAnswer) check() string {
	switch {
	case a.err != nil:
		return fmt.Sprintf("no answer within %s: %v", hangBound, a.err)
	case a.status >= 500 && !a.unavailable():
		return fmt.Sprintf("answered %d %v (Retry-After %q)", a.status, a.body, a.retryAfter)
	}
	return ""
}

// faultLedger is what the server acknowledged, as its clients saw it.
type faultLedger struct {
	mu sync.Mutex
	// live are tokens acknowledged and not (possibly) revoked; revoked
	// are tokens whose revocation was acknowledged. A token whose
	// revocation was answered otherwise is in neither: its state is
	// unknown.
	live, revoked map[string]bool
	// counts of answers by kind, and the problems found.
	ok, unavailable, refused int
	problems                 []string
}

func newFaultLedger() *faultLedger {
	return &faultLedger{live: map[string]bool{}, revoked: map[string]bool{}}
}

// see records an answer of step and checks its form.
func (l *faultLedger) see(step string, a faultAnswer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case a.err != nil || a.status >= 500 && !a.unavailable():
	case a.unavailable():
		l.unavailable++
	case a.status < 300:
		l.ok++
	default:
		l.refused++
	}
	if p := a.check(); p != "" {
		l.problem("%s: %s", step, p)
	}
}

// problem records a broken promise (l.mu held).
func (l *faultLedger) problem(format string, args ...any) {
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf(format, args...))
	}
}

// pick returns a token of set (live or revoked), or "".
func (l *faultLedger) pick(revoked bool) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	set := l.live
	if revoked {
		set = l.revoked
	}
	for tok := range set { // map order is random enough
		return tok
	}
	return ""
}

// counts returns how many answers so far were served and unavailable.
func (l *faultLedger) counts() (ok, unavailable int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok, l.unavailable
}

func (l *faultLedger) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("answers: %d served, %d refused (4xx), %d unavailable (503); %d live and %d revoked tokens in the ledger",
		l.ok, l.refused, l.unavailable, len(l.live), len(l.revoked))
	for _, p := range l.problems {
		t.Error(p)
	}
}

// storm runs workers against nodes until ctx ends: each logs in one of
// the users now and then, uses live tokens on every node (200 or 503,
// never 401: nothing acknowledged is lost), revokes some through RFC 7009
// and then uses them (401 or 503, never 200: nothing revoked comes back).
func storm(ctx context.Context, l *faultLedger, nodes []string, emails []string, workers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				node := nodes[(w+n)%len(nodes)]
				switch {
				case n%10 == 0:
					email := emails[(w+n)%len(emails)]
					a := faultCall(node, "POST", "/authorization", "", map[string]string{"username": email, "password": memberPW})
					l.see("login", a)
					if a.err == nil && a.status == http.StatusOK {
						l.mu.Lock()
						l.live[a.body["access_token"].(string)] = true
						l.mu.Unlock()
					}
				case n%10 == 5 && w%2 == 0:
					tok := l.pick(false)
					if tok == "" {
						continue
					}
					l.mu.Lock()
					delete(l.live, tok) // unknown until answered
					l.mu.Unlock()
					a := faultCall(node, "POST", "/oauth/revoke", "", map[string]string{"token": tok})
					l.see("revoke", a)
					if a.err == nil && a.status == http.StatusOK {
						l.mu.Lock()
						l.revoked[tok] = true
						l.mu.Unlock()
					}
				case n%10 == 7:
					tok := l.pick(true)
					if tok == "" {
						continue
					}
					a := faultCall(node, "GET", "/v1/me", tok, nil)
					l.see("revoked token", a)
					if a.err == nil && a.status == http.StatusOK {
						l.mu.Lock()
						l.problem("a token whose revocation was acknowledged works again on %s", node)
						l.mu.Unlock()
					}
				default:
					tok := l.pick(false)
					if tok == "" {
						continue
					}
					a := faultCall(node, "GET", "/v1/me", tok, nil)
					l.see("live token", a)
					l.mu.Lock()
					if a.err == nil && a.status == http.StatusUnauthorized && l.live[tok] {
						l.problem("an acknowledged token is refused on %s: %v", node, a.body)
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	return &wg
}

// verifyLedger checks, once the faults are over, every token of the
// ledger on every node: live ones work, revoked ones do not.
func verifyLedger(t *testing.T, l *faultLedger, nodes []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.live) == 0 || len(l.revoked) == 0 {
		t.Fatalf("the storm acknowledged %d tokens and %d revocations: too little to check", len(l.live), len(l.revoked))
	}
	for _, node := range nodes {
		for tok := range l.live {
			if a := faultCall(node, "GET", "/v1/me", tok, nil); a.err != nil || a.status != http.StatusOK {
				t.Errorf("after the faults, an acknowledged token on %s: %d %v %v", node, a.status, a.body, a.err)
			}
		}
		for tok := range l.revoked {
			if a := faultCall(node, "GET", "/v1/me", tok, nil); a.err != nil || a.status != http.StatusUnauthorized {
				t.Errorf("after the faults, a revoked token on %s: %d %v %v", node, a.status, a.body, a.err)
			}
		}
	}
}

// waitReadyz waits until every node's /readyz answers 200.
func waitReadyz(t *testing.T, nodes ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, node := range nodes {
		for {
			a := faultCall(node, "GET", "/readyz", "", nil)
			if a.err == nil && a.status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready again after the faults: %d %v %v", node, a.status, a.body, a.err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestFaultsPostgresCluster: two nodes on one PostgreSQL database, each
// through a proxy the test controls, and one Redis. While a storm of
// logins, uses and revocations runs on both, the database connection of
// one node and then the other is reset (RST) and held (a blackhole longer
// than the store timeout), then Redis is killed and started again. Every
// answer is 2xx, 4xx or 503 with Retry-After within the bound; afterwards
// both nodes are ready again by themselves, every acknowledged token works
// on both and every acknowledged revocation holds on both.
func TestFaultsPostgresCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and breaks their connections")
	}
	dbURL := pgtest.Schema(t)
	host := strings.SplitN(strings.SplitN(dbURL, "@", 2)[1], "/", 2)[0]
	rs := startRedis(t, "")
	redisURL := "redis://127.0.0.1:" + rs.port + "/0"
	var proxies []*faultproxy.Proxy
	var nodes []*process
	for range 2 {
		p, err := faultproxy.Start(host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		proxies = append(proxies, p)
		via := strings.Replace(dbURL, "@"+host+"/", "@"+p.Addr()+"/", 1)
		nodes = append(nodes, launch(t, "--database-url", via, "--redis-url", redisURL, "--log-level", "error",
			"--store-timeout", faultStoreTimeout.String()))
	}
	for _, n := range nodes {
		n.waitReady(t)
	}
	urls := []string{nodes[0].url, nodes[1].url}
	admin := login(t, nodes[0], "admin@example.com", processAdminPassword)
	if st, out := nodes[0].send(t, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 1_000_000, "burst_window_seconds": 1, "daily": 100_000_000}}, bearer(admin)...); st != 200 {
		t.Fatalf("settings: %d %v", st, out)
	}
	var emails []string
	for i := range 4 {
		email := fmt.Sprintf("storm%d@example.com", i)
		if st, out := nodes[i%2].send(t, "POST", "/v1/users", map[string]any{"email": email, "password": memberPW}, bearer(admin)...); st != 201 {
			t.Fatalf("create user: %d %v", st, out)
		}
		emails = append(emails, email)
	}

	l := newFaultLedger()
	ctx, cancel := context.WithCancel(context.Background())
	wg := storm(ctx, l, urls, emails, 6)
	phase := func(name string, d time.Duration, modes ...faultproxy.Mode) {
		for i, m := range modes {
			proxies[i].Set(m)
		}
		ok, unavailable := l.counts()
		time.Sleep(d)
		ok2, unavailable2 := l.counts()
		t.Logf("%s for %s: %d served, %d unavailable", name, d, ok2-ok, unavailable2-unavailable)
	}
	phase("warm-up", 1500*time.Millisecond, faultproxy.Pass, faultproxy.Pass)
	phase("node A's database connections reset", time.Second, faultproxy.Reset, faultproxy.Pass)
	phase("healed", 1500*time.Millisecond, faultproxy.Pass, faultproxy.Pass)
	phase("node B's database held", 3*faultStoreTimeout, faultproxy.Pass, faultproxy.Blackhole)
	phase("healed", 1500*time.Millisecond, faultproxy.Pass, faultproxy.Pass)
	phase("A held, B reset", 2*faultStoreTimeout, faultproxy.Blackhole, faultproxy.Reset)
	phase("healed", 1500*time.Millisecond, faultproxy.Pass, faultproxy.Pass)
	ok, unavailable := l.counts()
	rs.stop()
	time.Sleep(2 * time.Second)
	ok2, unavailable2 := l.counts()
	t.Logf("Redis killed for 2s: %d served, %d unavailable", ok2-ok, unavailable2-unavailable)
	startRedis(t, rs.port)
	phase("Redis back", 2*time.Second)
	cancel()
	wg.Wait()

	l.report(t)
	if l.unavailable == 0 {
		t.Error("no request was answered 503 while the dependencies were away: the faults did not bite")
	}
	waitReadyz(t, urls...)
	verifyLedger(t, l, urls)
}

// TestFaultsSQLiteDiskFull: an SQLite store on a small tmpfs that fills
// up. Writes are answered 503 with Retry-After (never 500) and /readyz
// says 503; when space returns, writes succeed again and /readyz says 200
// by itself; everything acknowledged is there and the database passes
// SQLite's integrity check.
func TestFaultsSQLiteDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs and starts a process")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mounting a tmpfs", fmt.Sprintf("mount -t tmpfs: %v %s (the disk-full test needs root)", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	db := filepath.Join(dir, "gatehouse.db")
	p := startProcess(t, db)
	_, login, _ := p.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	admin := login["access_token"].(string)
	if st, out, _ := p.call("PUT", "/v1/settings", admin, map[string]any{"rate_limit": map[string]int{"burst": 1_000_000, "burst_window_seconds": 1, "daily": 100_000_000}}); st != http.StatusOK {
		t.Fatalf("settings: %d %v", st, out)
	}

	l := newFaultLedger()
	var acked []string
	create := func(step string) faultAnswer {
		a := faultCall(p.url, "POST", "/v1/workspaces", admin, map[string]string{"name": fmt.Sprintf("ws %d", rand.Int())})
		l.see(step, a)
		if a.err == nil && a.status == http.StatusCreated {
			acked = append(acked, a.body["id"].(string))
		}
		return a
	}
	for range 20 {
		create("before the disk fills")
	}

	// Fill the file system, leaving nothing.
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill: %v", err)
				}
				break
			}
		}
	}
	f.Close()

	// Writes until they fail, as they must once the store needs a page.
	refused := 0
	for i := 0; i < 3000 && refused < 20; i++ {
		if a := create("disk full"); a.unavailable() {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("every write succeeded on a full disk")
	}
	if a := faultCall(p.url, "GET", "/readyz", "", nil); a.status != http.StatusServiceUnavailable || a.retryAfter == "" {
		t.Errorf("/readyz on a full disk: %d %v (Retry-After %q), want 503", a.status, a.body, a.retryAfter)
	}
	// Reads still work.
	if a := faultCall(p.url, "GET", "/v1/workspaces", admin, nil); a.status != http.StatusOK {
		t.Errorf("a read on a full disk: %d %v", a.status, a.body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, p.url)
	for range 20 {
		if a := create("space back"); a.status != http.StatusCreated {
			t.Fatalf("a write once space is back: %d %v", a.status, a.body)
		}
	}
	l.report(t)
	for _, id := range acked {
		if a := faultCall(p.url, "GET", "/v1/workspaces/"+id, admin, nil); a.status != http.StatusOK {
			t.Errorf("acknowledged workspace %s: %d %v", id, a.status, a.body)
		}
	}
	p.kill()
	checkIntegrity(t, db)
}
