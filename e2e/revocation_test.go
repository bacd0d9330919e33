package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// The tests in this file race each revoking change of SPEC §4 against
// concurrent issuance and use of what it revokes, on a real server: SQLite,
// or PostgreSQL with GATEHOUSE_TEST_DATABASE=postgres. The connections are
// opened first; then every racer and the revoking change are released
// together, and the change is sent once a given number of racer requests
// have answered (or tokens have been obtained), a different number each
// round, so that it lands early, midway and late in the burst. The promise
// (SPEC §9.3): once the revoking change has answered, every token any racer
// obtained — before, during or after it — is refused, every time, every
// request sent after the answer is refused, and nothing answers 5xx.

// raceDeadline bounds a round, so that a change that never takes effect
// fails the test instead of hanging it.
const raceDeadline = 15 * time.Second

// raceNames numbers the names of credentials made in races: names are
// unique per owner among live credentials.
var raceNames atomic.Uint64

// raceName returns a name no other credential made in a race has.
func raceName() string { return fmt.Sprintf("made in the race #%d", raceNames.Add(1)) }

// loopbackHosts numbers the loopback addresses handed to hammers.
var loopbackHosts atomic.Uint32

// nextLoopback returns a loopback address no other hammer of this process
// uses, so that the password throttle's count per address of one race does
// not spill into the next.
func nextLoopback() net.IP {
	n := loopbackHosts.Add(1)
	return net.IPv4(127, 1, byte(n/200), byte(10+n%200))
}

// hammer is an HTTP client for one server whose connections are opened
// before a race, from a loopback address of its own. Its methods are safe
// for concurrent use and report transport failures with t.Errorf.
type hammer struct {
	t      *testing.T
	url    string
	client *http.Client
	dials  atomic.Int64
}

// newHammer returns a hammer with conns connections already open, and
// never more.
func newHammer(t *testing.T, env *servertest.Env, conns int) *hammer {
	t.Helper()
	h := &hammer{t: t, url: env.URL}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: nextLoopback()}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: 2 * conns, IdleConnTimeout: time.Minute,
		// Never more than the connections opened in advance: a burst
		// would otherwise dial more while others are returning, and past
		// the server's connections per address (256) it closes the new
		// ones as it accepts them (a reset, not an answer).
		MaxConnsPerHost: conns,
	}
	h.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h.do("GET", "/healthz", nil)
		}()
	}
	close(start)
	wg.Wait()
	return h
}

// reply is a finished exchange; status 0 means the request failed.
type reply struct {
	status int
	body   []byte
}

// get returns a string field of a JSON object body.
func (r reply) get(field string) string {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	s, _ := m[field].(string)
	return s
}

// code returns the error code of an error body.
func (r reply) code() string { return r.get("error") }

func (r reply) String() string {
	b := bytes.TrimSpace(r.body)
	if len(b) > 160 {
		b = append(b[:160:160], "…"...)
	}
	return fmt.Sprintf("%d %s", r.status, b)
}

// is reports whether r has the status and error code.
func (r reply) is(status int, code string) bool { return r.status == status && r.code() == code }

// do sends a request. body may be nil, url.Values (sent as a form) or any
// other value (sent as JSON); headers are name/value pairs.
func (h *hammer) do(method, path string, body any, headers ...string) reply {
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Errorf("encode %v: %v", b, err)
			return reply{}
		}
		rd, ct = bytes.NewReader(data), "application/json"
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return reply{}
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return reply{}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Errorf("%s %s: read: %v", method, path, err)
		return reply{}
	}
	return reply{resp.StatusCode, data}
}

// as sends a request with a bearer token.
func (h *hammer) as(tok, method, path string, body any) reply {
	return h.do(method, path, body, "Authorization", "Bearer "+tok)
}

func (h *hammer) clientGrant(c credential) reply {
	return h.do("POST", "/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
}

func (h *hammer) passwordGrant(email, pw string) reply {
	return h.do("POST", "/authorization", map[string]string{"username": email, "password": pw})
}

func (h *hammer) refreshGrant(clientID, rt string) reply {
	return h.do("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": clientID, "refresh_token": rt})
}

// me uses an access token.
func (h *hammer) me(tok string) reply { return h.as(tok, "GET", "/v1/me", nil) }

// meAPI uses an API token, acting as actAs when it is not empty.
func (h *hammer) meAPI(tok, actAs string) reply {
	hdr := []string{"X-API-Token", tok}
	if actAs != "" {
		hdr = append(hdr, "X-User-Email", actAs)
	}
	return h.do("GET", "/v1/me", nil, hdr...)
}

