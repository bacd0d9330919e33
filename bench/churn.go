package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/localserver"
)

// ChurnOptions shape the churn benchmark: two `gatehouse serve` processes
// on one PostgreSQL database and one Redis.
type ChurnOptions struct {
	// Binary is the gatehouse executable; empty means this process's own.
	Binary string
	// DatabaseURL is an empty PostgreSQL database (or schema, by its
	// search_path); RedisURL a Redis. Both are required.
	DatabaseURL, RedisURL string
	Duration              time.Duration // of each phase (20s)
	Rate                  int           // revocations per second in the churn phases (100)
	Concurrency           int           // connections of the unrelated principals' requests (32)
	Principals            int           // unrelated principals (16)
	Rounds                int           // rounds of phases: quiet, churn, and the control with Control (2)
	Out                   io.Writer
	// Stderr receives the servers' logs (warnings and errors); nil discards.
	Stderr io.Writer
	// LogLevel is the servers' log level: "" is their default (info, a
	// line per request), as shipped; "warn" turns the request log off.
	LogLevel string
	// Control adds a third phase to each round: the same revocations,
	// made through a third node of another cluster (its own Redis
	// prefix, the same database), so that the measured nodes hear of
	// none of them but by their once-a-second read of the revocation
	// log. What the principals lose then is what the revocations' own
	// work costs them by sharing the machine; what they lose in the
	// churn phase beyond it is what hearing the revocations costs.
	Control bool
}

// ChurnPhase is one measured phase.
type ChurnPhase struct {
	Rate                   int // revocations per second asked for
	Requests               int64
	Unavailable            int64 // 503s among the principals' requests
	Errors                 int64 // other answers than 200, transport errors
	Revocations            int64 // done (204)
	RevocationsFailed      int64 // of which RevocationsUnavailable were 503s
	RevocationsUnavailable int64
	Duration               time.Duration
}

// RPS is the phase's requests per second.
func (p ChurnPhase) RPS() float64 { return float64(p.Requests) / p.Duration.Seconds() }

// ChurnResult is what the churn benchmark measured.
type ChurnResult struct {
	Phases []ChurnPhase
	// Ratio is the churn phases' total throughput over the quiet phases'.
	Ratio       float64
	Unavailable int64 // 503s in the churn phases
	// ControlRatio is the control phases' throughput over the quiet
	// phases' (0 without ChurnOptions.Control).
	ControlRatio float64
}

