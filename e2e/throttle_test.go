package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/throttle"
)

// loopback returns the i-th client address of a test: a distinct address
// of 127.0.0.0/8 (all of it reaches the loopback interface on Linux), so
// that one machine can sign in from many addresses. The server sees it as
// the TCP peer, which is the address httpx.ClientInfo records.
func loopback(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// volleyReq is one request of a volley and the client address it comes from
// ("" for the default).
type volleyReq struct {
	req  *http.Request
	from string
}

// volleyResult is what a volley brought back.
type volleyResult struct {
	resps          []*servertest.Response
	released, done time.Time
	// conflicts is servertest.Conflicts before the volley.
	conflicts int64
}

// volley sends every shot at the same moment: each on its own TCP
// connection, opened in advance from its client address, with all of the
// request but its last byte written ahead; then every last byte goes out
// together, and the answers are read.
func volley(t *testing.T, shots []volleyReq) volleyResult {
	t.Helper()
	type conn struct {
		c    net.Conn
		data []byte
	}
	conns := make([]conn, len(shots))
	for i, s := range shots {
		d := net.Dialer{Timeout: 5 * time.Second}
		if s.from != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(s.from)}
		}
		c, err := d.Dial("tcp", s.req.URL.Host)
		if err != nil {
			t.Fatalf("dial from %q: %v", s.from, err)
		}
		defer c.Close()
		var buf bytes.Buffer
		if err := s.req.Write(&buf); err != nil {
			t.Fatal(err)
		}
		conns[i] = conn{c, buf.Bytes()}
		if _, err := c.Write(conns[i].data[:len(conns[i].data)-1]); err != nil {
			t.Fatal(err)
		}
	}
	var (
		ready, wg sync.WaitGroup
		start     = make(chan struct{})
		res       = volleyResult{resps: make([]*servertest.Response, len(shots)), conflicts: servertest.Conflicts()}
		errs      = make([]error, len(shots))
	)
	for i := range conns {
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			ready.Done()
			<-start
			if _, err := c.c.Write(c.data[len(c.data)-1:]); err != nil {
				errs[i] = err
				return
			}
			c.c.SetReadDeadline(time.Now().Add(60 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c.c), shots[i].req)
			if err != nil {
				errs[i] = err
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.resps[i], errs[i] = &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
		}()
	}
	ready.Wait()
	res.released = time.Now()
	close(start)
	wg.Wait()
	res.done = time.Now()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shot %d: %v", i, err)
		}
	}
	return res
}