// each runs f for every item of items on a few workers and waits.
func each[T any](items []T, f func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				f(it)
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// expectRefused checks that every access token answers 401 invalid_token
// and every refresh token of clientID 400 invalid_grant; it returns how
// many it checked.
func (h *hammer) expectRefused(what string, access []string, clientID string, refresh []string) int {
	each(access, func(tok string) {
		if r := h.me(tok); !r.is(http.StatusUnauthorized, "invalid_token") {
			h.t.Errorf("%s: access token works: %v", what, r)
		}
	})
	each(refresh, func(rt string) {
		if r := h.refreshGrant(clientID, rt); !r.is(http.StatusBadRequest, "invalid_grant") {
			h.t.Errorf("%s: refresh token works: %v", what, r)
		}
	})
	return len(access) + len(refresh)
}

// expectWorking checks that every access token answers 200.
func (h *hammer) expectWorking(what string, access []string) int {
	each(access, func(tok string) {
		if r := h.me(tok); r.status != http.StatusOK {
			h.t.Errorf("%s: access token refused: %v", what, r)
		}
	})
	return len(access)
}

// race is one round: racers released together with one revoking change,
// which is sent once fireAt racer requests have answered (or, with
// onTokens, once racers have obtained fireAt tokens).
type race struct {
	t        *testing.T
	start    chan struct{}
	wg       sync.WaitGroup
	deadline time.Time

	fireAt   int64
	onTokens bool
	fire     chan struct{}
	count    atomic.Int64
	inFlight atomic.Int64
	sent     atomic.Bool // the revoking change has been sent
	answered atomic.Bool // the revoking change has answered
	pending  int64       // racer requests still out when it answered

	mu      sync.Mutex
	access  []string // access tokens racers obtained, all to be refused
	refresh []string // refresh tokens racers obtained, all to be refused
	live    []string // access tokens that must keep working
	refused int      // racer requests that obtained nothing

	usesAfter atomic.Int64 // uses sent after the change answered
	flipFlops atomic.Int64 // refused, then working again before the answer
	during    atomic.Int64 // tokens obtained while the change was out
}

// newRace returns a round whose revoking change fires after fireAt
// answers (at once when fireAt is 0).
func newRace(t *testing.T, fireAt int) *race {
	r := &race{t: t, start: make(chan struct{}), fire: make(chan struct{}), fireAt: int64(fireAt)}
	if fireAt <= 0 {
		close(r.fire)
	}
	return r
}

// racer runs f released together with the other racers.
func (r *race) racer(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-r.start
		f()
	}()
}

// tick counts an answer or a token towards the trigger.
func (r *race) tick() {
	if r.count.Add(1) == r.fireAt {
		close(r.fire)
	}
}

// send runs one racer request; after reports whether the revoking change
// had answered before it was sent.
func (r *race) send(f func() reply) (rep reply, after bool) {
	r.inFlight.Add(1)
	after = r.answered.Load()
	rep = f()
	r.inFlight.Add(-1)
	if !r.onTokens {
		r.tick()
	}
	return rep, after
}

// obtain records tokens a racer obtained, which must be refused once the
// change has answered; refresh may be empty.
func (r *race) obtain(access, refresh string) {
	if r.sent.Load() {
		r.during.Add(1)
	}
	r.keep(access, refresh)
	if r.onTokens {
		r.tick()
	}
}

// keep records tokens that must be refused once the change has answered;
// either may be empty.
func (r *race) keep(access, refresh string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if access != "" {
		r.access = append(r.access, access)
	}
	if refresh != "" {
		r.refresh = append(r.refresh, refresh)
	}
}

// keepLive records an access token that must keep working.
func (r *race) keepLive(tok string) {
	r.mu.Lock()
	r.live = append(r.live, tok)
	r.mu.Unlock()
}

func (r *race) refuse() {
	r.mu.Lock()
	r.refused++
	r.mu.Unlock()
}

// revoke sends the revoking change once fired and checks its answer.
func (r *race) revoke(what string, want int, f func() reply) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-r.start
		select {
		case <-r.fire:
		case <-time.After(raceDeadline):
			r.t.Errorf("%s: never fired (%d of %d)", what, r.count.Load(), r.fireAt)
		}
		r.sent.Store(true)
		rep := f()
		r.pending = r.inFlight.Load()
		r.answered.Store(true)
		if rep.status != want {
			r.t.Errorf("%s: %v, want %d", what, rep, want)
		}
	}()
}

// run releases everything and waits for it.
func (r *race) run() { runTogether(r.start, r) }

// runTogether releases rounds that share one start channel (set before
// any racer was added) and waits for all of them.
func runTogether(start chan struct{}, rs ...*race) {
	for _, r := range rs {
		r.deadline = time.Now().Add(raceDeadline)
	}
	close(start)
	for _, r := range rs {
		r.wg.Wait()
	}
}

// over reports whether the round ran out of time.
func (r *race) over() bool { return time.Now().After(r.deadline) }

// use sends requests with a credential until one sent after the change
// answered has answered: from then on it must be refused (401
// invalid_token). Before that it may work or be refused (the change has
// committed but not yet answered).
func (r *race) use(what string, send func() reply) {
	refused := false
	for !r.over() {
		rep, after := r.send(send)
		switch {
		case rep.is(http.StatusUnauthorized, "invalid_token"):
			refused = true
		case rep.status == http.StatusOK && !after:
			if refused {
				r.flipFlops.Add(1)
			}
		default:
			r.t.Errorf("%s: use sent after=%v: %v", what, after, rep)
			return
		}
		if after {
			r.usesAfter.Add(1)
			return
		}
	}
	r.t.Errorf("%s: the revoking change did not answer in time", what)
}