// Churn measures what revocations cost unrelated principals on a cluster:
// two gatehouse serve processes on one PostgreSQL database and one Redis;
// opt.Principals developers, signed in, send GET /v1/me over
// opt.Concurrency connections split between the nodes, first with no
// revocation (the quiet phase), then while other developers' credentials,
// made in advance, are deleted at opt.Rate a second through both nodes in
// turn (the churn phase). It reports each phase's throughput and 503s and
// the ratio of churn to quiet throughput (SPEC §10.9: ≥ 0.90, no 503).
// With opt.Control, each round also has a control phase (see
// ChurnOptions.Control), which tells apart what the measured nodes pay for
// hearing the revocations from what the revocations' own work takes from
// a machine the nodes share.
func Churn(ctx context.Context, opt ChurnOptions) (ChurnResult, error) {
	var res ChurnResult
	if opt.DatabaseURL == "" || opt.RedisURL == "" {
		return res, errors.New("churn: needs a PostgreSQL database and a Redis (GATEHOUSE_BENCH_DATABASE_URL, GATEHOUSE_BENCH_REDIS_URL)")
	}
	if opt.Duration <= 0 {
		opt.Duration = 20 * time.Second
	}
	if opt.Rate <= 0 {
		opt.Rate = 100
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 32
	}
	if opt.Principals <= 0 {
		opt.Principals = 16
	}
	if opt.Rounds <= 0 {
		opt.Rounds = 2
	}
	out, bin, err := processDefaults(&opt.Stderr, opt.Out, opt.Binary)
	if err != nil {
		return res, err
	}
	// A cluster is the nodes that share a Redis prefix.
	prefix := fmt.Sprintf("gatehouse-churn:%d:", time.Now().UnixNano())
	clusterFlags := func(prefix string) []string {
		return []string{"--database-url", opt.DatabaseURL, "--redis-url", opt.RedisURL, "--redis-prefix", prefix}
	}
	nodes := make([]*node, 2, 3)
	for i := range nodes {
		n, err := startNode(ctx, bin, opt.Stderr, opt.LogLevel, clusterFlags(prefix)...)
		if err != nil {
			return res, err
		}
		defer n.Stop()
		nodes[i] = n
	}
	hc := NewClient(16)
	clients := [2]*localserver.Client{{URL: nodes[0].URL, HTTP: hc}, {URL: nodes[1].URL, HTTP: hc}}
	// The control's revokers go through a node of another cluster.
	var control *localserver.Client
	if opt.Control {
		n, err := startNode(ctx, bin, opt.Stderr, opt.LogLevel, clusterFlags(prefix+"control:")...)
		if err != nil {
			return res, err
		}
		defer n.Stop()
		nodes = append(nodes, n)
		control = &localserver.Client{URL: n.URL, HTTP: hc}
	}
	call := func(i int, method, path, tok string, body any, want int) (map[string]any, error) {
		r, err := clients[i%2].Do(ctx, method, path, body, "Authorization", "Bearer "+tok)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(r.Body, &m)
		if r.Status != want {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return m, nil
	}
	admin, err := clients[0].Login(ctx, "admin@example.com", processAdminPassword)
	if err != nil {
		return res, err
	}
	// The victims hold thousands of credentials between them: the ceiling
	// goes up to its highest.
	if _, err := call(0, "PUT", "/v1/settings", admin, map[string]any{
		"rate_limit":               map[string]int{"daily": 100_000_000, "burst": 1_000_000, "burst_window_seconds": 1},
		"max_credentials_per_user": gatehouse.MaxCredentialsPerUserMax}, http.StatusOK); err != nil {
		return res, err
	}
	user := func(i int, prefix string) (string, error) {
		email := fmt.Sprintf("%s-%d@example.com", prefix, i)
		if _, err := call(i, "POST", "/v1/users", admin, map[string]any{"email": email, "password": benchPassword, "roles": []string{"developer"}}, http.StatusCreated); err != nil {
			return "", err
		}
		return clients[i%2].Login(ctx, email, benchPassword)
	}
	// The unrelated principals, and the victims with their credentials.
	toks := make([]string, opt.Principals)
	for i := range toks {
		if toks[i], err = user(i, "churn-principal"); err != nil {
			return res, err
		}
	}
	const victims = 8
	var victimToks [victims]string
	for i := range victimToks {
		if victimToks[i], err = user(i, "churn-victim"); err != nil {
			return res, err
		}
	}
	type cred struct{ owner, id string }
	revokingPhases := opt.Rounds
	if opt.Control {
		revokingPhases *= 2
	}
	need := opt.Rate*int(opt.Duration.Seconds()+1)*revokingPhases + opt.Rate
	creds := make(chan cred, need)
	{
		var wg sync.WaitGroup
		var firstErr error
		var mu sync.Mutex
		for w := 0; w < victims; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for k := w; k < need; k += victims {
					c, err := call(k, "POST", "/v1/credentials", victimToks[w], map[string]string{"name": fmt.Sprintf("churn-%d", k)}, http.StatusCreated)
					if err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						return
					}
					creds <- cred{victimToks[w], c["id"].(string)}
				}
			}(w)
		}
		wg.Wait()
		if firstErr != nil {
			return res, firstErr
		}
	}

	// phase runs one phase: with rate > 0, revocations go through the
	// measured nodes in turn, or all through via when it is not nil.
	phase := func(rate int, via *localserver.Client) ChurnPhase {
		var reqs, unavailable, errs, revoked, revokeFailed, revoke503 atomic.Int64
		pctx, cancel := context.WithTimeout(ctx, opt.Duration)
		defer cancel()
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < opt.Concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				cl := &client{}
				defer cl.close()
				u := nodes[w%2].URL + "/v1/me"
				auth := "Bearer " + toks[w%len(toks)]
				for pctx.Err() == nil {
					req, _ := http.NewRequest("GET", u, nil)
					req.Header.Set("Authorization", auth)
					status, _, err := cl.do(req, false)
					if pctx.Err() != nil {
						return
					}
					reqs.Add(1)
					switch {
					case err != nil:
						errs.Add(1)
					case status == http.StatusServiceUnavailable:
						unavailable.Add(1)
					case status != http.StatusOK:
						errs.Add(1)
					}
				}
			}(w)
		}
		// Revokers: paced, several at once so that one slow answer does not
		// hold the rate back.
		const revokers = 8
		if rate > 0 {
			per := time.Second * revokers / time.Duration(rate)
			for r := 0; r < revokers; r++ {
				wg.Add(1)
				go func(r int) {
					defer wg.Done()
					next := start.Add(per * time.Duration(r) / revokers)
					for k := r; ; k += revokers {
						if d := time.Until(next); d > 0 {
							select {
							case <-time.After(d):
							case <-pctx.Done():
								return
							}
						}
						next = next.Add(per)
						var c cred
						select {
						case c = <-creds:
						default:
							return // none left
						}
						// The revocation runs to its end, past the phase's.
						rc := clients[k%2]
						if via != nil {
							rc = via
						}
						resp, err := rc.Do(ctx, "DELETE", "/v1/credentials/"+c.id, nil, "Authorization", "Bearer "+c.owner)
						if err != nil || resp.Status != http.StatusNoContent {
							revokeFailed.Add(1)
							if err == nil && resp.Status == http.StatusServiceUnavailable {
								revoke503.Add(1)
							}
						} else {
							revoked.Add(1)
						}
					}
				}(r)
			}
		}
		wg.Wait()
		return ChurnPhase{Rate: rate, Requests: reqs.Load(), Unavailable: unavailable.Load(), Errors: errs.Load(),
			Revocations: revoked.Load(), RevocationsFailed: revokeFailed.Load(), RevocationsUnavailable: revoke503.Load(), Duration: time.Since(start)}
	}

	fmt.Fprintf(out, "churn: two gatehouse serve processes on PostgreSQL and Redis; %d principals' GET /v1/me over %d connections split between them; %s phases (server pids %d, %d)\nservers %s\n",
		opt.Principals, opt.Concurrency, opt.Duration, nodes[0].cmd.Process.Pid, nodes[1].cmd.Process.Pid, logNote(opt.LogLevel))
	if control != nil {
		fmt.Fprintf(out, "control phases revoke through a third node of another cluster (pid %d), which the measured nodes do not hear of\n", nodes[2].cmd.Process.Pid)
	}
	fmt.Fprintf(out, "%-10s %12s %9s %6s %8s %9s %12s\n", "phase", "revocations", "req/s", "503s", "errors", "revoked", "failed (503)")
	type kind struct {
		name string
		rate int
		via  *localserver.Client
		sum  *ChurnPhase
	}
	var quiet, churn, controlled ChurnPhase
	kinds := []kind{{"quiet", 0, nil, &quiet}, {"churn", opt.Rate, nil, &churn}}
	if control != nil {
		kinds = append(kinds, kind{"control", opt.Rate, control, &controlled})
	}
	for round := 0; round < opt.Rounds; round++ {
		for _, k := range kinds {
			p := phase(k.rate, k.via)
			res.Phases = append(res.Phases, p)
			k.sum.Requests += p.Requests
			k.sum.Duration += p.Duration
			k.sum.Unavailable += p.Unavailable
			fmt.Fprintf(out, "%-10s %10d/s %9.0f %6d %8d %9d %7d (%d)\n", k.name, k.rate, p.RPS(), p.Unavailable, p.Errors, p.Revocations, p.RevocationsFailed, p.RevocationsUnavailable)
		}
	}
	res.Ratio = churn.RPS() / quiet.RPS()
	res.Unavailable = churn.Unavailable
	fmt.Fprintf(out, "throughput at %d revocations/s over none: %.2f (goal ≥ 0.90); 503s under churn: %d (goal 0)\n", opt.Rate, res.Ratio, res.Unavailable)
	if control != nil {
		res.ControlRatio = controlled.RPS() / quiet.RPS()
		fmt.Fprintf(out, "control, the same revocations through a node of another cluster: %.2f of none; churn over control: %.2f (what hearing the revocations costs the measured nodes)\n",
			res.ControlRatio, churn.RPS()/controlled.RPS())
	}
	return res, nil
}