// jsonRequest returns a POST with a JSON body.
func jsonRequest(t *testing.T, u string, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// formRequest returns a POST with a form body.
func formRequest(t *testing.T, u string, form url.Values, headers ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

// grantShot is a password-grant attempt, on /authorization (JSON) or, for
// odd i, grant_type=password on /oauth/token (form).
func grantShot(t *testing.T, base string, i int, user, pw, from string) volleyReq {
	if i%2 == 1 {
		return volleyReq{formRequest(t, base+"/oauth/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}), from}
	}
	return volleyReq{jsonRequest(t, base+"/authorization", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)), from}
}

// outcome names a password-grant answer: "token", "invalid_grant" (the
// password was checked), "throttled" (429 with a positive Retry-After),
// "busy" (503 with Retry-After), or the status and body.
func outcome(r *servertest.Response) string {
	switch {
	case r.Status == 200 && bytes.Contains(r.Body, []byte(`"access_token"`)):
		return "token"
	case r.Status == 400 && bytes.Contains(r.Body, []byte(`"invalid_grant"`)):
		return "invalid_grant"
	case r.Status == 429 && bytes.Contains(r.Body, []byte(`"too_many_attempts"`)) && retryAfter(r) > 0:
		return "throttled"
	case r.Status == 503 && bytes.Contains(r.Body, []byte(`"temporarily_unavailable"`)) && retryAfter(r) > 0:
		return "busy"
	}
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}

func retryAfter(r *servertest.Response) int {
	n, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	return n
}

func countOutcomes(rs []*servertest.Response, name func(*servertest.Response) string) map[string]int {
	out := map[string]int{}
	for _, r := range rs {
		out[name(r)]++
	}
	return out
}

// TestThrottleParallelGuesses sends 200 guesses for one user at the same
// instant (connections opened first, last bytes released together), half
// to /authorization and half as grant_type=password: exactly the
// per-username-and-address limit are checked, the rest refused with 429 and
// Retry-After (or, while the hasher is full, 503 and Retry-After); then a
// volley with the right password among wrong ones is refused whole.
func TestThrottleParallelGuesses(t *testing.T) {
	env := servertest.Start(t)
	guessVolleys(t, "guesses", 100, func(i int, pw string) volleyReq {
		email := servertest.AdminEmail
		if i >= 200 {
			email = "Admin@Example.com " // the same user, spelt otherwise
		}
		return grantShot(t, env.URL, i, email, pw, "")
	}, outcome)
	r := env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword})
	if outcome(r) != "throttled" {
		t.Fatalf("the right password over the limit: %d %s", r.Status, r.Body)
	}
}

// guessVolleys attacks one user's password through shot: 200 wrong
// passwords released together must see exactly the throttle's allowance
// checked and the rest refused (throttled, or busy while the hasher is
// full); then n guesses over the limit, the right password among them, are
// all refused. shot makes request i with password pw (i counts on from 200
// in the second volley); outcome names an answer.
func guessVolleys(t *testing.T, what string, n int, shot func(i int, pw string) volleyReq, outcome func(*servertest.Response) string) {
	t.Helper()
	var shots []volleyReq
	for i := range 200 {
		shots = append(shots, shot(i, fmt.Sprintf("wrong %d", i)))
	}
	got := countOutcomes(volley(t, shots).resps, outcome)
	if got["invalid_grant"] != throttle.DefaultUserAddrLimit || got["throttled"]+got["busy"] != 200-throttle.DefaultUserAddrLimit {
		t.Fatalf("200 parallel %s: %v; want %d checked, the rest refused", what, got, throttle.DefaultUserAddrLimit)
	}
	t.Logf("200 parallel %s: %v", what, got)
	shots = shots[:0]
	for i := range n {
		pw := fmt.Sprintf("wrong %d", i)
		if i == n/2 {
			pw = servertest.AdminPassword
		}
		shots = append(shots, shot(200+i, pw))
	}
	if got := countOutcomes(volley(t, shots).resps, outcome); got["throttled"]+got["busy"] != n {
		t.Fatalf("the right password among %d %s over the limit: %v", n, what, got)
	}
}

// adminLoginForm returns the sign-in form's CSRF value and its cookie.
func adminLoginForm(t *testing.T, base string) (csrf, cookie string) {
	t.Helper()
	resp, err := http.Get(base + "/admin/login")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(resp)
	return between(body, `name="csrf" value="`, `"`), cookieValue(resp, "gatehouse_login_csrf")
}

// loginOutcome names an /admin/login answer.
func loginOutcome(r *servertest.Response) string {
	switch loc := r.Header.Get("Location"); {
	case r.Status == 303 && loc == "/admin":
		return "session"
	case r.Status == 401 && bytes.Contains(r.Body, []byte("Wrong e-mail or password")):
		return "invalid_grant"
	case r.Status == 429 && retryAfter(r) > 0 && bytes.Contains(r.Body, []byte("Too many failed attempts")):
		return "throttled"
	case r.Status == 503 && retryAfter(r) > 0:
		return "busy"
	}
	return fmt.Sprintf("%d %s", r.Status, r.Header.Get("Location"))
}

// TestThrottleParallelAdminLogin is TestThrottleParallelGuesses through the
// admin UI's sign-in form.
func TestThrottleParallelAdminLogin(t *testing.T) {
	env := servertest.Start(t)
	csrf, cookie := adminLoginForm(t, env.URL)
	login := func(pw string) volleyReq {
		return volleyReq{formRequest(t, env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {servertest.AdminEmail}, "password": {pw}},
			"Cookie", "gatehouse_login_csrf="+cookie), ""}
	}
	guessVolleys(t, "sign-ins", 50, func(_ int, pw string) volleyReq { return login(pw) }, loginOutcome)
	// The password grant shares the count.
	r := env.Request("POST", "/authorization", map[string]string{"username": servertest.AdminEmail, "password": servertest.AdminPassword})
	if outcome(r) != "throttled" {
		t.Fatalf("password grant after the sign-in form's failures: %d %s", r.Status, r.Body)
	}
}