// useLive sends requests with a credential that must keep working through
// the change, until one sent after it answered has answered.
func (r *race) useLive(what string, send func() reply) {
	for !r.over() {
		rep, after := r.send(send)
		if rep.status != http.StatusOK {
			r.t.Errorf("%s: use sent after=%v: %v", what, after, rep)
			return
		}
		if after {
			return
		}
	}
	r.t.Errorf("%s: the revoking change did not answer in time", what)
}

// issue sends grants in a loop, released with the other racers, until one
// sent after the change answered has answered: that one must be refused
// (refused says how). Each token obtained is kept and used once at once.
func (r *race) issue(what string, grant func() reply, refused func(reply) bool, use func(tok string) reply) {
	for !r.over() {
		rep, after := r.send(grant)
		switch {
		case rep.status == http.StatusOK && !after:
			tok := rep.get("access_token")
			r.obtain(tok, rep.get("refresh_token"))
			r.useOnce(what, func() reply { return use(tok) })
		case refused(rep):
			r.refuse()
			if after {
				return
			}
		default:
			r.t.Errorf("%s: grant sent after=%v: %v", what, after, rep)
			return
		}
	}
	r.t.Errorf("%s: the revoking change did not answer in time", what)
}

// refreshChain rotates an application's refresh token over and over with
// the other refreshers of the race: each presents the newest one, exactly
// one of them gets the next pair, and uses its access token once. A
// refresh sent after the change answered must be invalid_grant; it ends the
// chain.
func (r *race) refreshChain(h *hammer, clientID string, cur *atomic.Pointer[string]) {
	r.refreshChainUntil(h, clientID, cur, func(rep reply) bool { return rep.is(http.StatusBadRequest, "invalid_grant") })
}

// refreshChainUntil is refreshChain for a change after which a refresh is
// refused as refused says (a third-party application no longer a client
// is invalid_client). Before the change answers, invalid_grant is a token
// another refresher rotated first.
func (r *race) refreshChainUntil(h *hammer, clientID string, cur *atomic.Pointer[string], refused func(reply) bool) {
	for !r.over() {
		rt := cur.Load()
		rep, after := r.send(func() reply { return h.refreshGrant(clientID, *rt) })
		switch {
		case rep.status == http.StatusOK && !after:
			at, next := rep.get("access_token"), rep.get("refresh_token")
			cur.CompareAndSwap(rt, &next) // the next rotation starts now
			r.obtain(at, next)
			r.useOnce("refreshed access token", func() reply { return h.me(at) })
		case refused(rep) || rep.is(http.StatusBadRequest, "invalid_grant") && !after:
			if after {
				return
			}
		default:
			r.t.Errorf("refresh sent after=%v: %v", after, rep)
			return
		}
	}
	r.t.Errorf("refresh chain: the revoking change did not answer in time")
}

// useOnce sends one request with a credential that must be refused if the
// change had answered before it was sent.
func (r *race) useOnce(what string, send func() reply) {
	after := r.answered.Load()
	rep := send()
	if after {
		r.usesAfter.Add(1)
	}
	if !rep.is(http.StatusUnauthorized, "invalid_token") && (rep.status != http.StatusOK || after) {
		r.t.Errorf("%s: use sent after=%v: %v", what, after, rep)
	}
}

// madeCredentials collects the client credentials racers created; list is
// read once the race has run.
type madeCredentials struct {
	mu   sync.Mutex
	list []credential
}

// makeCredentials starts n racers that create client credentials with tok
// until the race ends. A credential created before the revocation answered
// is collected (and passed to use, when not nil); a refusal (refused)
// counts as one, and ends its racer once the revocation has answered; any
// other answer, or a credential created after the revocation, fails the
// test.
func (r *race) makeCredentials(h *hammer, tok string, n int, refused func(reply) bool, use func(credential)) *madeCredentials {
	made := &madeCredentials{}
	for range n {
		r.racer(func() {
			for !r.over() {
				rep, after := r.send(func() reply {
					return h.as(tok, "POST", "/v1/credentials", map[string]string{"name": raceName()})
				})
				switch {
				case rep.status == http.StatusCreated && !after:
					var c credential
					if err := json.Unmarshal(rep.body, &c); err != nil {
						r.t.Errorf("credential %v: %v", rep, err)
						return
					}
					made.mu.Lock()
					made.list = append(made.list, c)
					made.mu.Unlock()
					if use != nil {
						use(c)
					}
				case refused(rep):
					r.refuse()
					if after {
						return
					}
				default:
					r.t.Errorf("credential sent after=%v: %v", after, rep)
					return
				}
			}
		})
	}
	return made
}

// figures count what races did.
type figures struct {
	races     int // races run
	obtained  int // tokens racers obtained, all refused afterwards
	during    int // of which while the revoking change was out
	inFlight  int // racer requests out when the revoking change answered
	refused   int // racer requests that obtained nothing
	usesAfter int // uses sent after the revoking change answered
	checked   int // checks made once every racer had finished
	flipFlops int // uses refused, then working again, before the answer
}

