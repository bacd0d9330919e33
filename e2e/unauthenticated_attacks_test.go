package e2e

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/throttle"
)

// Resource exhaustion by unauthenticated (or cheaply authenticated)
// callers: rows stored, memory remembered, CPU spent per request.

// exhaustPost sends one POST with client c and reads the answer.
func exhaustPost(c *http.Client, u, ctype string, body string, headers ...string) *servertest.Response {
	req, err := http.NewRequest("POST", u, strings.NewReader(body))
	if err != nil {
		return &servertest.Response{Body: []byte(err.Error())}
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return &servertest.Response{Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &servertest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// exhaustRows counts every row of every table of env's store.
func exhaustRows(t *testing.T, db *sql.DB, sqlite bool) map[string]int {
	t.Helper()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if sqlite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := map[string]int{}
	for _, n := range names {
		var c int
		if err := db.QueryRow(`SELECT COUNT(*) FROM "` + n + `"`).Scan(&c); err != nil {
			t.Fatalf("count %s: %v", n, err)
		}
		out[n] = c
	}
	return out
}

// exhaustHeap is the live heap after a collection.
func exhaustHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestExhaustThrottleNoticeHugeUsernames: "a 1 MB username costs the
// throttle 16 bytes" (docs/security.md, Bounded input). Once an address
// is over its limit of failures, every further sign-in from it is
// refused before hashing — cheaply, and as often as the attacker likes.
// Each refusal with a new ~1 MB username must not be remembered in
// full anywhere.
func TestExhaustThrottleNoticeHugeUsernames(t *testing.T) {
	env := servertest.Start(t)
	c := clientFrom(loopback(7), nil)
	// Use up the address's failures with small unknown usernames.
	for i := 0; i < throttle.DefaultAddrLimit; i++ {
		r := exhaustPost(c, env.URL+"/authorization", "application/json", fmt.Sprintf(`{"username":"nobody%d@example.com","password":"wrong password"}`, i))
		if outcome(r) != "invalid_grant" {
			t.Fatalf("failure %d: %d %s", i, r.Status, r.Body)
		}
	}
	before := exhaustHeap()
	const refusals = 40 // 40 MiB kept if each username were
	pad := strings.Repeat("x", 1_000_000)
	var wg sync.WaitGroup
	var bad atomic.Int64
	next := atomic.Int64{}
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > refusals {
					return
				}
				r := exhaustPost(c, env.URL+"/authorization", "application/json", `{"username":"`+pad+fmt.Sprint(i)+`","password":"wrong password"}`)
				if outcome(r) != "throttled" {
					bad.Add(1)
					t.Logf("refusal %d: %d %.200s", i, r.Status, r.Body)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d sign-ins over the address limit were not throttled", bad.Load(), refusals)
	}
	grown := exhaustHeap() - before
	t.Logf("%d refused sign-ins with 1 MB usernames: heap %+d MiB", refusals, grown>>20)
	if grown > 16<<20 {
		t.Errorf("%d refused sign-ins with distinct 1 MB usernames from one over-limit address grew the heap by %d MiB (kept after GC)", refusals, grown>>20)
	}
}

// TestDeviceAuthorizationThrottle: an application's client id is public,
// and anyone may start a device authorization with it, each start a row.
// Of StartsPerHour+20 starts released together from one client address
// over connections opened in advance (spread over two nodes sharing Redis
// in the second case), exactly StartsPerHour are answered with a device
// code and stored; the rest are 429 too_many_attempts with Retry-After and
// store nothing. Another address still starts one.
func TestDeviceAuthorizationThrottle(t *testing.T) {
	for _, nodes := range []int{1, 2} {
		t.Run(strconv.Itoa(nodes)+" nodes", func(t *testing.T) {
			envs := startsNodes(t, nodes)
			env := envs[0]
			_, _, devTok, _ := developer(t, env)
			app := registerApp(t, env, devTok, "public", []string{"http://127.0.0.1/callback"}, nil)
			db := storeDB(t, env)
			body := url.Values{"client_id": {app.ClientID}}.Encode()
			n := service.StartsPerHour + 20
			shots := make([]volleyReq, n)
			for i := range shots {
				req, _ := http.NewRequest("POST", envs[i%nodes].URL+"/oauth/device_authorization", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				shots[i] = volleyReq{req: req, from: loopback(9)}
			}
			startsCounted(t, "device authorizations", volley(t, shots).resps, `"device_code"`)
			if rows := tableRows(t, db, "device_codes"); rows != service.StartsPerHour {
				t.Fatalf("%d device codes stored after %d starts let through", rows, service.StartsPerHour)
			}
			r := exhaustPost(clientFrom(loopback(10), nil), env.URL+"/oauth/device_authorization", "application/x-www-form-urlencoded", body)
			if r.Status != 200 {
				t.Fatalf("another address's device authorization: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestPasswordlessSignInThrottle: anyone may begin a password-less
// passkey sign-in, and at most MaxOpenPasswordlessSignIns wait at once;
// one client address must not fill that room and shut everyone else out.
// Of StartsPerHour+20 begins released together from one address, exactly
// StartsPerHour are answered with options and stored; the rest are 429
// with Retry-After and store nothing; another address still begins one.
func TestPasswordlessSignInThrottle(t *testing.T) {
	env := startOnLocalhost(t, func(c *server.Config) { c.MaxConnsPerIP = 2 * service.StartsPerHour })
	db := storeDB(t, env)
	csrf, cookie := adminLoginForm(t, env.URL)
	body := url.Values{"csrf": {csrf}}.Encode()
	n := service.StartsPerHour + 20
	shots := make([]volleyReq, n)
	for i := range shots {
		req, _ := http.NewRequest("POST", env.URL+"/admin/login/passkey/options", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", "gatehouse_login_csrf="+cookie)
		shots[i] = volleyReq{req: req, from: "127.0.0.1"}
	}
	startsCounted(t, "password-less sign-ins", volley(t, shots).resps, `"challenge"`)
	if rows := tableRows(t, db, "passkey_challenges"); rows != service.StartsPerHour {
		t.Fatalf("%d passkey challenges stored after %d begins let through", rows, service.StartsPerHour)
	}
	vcsrf, vcookie := adminLoginForm(t, env.URL)
	r := exhaustPost(clientFrom("127.0.0.2", nil), env.URL+"/admin/login/passkey/options", "application/x-www-form-urlencoded",
		url.Values{"csrf": {vcsrf}}.Encode(), "Cookie", "gatehouse_login_csrf="+vcookie)
	if r.Status != 200 {
		t.Fatalf("another address's password-less sign-in: %d %.300s", r.Status, r.Body)
	}
}

// startsNodes starts nodes servers on one store (sharing Redis when more
// than one) that take every start of a test from one address over a
// connection of its own.
func startsNodes(t *testing.T, nodes int) []*servertest.Env {
	dbURL := servertest.DatabaseURL(t)
	prefix := ""
	if nodes > 1 {
		prefix = redistest.Prefix(t, redistest.Client(t))
	}
	var envs []*servertest.Env
	for range nodes {
		envs = append(envs, servertest.Start(t, func(c *server.Config) {
			c.DatabaseURL, c.MaxConnsPerIP = dbURL, 2*service.StartsPerHour
			if nodes > 1 {
				c.RedisURL, c.RedisPrefix = redistest.URL(), prefix
			}
		}))
	}
	return envs
}

// startsCounted checks the answers to StartsPerHour+20 starts from one
// address: exactly StartsPerHour carry want, the rest are 429
// too_many_attempts with Retry-After.
func startsCounted(t *testing.T, what string, resps []*servertest.Response, want string) {
	t.Helper()
	var let, refused int
	for _, r := range resps {
		switch {
		case r.Status == 200 && strings.Contains(string(r.Body), want):
			let++
		case r.Status == 429 && strings.Contains(string(r.Body), `"too_many_attempts"`) && r.Header.Get("Retry-After") != "":
			refused++
		default:
			t.Errorf("%s: %d %.300s", what, r.Status, r.Body)
		}
	}
	if let != service.StartsPerHour || refused != len(resps)-service.StartsPerHour {
		t.Fatalf("%d %s at once from one address: %d let through, %d refused; want %d and %d",
			len(resps), what, let, refused, service.StartsPerHour, len(resps)-service.StartsPerHour)
	}
}

// tableRows counts the rows of table in the store db.
func tableRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestExhaustRegistrationForgedXFF: dynamic registration is "at most
// 20 registrations per client address an hour" (docs/security.md); with
// no trusted proxy, X-Forwarded-For and Forwarded must not make one peer
// many addresses.
func TestExhaustRegistrationForgedXFF(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	c := clientFrom(loopback(11), nil)
	created := 0
	for i := 0; i < 40; i++ {
		body := fmt.Sprintf(`{"client_name":"zz %d","redirect_uris":["http://127.0.0.1/cb"]}`, i)
		fwd := fmt.Sprintf("198.51.%d.%d", i/200, i%200+1)
		r := exhaustPost(c, env.URL+"/oauth/register", "application/json", body,
			"X-Forwarded-For", fwd, "Forwarded", "for="+fwd, "X-Real-Ip", fwd, "True-Client-Ip", fwd)
		switch r.Status {
		case 201:
			created++
		case 429:
		default:
			t.Errorf("registration %d: %d %.200s", i, r.Status, r.Body)
		}
	}
	if created > 20 {
		t.Errorf("one peer with forged forwarding headers registered %d clients; the limit is 20 an hour", created)
	}
}

// TestExhaustNothingStored: a mixed flood of unauthenticated requests
// that all fail (unknown users, unknown clients, garbage tokens, sign-in
// pages, the authorize endpoint with unknown clients, metadata, health)
// from many addresses writes no row anywhere.
func TestExhaustNothingStored(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	db := storeDB(t, env)
	sqlite := env.DBPath != ""
	before := exhaustRows(t, db, sqlite)
	type shot struct{ method, path, ctype, body string }
	shots := []shot{
		{"POST", "/authorization", "application/json", `{"username":"ghost@example.com","password":"nope nope"}`},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=password&username=ghost2%40example.com&password=x"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=gci_nope&client_secret=gcs_nope"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&client_id=gci_nope&refresh_token=grt_nope"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&client_id=gci_nope&code=abc&code_verifier=x&redirect_uri=https%3A%2F%2Fa"},
		{"POST", "/oauth/token", "application/x-www-form-urlencoded", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=gci_nope&device_code=gdc_x"},
		{"POST", "/oauth/device_authorization", "application/x-www-form-urlencoded", "client_id=gci_nope"},
		{"POST", "/oauth/revoke", "application/x-www-form-urlencoded", "token=gat_nope"},
		{"POST", "/oauth/introspect", "application/x-www-form-urlencoded", "token=gat_nope"},
		{"GET", "/oauth/authorize?response_type=code&client_id=gci_nope&redirect_uri=https%3A%2F%2Fa&code_challenge=x&code_challenge_method=S256", "", ""},
		{"GET", "/admin/login", "", ""},
		{"POST", "/admin/login", "application/x-www-form-urlencoded", "csrf=a&email=ghost3%40example.com&password=x"},
		{"GET", "/admin/login/sso?email=ghost%40example.com", "", ""},
		{"GET", "/.well-known/oauth-authorization-server", "", ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/metrics", "", ""},
		{"GET", "/device?user_code=BCDF-GHJK", "", ""},
		{"GET", "/v1/me", "", ""},
		{"GET", "/v1/me", "", "gak_nope"},
		{"POST", "/v1/secret-scanning/github", "application/json", `[{"token":"gat_x","type":"t","url":"u","source":"s"}]`},
	}
	var wg sync.WaitGroup
	var fives atomic.Int64
	for a := 0; a < 20; a++ {
		c := clientFrom(loopback(100+a), nil)
		wg.Go(func() {
			for _, s := range shots {
				var body io.Reader
				if s.method == "POST" {
					body = strings.NewReader(s.body)
				}
				req, _ := http.NewRequest(s.method, env.URL+s.path, body)
				if s.ctype != "" {
					req.Header.Set("Content-Type", s.ctype)
				}
				if s.path == "/admin/login" && s.method == "POST" {
					req.Header.Set("Cookie", "gatehouse_login_csrf=a")
				}
				if s.body != "" && s.method == "GET" {
					req.Header.Set("X-API-Token", s.body)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("%s %s: %v", s.method, s.path, err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 && resp.StatusCode != 503 { // 503: the hasher's queue is full (docs/security.md)
					fives.Add(1)
					t.Errorf("%s %s: %d %.200s", s.method, s.path, resp.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	after := exhaustRows(t, db, sqlite)
	for k, n := range after {
		if n != before[k] && k != "meta" && k != "leases" { // meta: the readiness probe's one row
			t.Errorf("table %s: %d rows before the flood, %d after", k, before[k], n)
		}
	}
}

// TestExhaustBigInputs: huge or many inputs on the unauthenticated
// endpoints get a clear 4xx JSON error fast — never a 5xx — and nothing
// is stored.
func TestExhaustBigInputs(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.DynamicRegistration = true })
	db := storeDB(t, env)
	sqlite := env.DBPath != ""
	before := exhaustRows(t, db, sqlite)
	form := "application/x-www-form-urlencoded"
	jsonT := "application/json"
	var manyParams, repeated, manyScopes strings.Builder
	for i := 0; manyParams.Len() < 1000_000; i++ {
		fmt.Fprintf(&manyParams, "p%d=&", i)
	}
	manyParams.WriteString("grant_type=client_credentials")
	for repeated.Len() < 1000_000 {
		repeated.WriteString("scope=a&")
	}
	repeated.WriteString("grant_type=client_credentials")
	for manyScopes.Len() < 900_000 {
		manyScopes.WriteString("s" + fmt.Sprint(manyScopes.Len()) + " ")
	}
	long := strings.Repeat("a", 900_000)
	deep := strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000)
	deepObj := `{"grant_type":` + strings.Repeat(`{"a":`, 100_000) + `1` + strings.Repeat("}", 100_000) + `}`
	cases := []struct {
		name, path, ctype, body string
		headers                 []string
	}{
		{"body over 1 MiB", "/oauth/token", form, "grant_type=password&username=" + strings.Repeat("a", 1<<20+10), nil},
		{"many parameters", "/oauth/token", form, manyParams.String(), nil},
		{"repeated parameter", "/oauth/token", form, repeated.String(), nil},
		{"many scopes", "/oauth/token", form, "grant_type=client_credentials&client_id=gci_x&client_secret=gcs_x&scope=" + url.QueryEscape(manyScopes.String()), nil},
		{"many scopes, password", "/oauth/token", form, "grant_type=password&username=a%40b.c&password=x&scope=" + url.QueryEscape(manyScopes.String()), nil},
		{"long client_id", "/oauth/token", form, "grant_type=client_credentials&client_secret=gcs_x&client_id=" + long, nil},
		{"long client_id in Basic", "/oauth/token", form, "grant_type=client_credentials", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(long+":x"))}},
		{"long username", "/oauth/token", form, "grant_type=password&password=x&username=" + long, nil},
		{"long password", "/authorization", form, "username=a%40b.c&password=" + long, nil},
		{"long refresh token", "/oauth/token", form, "grant_type=refresh_token&client_id=gci_x&refresh_token=" + long, nil},
		{"long code", "/oauth/token", form, "grant_type=authorization_code&client_id=gci_x&redirect_uri=https%3A%2F%2Fa&code_verifier=x&code=" + long, nil},
		{"long grant_type", "/oauth/token", form, "grant_type=" + long, nil},
		{"deep JSON array", "/oauth/token", jsonT, deep, nil},
		{"deep JSON object", "/oauth/token", jsonT, deepObj, nil},
		{"deep JSON /authorization", "/authorization", jsonT, deepObj, nil},
		{"device scopes", "/oauth/device_authorization", form, "client_id=gci_x&scope=" + url.QueryEscape(manyScopes.String()), nil},
		{"device long client", "/oauth/device_authorization", form, "client_id=" + long, nil},
		{"revoke long token", "/oauth/revoke", form, "token=" + long, nil},
		{"register deep", "/oauth/register", jsonT, deepObj, nil},
		{"register many uris", "/oauth/register", jsonT, `{"client_name":"x","redirect_uris":[` + strings.TrimSuffix(strings.Repeat(`"http://127.0.0.1/cb",`, 40_000), ",") + `]}`, nil},
		{"register long name", "/oauth/register", jsonT, `{"client_name":"` + long + `","redirect_uris":["http://127.0.0.1/cb"]}`, nil},
		{"bulk revoke deep", "/v1/credentials/revoke", jsonT, deepObj, nil},
		{"github scanning big", "/v1/secret-scanning/github", jsonT, `[` + strings.TrimSuffix(strings.Repeat(`{"token":"gat_x","type":"t","url":"u","source":"s"},`, 15_000), ",") + `]`,
			[]string{"Github-Public-Key-Identifier", long[:1000], "Github-Public-Key-Signature", "AAAA"}},
	}
	c := clientFrom(loopback(30), nil)
	for i, tc := range cases {
		start := time.Now()
		r := exhaustPost(c, env.URL+tc.path, tc.ctype, tc.body, tc.headers...)
		took := time.Since(start)
		var e struct {
			Error string `json:"error"`
		}
		jerr := json.Unmarshal(r.Body, &e)
		t.Logf("%-26s %d %-22s %v", tc.name, r.Status, e.Error, took.Round(time.Millisecond))
		switch {
		case tc.path == "/oauth/revoke" && r.Status == 200:
			// RFC 7009 §2.2: an unknown token is 200.
		case r.Status == http.StatusRequestHeaderFieldsTooLarge:
			// net/http's own answer to a header over MaxHeaderBytes.
		case r.Status < 400 || r.Status >= 500 || jerr != nil || e.Error == "":
			t.Errorf("case %d %s: %d %.300s", i, tc.name, r.Status, r.Body)
		}
		if took > 3*time.Second {
			t.Errorf("case %s took %v", tc.name, took)
		}
	}
	after := exhaustRows(t, db, sqlite)
	for k, n := range after {
		if n != before[k] && k != "meta" && k != "leases" {
			t.Errorf("table %s: %d rows before, %d after", k, before[k], n)
		}
	}
}

// TestExhaustHashStorm: with the shipped argon2id parameters, a volley
// of sign-ins of unknown users, each from its own address (so that the
// throttle lets every one through to the hasher), is answered at once:
// a few hashed (400 invalid_grant), the rest 503 with Retry-After
// (docs/security.md, Password hashing limits) — none left queueing.
func TestExhaustHashStorm(t *testing.T) {
	env := servertest.Start(t, func(c *server.Config) { c.PasswordParams = password.DefaultParams })
	const n = 150
	var shots []volleyReq
	for i := 0; i < n; i++ {
		shots = append(shots, volleyReq{req: jsonRequest(t, env.URL+"/authorization",
			fmt.Sprintf(`{"username":"storm%d@example.com","password":"a wrong password %d"}`, i, i)), from: loopback(200 + i)})
	}
	res := volley(t, shots)
	got := map[string]int{}
	for _, r := range res.resps {
		got[outcome(r)]++
	}
	took := res.done.Sub(res.released)
	t.Logf("%d sign-ins at once: %v in %v", n, got, took.Round(time.Millisecond))
	if got["invalid_grant"]+got["busy"] != n {
		t.Errorf("answers outside invalid_grant and 503: %v", got)
	}
	if got["busy"] == 0 {
		t.Errorf("no sign-in refused 503 under a storm of %d", n)
	}
	if took > 10*time.Second {
		t.Errorf("the storm took %v to answer", took)
	}
}