// signIn runs the password grant from a client address.
func signIn(t *testing.T, base, from, user, pw string) *servertest.Response {
	t.Helper()
	resp, err := clientFrom(from, nil).Post(base+"/authorization", "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// TestThrottleNotALockout shows that failures from elsewhere do not lock a
// user out: five wrong passwords from address A block A but not the right
// password from a clean address B (a member through the password grant,
// the admin through the admin UI's sign-in); only failures from many addresses,
// reaching the per-username cap, block every address — until an admin
// clears them, through the API (admins of the user's account only, audited)
// or the admin UI's button.
func TestThrottleNotALockout(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	annID := env.CreateUser(admin, "ann@example.com", memberPW)
	env.CreateUser(admin, "bob@example.com", memberPW)
	bob := env.Login("bob@example.com", memberPW)
	_, otherAdmin := env.CreateAccount(admin, "other", "other-admin@example.com", "other admin password")

	a, b := loopback(0), loopback(1)
	for i := 0; i < throttle.DefaultUserAddrLimit; i++ {
		if r := signIn(t, env.URL, a, "ann@example.com", "wrong"); outcome(r) != "invalid_grant" {
			t.Fatalf("failure %d: %d %s", i, r.Status, r.Body)
		}
	}
	if r := signIn(t, env.URL, a, "ann@example.com", memberPW); outcome(r) != "throttled" {
		t.Fatalf("right password from A after %d failures from A: %d %s", throttle.DefaultUserAddrLimit, r.Status, r.Body)
	}
	if r := signIn(t, env.URL, b, "ANN@example.com", memberPW); outcome(r) != "token" {
		t.Fatalf("right password from a clean address B: %d %s", r.Status, r.Body)
	}
	// The same for the admin, through the admin UI's sign-in form.
	for i := 0; i < throttle.DefaultUserAddrLimit; i++ {
		signIn(t, env.URL, a, servertest.AdminEmail, "wrong")
	}
	if r := signIn(t, env.URL, a, servertest.AdminEmail, servertest.AdminPassword); outcome(r) != "throttled" {
		t.Fatalf("admin's right password from A after failures from A: %d %s", r.Status, r.Body)
	}
	fromB := clientFrom(b, nil)
	fromB.Jar, _ = cookiejar.New(nil)
	fromB.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	csrf := between(readAll(must(fromB.Get(env.URL+"/admin/login"))), `name="csrf" value="`, `"`)
	resp := must(fromB.PostForm(env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {servertest.AdminEmail}, "password": {servertest.AdminPassword}}))
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/admin" {
		t.Fatalf("admin's sign-in from a clean address B: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	// The success cleared the count; now failures from many addresses
	// reach the per-username cap, and even a clean address waits.
	for i := 0; i < throttle.DefaultUserLimit; i++ {
		from := loopback(2 + i/throttle.DefaultUserAddrLimit)
		if r := signIn(t, env.URL, from, "ann@example.com", "wrong"); outcome(r) != "invalid_grant" {
			t.Fatalf("failure %d from %s: %d %s", i, from, r.Status, r.Body)
		}
	}
	clean := loopback(200)
	r := signIn(t, env.URL, clean, "ann@example.com", memberPW)
	if outcome(r) != "throttled" || retryAfter(r) > int(throttle.DefaultUserWindow/time.Second) {
		t.Fatalf("right password at the per-username cap: %d %s Retry-After %q", r.Status, r.Body, r.Header.Get("Retry-After"))
	}

	// Clearing: a member may not, another account's admin sees no such
	// user, the account's admin may.
	servertest.Expect(t, env.As(bob, "DELETE", "/v1/users/"+annID+"/throttle", nil), 403, "forbidden")
	servertest.Expect(t, env.As(otherAdmin, "DELETE", "/v1/users/"+annID+"/throttle", nil), 404, "not_found")
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/users/usr_nosuchuser/throttle", nil), 404, "not_found")
	if r := signIn(t, env.URL, clean, "ann@example.com", memberPW); outcome(r) != "throttled" {
		t.Fatalf("refused clears cleared something: %d %s", r.Status, r.Body)
	}
	servertest.Expect(t, env.As(admin, "DELETE", "/v1/users/"+annID+"/throttle", nil), 204, "")
	if r := signIn(t, env.URL, clean, "ann@example.com", memberPW); outcome(r) != "token" {
		t.Fatalf("right password after the admin cleared the throttle: %d %s", r.Status, r.Body)
	}
	found := false
	for _, e := range env.As(admin, "GET", "/v1/audit", nil).Map(t)["data"].([]any) {
		m := e.(map[string]any)
		if m["action"] == "user.throttle_clear" && m["target_id"] == annID && m["actor"] == servertest.AdminEmail {
			found = true
		}
	}
	if !found {
		t.Fatal("no audit entry for the clear")
	}

	// The admin UI's button does the same.
	for i := 0; i < throttle.DefaultUserAddrLimit; i++ {
		env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": "wrong"})
	}
	if r := env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}); outcome(r) != "throttled" {
		t.Fatalf("not throttled before the UI clear: %d %s", r.Status, r.Body)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	csrf = between(readAll(must(c.Get(env.URL+"/admin/login"))), `name="csrf" value="`, `"`)
	readAll(must(c.PostForm(env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {servertest.AdminEmail}, "password": {servertest.AdminPassword}})))
	page := readAll(must(c.Get(env.URL + "/admin/users/" + annID)))
	if !strings.Contains(page, `action="/admin/users/`+annID+`/throttle"`) {
		t.Fatal("no clear button on the user's page")
	}
	csrf = between(page, `name="csrf" value="`, `"`)
	// Without the CSRF token the form is refused.
	if resp := must(c.PostForm(env.URL+"/admin/users/"+annID+"/throttle", nil)); resp.StatusCode != 403 {
		t.Fatalf("clear without CSRF: %d", resp.StatusCode)
	}
	page = readAll(must(c.PostForm(env.URL+"/admin/users/"+annID+"/throttle", url.Values{"csrf": {csrf}})))
	if !strings.Contains(page, "Cleared the failed sign-ins of ann@example.com") {
		t.Fatalf("no confirmation after the clear: %.300s", page)
	}
	if r := env.Request("POST", "/authorization", map[string]string{"username": "ann@example.com", "password": memberPW}); outcome(r) != "token" {
		t.Fatalf("right password after the UI clear: %d %s", r.Status, r.Body)
	}
}