func (f *figures) add(g figures) {
	f.races += g.races
	f.obtained += g.obtained
	f.during += g.during
	f.inFlight += g.inFlight
	f.refused += g.refused
	f.usesAfter += g.usesAfter
	f.checked += g.checked
	f.flipFlops += g.flipFlops
}

func (f figures) String() string {
	return fmt.Sprintf("%d races: %d tokens obtained by racers (%d while the revoking change was out), %d racer requests in flight at its answer, %d refused; %d uses sent after the answer; %d checks afterwards; %d flip-flops",
		f.races, f.obtained, f.during, f.inFlight, f.refused, f.usesAfter, f.checked, f.flipFlops)
}

// tally is a test's figures, per round and in all.
type tally struct{ round, total figures }

// add counts a finished race and the checks made after it.
func (tl *tally) add(r *race, checked int) {
	f := figures{races: 1, obtained: len(r.access), during: int(r.during.Load()), inFlight: int(r.pending),
		refused: r.refused, usesAfter: int(r.usesAfter.Load()), checked: checked, flipFlops: int(r.flipFlops.Load())}
	tl.round.add(f)
	tl.total.add(f)
}

// endRound logs the round's figures.
func (tl *tally) endRound(t *testing.T, round int, extra string) {
	t.Helper()
	t.Logf("round %d: %v%s", round, tl.round, extra)
	tl.round = figures{}
}

// log logs the figures of every round.
func (tl *tally) log(t *testing.T) {
	t.Helper()
	t.Logf("in all: %v", tl.total)
}

// unlimit raises the account's rate limits out of the hammers' way.
func unlimit(t *testing.T, env *servertest.Env, admin string) {
	t.Helper()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings",
		map[string]any{"rate_limit": map[string]int{"daily": 100_000_000, "burst": 1_000_000}}), 200, "")
}

// fireAt spreads the revoking change over the burst: early in the first
// round, late in the last.
func fireAt(round, rounds, racers int) int { return 1 + round*racers/rounds }

// TestRevocationCredentialDelete races DELETE /v1/credentials/{id}
// against 200 racers each sending client-credentials grants of that
// credential, and using every token obtained, until the delete has
// answered.
func TestRevocationCredentialDelete(t *testing.T) {
	const rounds, grants = 5, 200
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	unlimit(t, env, admin)
	var tl tally
	for round := range rounds {
		var c credential
		r0 := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("round %d", round)})
		servertest.Expect(t, r0, 201, "")
		r0.JSON(t, &c)
		h := newHammer(t, env, grants+1)
		// One token before the race: its principal is cached.
		pre := accessToken(t, clientToken(env, c))
		servertest.Expect(t, env.As(pre, "GET", "/v1/me", nil), 200, "")

		r := newRace(t, fireAt(round, rounds, grants))
		r.keep(pre, "")
		r.racer(func() { r.use("token from before", func() reply { return h.me(pre) }) })
		for range grants {
			r.racer(func() {
				r.issue("client-credentials grant", func() reply { return h.clientGrant(c) },
					func(rep reply) bool { return rep.is(http.StatusUnauthorized, "invalid_client") }, h.me)
			})
		}
		r.revoke("delete credential", 204, func() reply { return h.as(devTok, "DELETE", "/v1/credentials/"+c.ID, nil) })
		r.run()
		checked := h.expectRefused("after the delete", r.access, "", nil)
		servertest.Expect(t, clientToken(env, c), 401, "invalid_client")
		tl.add(r, checked)
		tl.endRound(t, round, fmt.Sprintf("; %d connections opened", h.dials.Load()))
	}
	tl.log(t)
}

// passwordRefused reports whether a password grant was refused: wrong
// password or disabled user, the throttle, or the password-hashing limit.
func passwordRefused(rep reply) bool {
	return rep.is(http.StatusBadRequest, "invalid_grant") || rep.is(http.StatusTooManyRequests, "too_many_attempts") ||
		rep.is(http.StatusServiceUnavailable, "temporarily_unavailable")
}

// newLogin signs in from an address of its own after a race and returns
// the token, or "" when the race's refused grants have used up the user's
// password throttle.
func newLogin(t *testing.T, env *servertest.Env, email, pw string) string {
	t.Helper()
	rep := newHammer(t, env, 1).passwordGrant(email, pw)
	switch {
	case rep.status == http.StatusOK:
		return rep.get("access_token")
	case rep.is(http.StatusTooManyRequests, "too_many_attempts"):
		t.Logf("a new login of %s is throttled by the race's refused grants", email)
		return ""
	}
	t.Errorf("new login of %s: %v", email, rep)
	return ""
}