func must(resp *http.Response, err error) *http.Response {
	if err != nil {
		panic(err)
	}
	return resp
}

// TestThrottleCluster runs two real gatehouse processes on one PostgreSQL
// schema and one private Redis: failures on either node count once,
// parallel guesses split over both nodes are checked only up to the limit,
// a clear on one node works on the other, and without Redis sign-in fails
// closed with 503.
func TestThrottleCluster(t *testing.T) {
	a, b, rs, _ := clusterPair(t)
	nodes := []*process{a, b}
	const adminPW = processAdminPassword
	_, out, _ := a.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": adminPW})
	admin, _ := out["access_token"].(string)
	st, u, _ := a.call("POST", "/v1/users", admin, map[string]any{"email": "ann@example.com", "password": memberPW})
	if st != 201 {
		t.Fatalf("create user: %d %v", st, u)
	}
	annID := u["id"].(string)

	// Sequential failures, alternating between the nodes: one count.
	for i := 0; i < throttle.DefaultUserAddrLimit; i++ {
		st, out, _ := nodes[i%2].call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": "wrong"})
		if st != 400 {
			t.Fatalf("failure %d on node %d: %d %v", i, i%2, st, out)
		}
	}
	for i, n := range nodes {
		if st, out, _ := n.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": adminPW}); st != 429 {
			t.Fatalf("right password on node %d after failures on both: %d %v", i, st, out)
		}
	}

	// 100 parallel guesses, half to each node.
	var shots []volleyReq
	for i := 0; i < 100; i++ {
		shots = append(shots, grantShot(t, nodes[i%2].url, i/2, "ann@example.com", fmt.Sprintf("wrong %d", i), ""))
	}
	got := countOutcomes(volley(t, shots).resps, outcome)
	if got["invalid_grant"] != throttle.DefaultUserAddrLimit || got["throttled"]+got["busy"] != 100-throttle.DefaultUserAddrLimit {
		t.Fatalf("100 parallel guesses over two nodes: %v; want %d checked", got, throttle.DefaultUserAddrLimit)
	}
	t.Logf("100 parallel guesses over two nodes: %v", got)

	// A clear on A lifts the throttle on B.
	if st, _, _ := a.call("DELETE", "/v1/users/"+annID+"/throttle", admin, nil); st != 204 {
		t.Fatalf("clear: %d", st)
	}
	if st, out, _ := b.call("POST", "/authorization", "", map[string]string{"username": "ann@example.com", "password": memberPW}); st != 200 {
		t.Fatalf("sign-in on B after a clear on A: %d %v", st, out)
	}

	// Without Redis nobody is checked: 503, never a free pass.
	rs.stop()
	for i, n := range nodes {
		st, out, _ := n.call("POST", "/authorization", "", map[string]string{"username": "ann@example.com", "password": memberPW})
		if st != 503 || out["error"] != "temporarily_unavailable" {
			t.Fatalf("sign-in on node %d without Redis: %d %v", i, st, out)
		}
	}
	csrf, cookie := adminLoginForm(t, b.url)
	resp, err := http.DefaultTransport.RoundTrip(formRequest(t, b.url+"/admin/login",
		url.Values{"csrf": {csrf}, "email": {"ann@example.com"}, "password": {memberPW}}, "Cookie", "gatehouse_login_csrf="+cookie))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("admin sign-in without Redis: %d", resp.StatusCode)
	}
}