// TestRevocationUserDisable races disabling an admin and developer against
// racers sending the user's password grants, rotating the refresh token of
// the user's API access application, sending client-credentials grants of
// the user's credential and making new credentials; then re-enables the
// user: nothing any racer obtained works again, only new logins and new
// grants of the credential do.
func TestRevocationUserDisable(t *testing.T) {
	const rounds, logins, refreshers, grants, creators = 4, 60, 20, 20, 5
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	var tl tally
	for round := range rounds {
		email := fmt.Sprintf("boss%d@example.com", round)
		id := env.CreateUser(op, email, memberPW, "admin", "developer")
		userTok := env.Login(email, memberPW)
		app := enableAPIAccess(t, env, userTok, nil)
		var c credential
		rep := env.As(userTok, "POST", "/v1/credentials", map[string]string{"name": "before"})
		servertest.Expect(t, rep, 201, "")
		rep.JSON(t, &c)
		h := newHammer(t, env, logins+refreshers+grants+creators+3)

		r := newRace(t, fireAt(round, rounds, logins))
		r.keep(userTok, "")
		r.keep(app.AccessToken, app.RefreshToken)
		r.racer(func() { r.use("password token from before", func() reply { return h.me(userTok) }) })
		r.racer(func() { r.use("API access token from before", func() reply { return h.me(app.AccessToken) }) })
		for range logins {
			r.racer(func() {
				r.issue("password grant", func() reply { return h.passwordGrant(email, memberPW) }, passwordRefused, h.me)
			})
		}
		var cur atomic.Pointer[string]
		cur.Store(&app.RefreshToken)
		for range refreshers {
			r.racer(func() { r.refreshChain(h, app.ClientID, &cur) })
		}
		for range grants {
			r.racer(func() {
				r.issue("client-credentials grant", func() reply { return h.clientGrant(c) },
					func(rep reply) bool { return rep.is(http.StatusUnauthorized, "invalid_client") }, h.me)
			})
		}
		made := r.makeCredentials(h, userTok, creators, func(rep reply) bool {
			return rep.is(http.StatusUnauthorized, "invalid_token") || rep.is(http.StatusForbidden, "forbidden")
		}, nil)
		r.revoke("disable", 200, func() reply { return h.as(op, "PATCH", "/v1/users/"+id, map[string]string{"status": "disabled"}) })
		r.run()
		checked := h.expectRefused("after the disable", r.access, app.ClientID, r.refresh)
		each(append([]credential{c}, made.list...), func(c credential) {
			if rep := h.clientGrant(c); !rep.is(http.StatusUnauthorized, "invalid_client") {
				t.Errorf("credential %s of the disabled user grants: %v", c.Name, rep)
			}
		})
		checked += 1 + len(made.list)

		servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+id, map[string]string{"status": "active"}), 200, "")
		checked += h.expectRefused("after re-enabling", r.access, app.ClientID, r.refresh)
		if tok := newLogin(t, env, email, memberPW); tok != "" {
			servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
			if v := env.As(tok, "GET", "/v1/api-access", nil).Map(t); v["enabled"] != false {
				t.Errorf("the application survived the disable: %v", v)
			}
		}
		// The credential itself was not revoked: it grants new tokens again.
		servertest.Expect(t, env.As(accessToken(t, clientToken(env, c)), "GET", "/v1/me", nil), 200, "")
		tl.add(r, checked)
		tl.endRound(t, round, fmt.Sprintf("; %d credentials made in the race", len(made.list)))
	}
	tl.log(t)
}

// TestRevocationAPIAccessDelete races DELETE /v1/api-access against
// racers rotating the application's refresh token and using each access
// token obtained, for several admins at once, each deleting their own
// application at once or after a few rotations.
func TestRevocationAPIAccessDelete(t *testing.T) {
	const rounds, admins, refreshers = 8, 8, 6
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	owners := make([]string, admins)
	for i := range owners {
		email := fmt.Sprintf("owner%d@example.com", i)
		env.CreateUser(op, email, memberPW, "admin")
		owners[i] = env.Login(email, memberPW)
	}
	h := newHammer(t, env, admins*(refreshers+2))
	var tl tally
	for round := range rounds {
		start := make(chan struct{})
		races := make([]*race, admins)
		apps := make([]apiAccess, admins)
		for i, owner := range owners {
			app := enableAPIAccess(t, env, owner, nil)
			r := newRace(t, (round+i)%3)
			r.start, r.onTokens = start, true
			r.keep(app.AccessToken, app.RefreshToken)
			r.racer(func() { r.use("access token from before", func() reply { return h.me(app.AccessToken) }) })
			var cur atomic.Pointer[string]
			cur.Store(&app.RefreshToken)
			for range refreshers {
				r.racer(func() { r.refreshChain(h, app.ClientID, &cur) })
			}
			r.revoke("delete API access", 204, func() reply { return h.as(owner, "DELETE", "/v1/api-access", nil) })
			races[i], apps[i] = r, app
		}
		runTogether(start, races...)
		for i, r := range races {
			checked := h.expectRefused("after the delete", r.access, apps[i].ClientID, r.refresh)
			if v := env.As(owners[i], "GET", "/v1/api-access", nil).Map(t); v["enabled"] != false {
				t.Errorf("after the delete: %v", v)
			}
			tl.add(r, checked)
		}
		tl.endRound(t, round, "")
	}
	tl.log(t)
}

// TestRevocationDeveloperRemoval races removing the developer role with
// revoke_credentials=true against racers sending client-credentials grants
// of the developer's credentials, and against the developer making new
// credentials: once it has answered, no credential of theirs and no token
// any of them issued works.
func TestRevocationDeveloperRemoval(t *testing.T) {
	const rounds, grants, creators, creds = 4, 150, 10, 3
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	devID := env.CreateUser(op, "dev@example.com", memberPW)
	devTok := env.Login("dev@example.com", memberPW)
	var tl tally
	for round := range rounds {
		servertest.Expect(t, env.As(op, "PUT", "/v1/developers/"+devID, nil), 204, "")
		var cs []credential
		for i := range creds {
			var c credential
			rep := env.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("round %d #%d", round, i)})
			servertest.Expect(t, rep, 201, "")
			rep.JSON(t, &c)
			cs = append(cs, c)
		}
		h := newHammer(t, env, grants+creators+creds+1)
		r := newRace(t, fireAt(round, rounds, grants))
		for _, c := range cs {
			tok := accessToken(t, clientToken(env, c))
			r.keep(tok, "")
			r.racer(func() { r.use("token from before", func() reply { return h.me(tok) }) })
		}
		for i := range grants {
			c := cs[i%creds]
			r.racer(func() {
				r.issue("client-credentials grant", func() reply { return h.clientGrant(c) },
					func(rep reply) bool { return rep.is(http.StatusUnauthorized, "invalid_client") }, h.me)
			})
		}
		made := r.makeCredentials(h, devTok, creators, func(rep reply) bool { return rep.is(http.StatusForbidden, "forbidden") },
			func(c credential) {
				if g := h.clientGrant(c); g.status == http.StatusOK {
					tok := g.get("access_token")
					r.obtain(tok, "")
					r.useOnce("token of a credential made in the race", func() reply { return h.me(tok) })
				} else if !g.is(http.StatusUnauthorized, "invalid_client") {
					t.Errorf("grant of a credential made in the race: %v", g)
				}
			})
		r.revoke("remove developer", 200, func() reply {
			rep := h.as(op, "DELETE", "/v1/developers/"+devID+"?revoke_credentials=true", nil)
			if rep.status == http.StatusOK && string(bytes.TrimSpace(rep.body)) != `{"active_credentials":0}` {
				t.Errorf("remove developer: %v", rep)
			}
			return rep
		})
		r.run()
		checked := h.expectRefused("after the removal", r.access, "", nil)
		each(append(cs, made.list...), func(c credential) {
			if rep := h.clientGrant(c); !rep.is(http.StatusUnauthorized, "invalid_client") {
				t.Errorf("after the removal, credential %s (%s) still grants: %v", c.ID, c.Name, rep)
			}
		})
		checked += len(cs) + len(made.list)
		servertest.Expect(t, env.As(devTok, "GET", "/v1/credentials", nil), 403, "forbidden")
		tl.add(r, checked)
		tl.endRound(t, round, fmt.Sprintf("; %d credentials made in the race", len(made.list)))
	}
	tl.log(t)
}