// vmHWM returns the peak resident memory of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}

// TestPasswordStorm runs a real server process with the default argon2id
// parameters (19 MiB a hash) and sends it volleys of 300 simultaneous
// sign-ins with unknown usernames, each from its own address so that the
// throttle lets them all through to the hasher. Whatever the number of
// attempts, the hasher runs only a few at once and refuses the rest with
// 503 and Retry-After before hashing: the server's peak RSS stays under
// 600 MiB (it went past 3 GB before the limit), and an authenticated
// GET /v1/me answered meanwhile keeps a p99 near 50 ms on a quiet
// machine (it went past 3 s with the hasher unbounded).
func TestPasswordStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process and hashes with the real parameters")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the server's peak memory from /proc")
	}
	const (
		attackers = 300
		volleys   = 10
		maxRSS    = 600 << 20
		// The target is 50 ms (20–35 ms measured on a quiet machine, logged
		// below); the bound is wider so that a machine shared with other
		// work (the race detector's tests beside it) does not fail it, and
		// still half of what an unbounded hasher did (p99 3.2 s here with
		// the limit lifted).
		maxP99 = 1500 * time.Millisecond
	)
	p := startProcess(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	pid := p.cmd.Process.Pid
	_, out, _ := p.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	tok, _ := out["access_token"].(string)
	if st, out, _ := p.call("PUT", "/v1/settings", tok, map[string]any{"rate_limit": map[string]int{"burst": 1_000_000}}); st != 200 {
		t.Fatalf("settings: %d %v", st, out)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	me := func() (time.Duration, int) {
		req, _ := http.NewRequest("GET", p.url+"/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return time.Since(start), 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), resp.StatusCode
	}
	var quiet []time.Duration
	for i := 0; i < 50; i++ {
		d, st := me()
		if st != 200 {
			t.Fatalf("GET /v1/me: %d", st)
		}
		quiet = append(quiet, d)
	}
	before := vmHWM(t, pid)

	type sample struct {
		at     time.Time
		d      time.Duration
		status int
	}
	var (
		samples []sample
		stop    = make(chan struct{})
		sampled = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			at := time.Now()
			d, st := me()
			samples = append(samples, sample{at, d, st})
			time.Sleep(2 * time.Millisecond)
		}
	}()
	outcomes := map[string]int{}
	var windows [][2]time.Time
	for v := 0; v < volleys; v++ {
		shots := make([]volleyReq, attackers)
		for i := range shots {
			shots[i] = grantShot(t, p.url, i, fmt.Sprintf("storm-%d-%d@example.com", v, i), "wrong password", loopback(i))
		}
		res := volley(t, shots)
		for k, n := range countOutcomes(res.resps, outcome) {
			outcomes[k] += n
		}
		windows = append(windows, [2]time.Time{res.released, res.done})
	}
	close(stop)
	<-sampled
	peak := vmHWM(t, pid)

	var during []time.Duration
	for _, s := range samples {
		if s.status != 200 {
			t.Fatalf("GET /v1/me during the storm: %d", s.status)
		}
		for _, w := range windows {
			if !s.at.Before(w[0]) && s.at.Before(w[1]) {
				during = append(during, s.d)
				break
			}
		}
	}
	var stormTime time.Duration
	for _, w := range windows {
		stormTime += w[1].Sub(w[0])
	}
	p99 := percentile(during, 0.99)
	t.Logf("%d volleys of %d parallel attempts in %v: %v", volleys, attackers, stormTime.Round(time.Millisecond), outcomes)
	t.Logf("server peak RSS %d MiB (%d MiB before the storm)", peak>>20, before>>20)
	t.Logf("GET /v1/me during the storm: %d answers, p50 %v, p99 %v, max %v; quiet p50 %v",
		len(during), percentile(during, 0.5), p99, percentile(during, 1), percentile(quiet, 0.5))

	if peak > maxRSS {
		t.Fatalf("server peak RSS %d MiB, want under %d MiB", peak>>20, maxRSS>>20)
	}
	if len(during) < 20 {
		t.Fatalf("only %d GET /v1/me answers during the storm", len(during))
	}
	if p99 > maxP99 {
		t.Fatalf("GET /v1/me p99 %v during the storm, want under %v", p99, maxP99)
	}
	if outcomes["invalid_grant"]+outcomes["busy"] != attackers*volleys {
		t.Fatalf("outcomes %v: want only invalid_grant and 503 busy", outcomes)
	}
	if outcomes["busy"] == 0 {
		t.Fatal("no attempt refused: the hashing limit did not engage")
	}
}

// TestThrottleHugeUsernames sends failed sign-ins with 1 MB usernames, as
// many as one address may make (every one counted, the next refused), and
// shows that the server's heap keeps nothing of their size. (TestMemoryBounded
// in throttle/ does 800 on the throttle itself; a 1 MB request is slow to
// parse under the race detector.)
func TestThrottleHugeUsernames(t *testing.T) {
	env := servertest.Start(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	const workers, each = 2, throttle.DefaultAddrLimit / 2
	errs := make(chan string, workers*each)
	c := clientFrom(loopback(0), nil)
	huge := func(w, i int) *servertest.Response {
		name := strings.Repeat("x", 1_000_000) + fmt.Sprintf("-%d-%d", w, i)
		resp, err := c.Post(env.URL+"/authorization", "application/json", strings.NewReader(`{"username":"`+name+`","password":"wrong"}`))
		if err != nil {
			return &servertest.Response{Body: []byte(err.Error())}
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if r := huge(w, i); outcome(r) != "invalid_grant" {
					errs <- fmt.Sprintf("%d %s", r.Status, r.Body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("sign-in with a 1 MB username: %s", e)
	}
	if r := huge(workers, 0); outcome(r) != "throttled" {
		t.Fatalf("over the address limit with a 1 MB username: %d %s", r.Status, r.Body)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d failed sign-ins with 1 MB usernames: heap %+d KiB", workers*each+1, grown>>10)
	if grown > 16<<20 {
		t.Fatalf("heap grew %d MiB", grown>>20)
	}
}