// TestRevocationAPITokensOff races turning the API tokens extension off
// against racers using API tokens (as the anonymous admin and acting as a
// user) and making new ones. Every token is refused once it has answered,
// and works again once the extension is turned back on.
func TestRevocationAPITokensOff(t *testing.T) {
	const rounds, users, creators, tokens = 4, 100, 8, 3
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	env.CreateUser(op, "ann@example.com", memberPW)
	h := newHammer(t, env, users+creators+1)
	var (
		tl  tally
		all []string // every API token made so far
	)
	useAll := func(what string, want int, code string) int {
		n := 0
		for _, actAs := range []string{"", "ann@example.com"} {
			each(all, func(tok string) {
				if rep := h.meAPI(tok, actAs); rep.status != want || (code != "" && rep.code() != code) {
					t.Errorf("%s: API token (acting as %q): %v, want %d %s", what, actAs, rep, want, code)
				}
			})
			n += len(all)
		}
		return n
	}
	for round := range rounds {
		servertest.Expect(t, env.As(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
		checked := useAll("turned on again", http.StatusOK, "")
		var pre []string
		for i := range tokens {
			rep := env.As(op, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("round %d #%d", round, i)})
			servertest.Expect(t, rep, 201, "")
			pre = append(pre, rep.Map(t)["token"].(string))
		}
		r := newRace(t, fireAt(round, rounds, users))
		for i := range users {
			tok, actAs := pre[i%tokens], ""
			if i%2 == 1 {
				actAs = "ann@example.com"
			}
			r.racer(func() { r.use("API token", func() reply { return h.meAPI(tok, actAs) }) })
		}
		for range creators {
			r.racer(func() {
				for !r.over() {
					rep, after := r.send(func() reply { return h.as(op, "POST", "/v1/api-tokens", map[string]string{"name": raceName()}) })
					switch {
					case rep.status == http.StatusCreated && !after:
						tok := rep.get("token")
						r.obtain(tok, "")
						r.useOnce("API token made in the race", func() reply { return h.meAPI(tok, "") })
					case rep.is(http.StatusForbidden, "extension_disabled"):
						r.refuse()
						if after {
							return
						}
					default:
						t.Errorf("API token sent after=%v: %v", after, rep)
						return
					}
				}
			})
		}
		r.revoke("extension off", 200, func() reply {
			return h.as(op, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": false})
		})
		r.run()
		all = append(append(all, pre...), r.access...)
		checked += useAll("after turning it off", http.StatusUnauthorized, "invalid_token")
		tl.add(r, checked)
		tl.endRound(t, round, "")
	}
	tl.log(t)
}

// TestRevocationRefreshReuse presents an already-used refresh token
// concurrently with the legitimate rotation of the current one, with no
// grace period, on several lineages at once, while their access tokens are
// in use: once the reuse has answered, the whole lineage — including the
// pair the concurrent rotation produced — is refused.
func TestRevocationRefreshReuse(t *testing.T) {
	const rounds, lineages, users = 8, 8, 3
	env := servertest.Start(t, func(c *server.Config) { c.RefreshGrace = 0 })
	op := env.AdminToken()
	unlimit(t, env, op)
	owners := make([]string, lineages)
	for i := range owners {
		email := fmt.Sprintf("owner%d@example.com", i)
		env.CreateUser(op, email, memberPW, "admin")
		owners[i] = env.Login(email, memberPW)
	}
	h := newHammer(t, env, lineages*(users+2))
	var (
		tl             tally
		rotated, ended int
	)
	for round := range rounds {
		start := make(chan struct{})
		races := make([]*race, lineages)
		apps := make([]apiAccess, lineages)
		for i, owner := range owners {
			if round > 0 {
				servertest.Expect(t, env.As(owner, "DELETE", "/v1/api-access", nil), 204, "")
			}
			app := enableAPIAccess(t, env, owner, nil)
			var cur apiAccess
			rep := refresh(env, app.ClientID, app.RefreshToken)
			servertest.Expect(t, rep, 200, "")
			rep.JSON(t, &cur)
			r := newRace(t, 0)
			r.start = start
			r.keep(app.AccessToken, app.RefreshToken)
			r.keep(cur.AccessToken, cur.RefreshToken)
			for range users {
				r.racer(func() { r.use("access token of the lineage", func() reply { return h.me(cur.AccessToken) }) })
			}
			r.racer(func() {
				rep, after := r.send(func() reply { return h.refreshGrant(app.ClientID, cur.RefreshToken) })
				switch {
				case rep.status == http.StatusOK && !after:
					at := rep.get("access_token")
					r.obtain(at, rep.get("refresh_token"))
					r.useOnce("access token of the concurrent rotation", func() reply { return h.me(at) })
				case rep.is(http.StatusBadRequest, "invalid_grant"):
					r.refuse()
				default:
					t.Errorf("rotation sent after=%v: %v", after, rep)
				}
			})
			r.revoke("reuse", http.StatusBadRequest, func() reply { return h.refreshGrant(app.ClientID, app.RefreshToken) })
			races[i], apps[i] = r, app
		}
		runTogether(start, races...)
		for i, r := range races {
			checked := h.expectRefused("after the reuse", r.access, apps[i].ClientID, r.refresh)
			if len(r.access) > 2 {
				rotated++
			} else {
				ended++
			}
			tl.add(r, checked)
		}
		tl.endRound(t, round, "")
	}
	tl.log(t)
	t.Logf("the concurrent rotation got a pair in %d races and was refused in %d", rotated, ended)
}

// TestRevocationPasswordChange races an admin's change of a user's
// password against racers sending that user's password grants with the
// old password and with the new one, and client-credentials grants of the
// user's credential. Every token from the old password — obtained before
// or during the change — is refused once it has answered; the user's
// separate credentials (client credentials, API access application, an API
// token acting as them) and tokens from the new password keep working
// (SPEC §3.4).
func TestRevocationPasswordChange(t *testing.T) {
	const rounds, oldLogins, newLogins, clientGrants = 4, 40, 10, 20
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	apiTok := withAPIToken(t, env, op).Token
	var tl tally
	for round := range rounds {
		email, newPW := fmt.Sprintf("pat%d@example.com", round), fmt.Sprintf("new password %d", round)
		id := env.CreateUser(op, email, memberPW, "admin", "developer")
		userTok := env.Login(email, memberPW)
		app := enableAPIAccess(t, env, userTok, nil)
		var c credential
		rep := env.As(userTok, "POST", "/v1/credentials", map[string]string{"name": "kept"})
		servertest.Expect(t, rep, 201, "")
		rep.JSON(t, &c)
		ccTok := accessToken(t, clientToken(env, c))
		h := newHammer(t, env, oldLogins+newLogins+clientGrants+4)

		r := newRace(t, fireAt(round, rounds, oldLogins))
		r.keep(userTok, "")
		r.racer(func() { r.use("password token from before", func() reply { return h.me(userTok) }) })
		r.racer(func() { r.useLive("client-credentials token", func() reply { return h.me(ccTok) }) })
		r.racer(func() { r.useLive("API access token", func() reply { return h.me(app.AccessToken) }) })
		r.racer(func() { r.useLive("API token acting as the user", func() reply { return h.meAPI(apiTok, email) }) })
		for range oldLogins {
			r.racer(func() {
				r.issue("password grant with the old password", func() reply { return h.passwordGrant(email, memberPW) }, passwordRefused, h.me)
			})
		}
		// Grants that must keep working: the new password once it is set
		// (before that it is refused), and the user's client credential.
		// A refusal sent after the change answered may only be the
		// throttle's, which the race's refused grants may have set off.
		keepGranting := func(what string, grant func() reply, refused func(reply) bool) {
			for !r.over() {
				rep, after := r.send(grant)
				switch {
				case rep.status == http.StatusOK:
					tok := rep.get("access_token")
					r.keepLive(tok)
					if u := h.me(tok); u.status != http.StatusOK {
						t.Errorf("%s: token refused: %v", what, u)
					}
				case refused(rep) && (!after || rep.status != http.StatusBadRequest):
				default:
					t.Errorf("%s sent after=%v: %v", what, after, rep)
					return
				}
				if after {
					return
				}
			}
		}
		for range newLogins {
			r.racer(func() {
				keepGranting("password grant with the new password", func() reply { return h.passwordGrant(email, newPW) }, passwordRefused)
			})
		}
		for range clientGrants {
			r.racer(func() {
				keepGranting("client-credentials grant", func() reply { return h.clientGrant(c) }, func(reply) bool { return false })
			})
		}
		r.revoke("password change", 200, func() reply { return h.as(op, "PATCH", "/v1/users/"+id, map[string]string{"password": newPW}) })
		r.run()
		checked := h.expectRefused("after the password change", r.access, "", nil)
		checked += h.expectWorking("after the password change", append(r.live, ccTok, app.AccessToken))
		if rep := h.meAPI(apiTok, email); rep.status != http.StatusOK {
			t.Errorf("API token acting as the user after the password change: %v", rep)
		}
		if rep := h.refreshGrant(app.ClientID, app.RefreshToken); rep.status != http.StatusOK {
			t.Errorf("API access refresh after the password change: %v", rep)
		}
		if tok := newLogin(t, env, email, newPW); tok != "" {
			servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
		}
		tl.add(r, checked)
		tl.endRound(t, round, fmt.Sprintf("; %d tokens from the new password or the client credential kept working", len(r.live)))
	}
	tl.log(t)
}

// TestRevocationAdminDemotion races removing a user's admin role against
// the user enabling API access, over and over: once the demotion has
// answered, no application and no token made in the race works, and
// making the user an admin again brings none of them back.
func TestRevocationAdminDemotion(t *testing.T) {
	const rounds, admins, enablers = 6, 6, 8
	env := servertest.Start(t)
	op := env.AdminToken()
	unlimit(t, env, op)
	ids, toks := make([]string, admins), make([]string, admins)
	for i := range admins {
		email := fmt.Sprintf("boss%d@example.com", i)
		ids[i] = env.CreateUser(op, email, memberPW, "admin")
		toks[i] = env.Login(email, memberPW)
	}
	h := newHammer(t, env, admins*(enablers+1))
	var tl tally
	for round := range rounds {
		start := make(chan struct{})
		races := make([]*race, admins)
		var mu sync.Mutex
		clients := map[int][]string{}
		for i := range admins {
			r := newRace(t, 1+(round+i)%(2*enablers))
			r.start = start
			for range enablers {
				r.racer(func() {
					for !r.over() {
						rep, after := r.send(func() reply { return h.as(toks[i], "POST", "/v1/api-access", nil) })
						switch {
						case rep.status == http.StatusCreated && !after:
							at := rep.get("access_token")
							r.obtain(at, rep.get("refresh_token"))
							mu.Lock()
							clients[i] = append(clients[i], rep.get("client_id"))
							mu.Unlock()
							r.useOnce("access token of an application made in the race", func() reply { return h.me(at) })
						case rep.is(http.StatusConflict, "conflict") && !after:
						case rep.is(http.StatusForbidden, "forbidden"):
							r.refuse()
							if after {
								return
							}
						default:
							t.Errorf("enable sent after=%v: %v", after, rep)
							return
						}
					}
				})
			}
			r.revoke("demote", 200, func() reply { return h.as(op, "PATCH", "/v1/users/"+ids[i], map[string]any{"roles": []string{}}) })
			races[i] = r
		}
		runTogether(start, races...)
		for i, r := range races {
			checked := 0
			for _, c := range clients[i] {
				checked += h.expectRefused("after the demotion", r.access, c, r.refresh)
			}
			servertest.Expect(t, env.As(op, "PATCH", "/v1/users/"+ids[i], map[string]any{"roles": []string{"admin"}}), 200, "")
			for _, c := range clients[i] {
				checked += h.expectRefused("after making them admin again", r.access, c, r.refresh)
			}
			if v := env.As(toks[i], "GET", "/v1/api-access", nil).Map(t); v["enabled"] != false {
				t.Errorf("an application made in the race survived the demotion: %v", v)
				servertest.Expect(t, env.As(toks[i], "DELETE", "/v1/api-access", nil), 204, "")
			}
			tl.add(r, checked)
		}
		tl.endRound(t, round, "")
	}
	tl.log(t)
}
