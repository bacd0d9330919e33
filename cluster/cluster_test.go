package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/cluster"
	"github.com/gatehouse/gatehouse/internal/redistest"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/ratelimit/limitertest"
)

// limiter is the cluster's admission without a condition, as a Limiter.
type limiter struct{ r *cluster.Redis }

func (l limiter) Allow(ctx context.Context, account string, keys []string, lim ratelimit.Limits) (ratelimit.Decision, error) {
	d, _, ok, err := l.r.Admit(ctx, nil, "", account, keys, lim)
	if err == nil && !ok {
		err = fmt.Errorf("not decided")
	}
	return d, err
}

// TestLimiter runs the limiter conformance suite against the admission
// script.
func TestLimiter(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		limitertest.Run(t, func(t *testing.T, clock func() time.Time) ratelimit.Limiter {
			return limiter{cluster.NewRedis(b.Client, redistest.Prefix(t, b.Client), ratelimit.WithRedisClock(clock))}
		})
	})
}

var lim = ratelimit.Limits{Burst: 10, BurstWindow: time.Minute, Daily: 100, DailyWindow: 24 * time.Hour}

// TestAdmitUnderState: a request is counted only when the account's shard
// is in the expected state; otherwise nothing is counted and the shard's
// state comes back. Every announcement changes every shard's state.
func TestAdmitUnderState(t *testing.T) {
	redistest.Run(t, testAdmitUnderState)
}

func testAdmitUnderState(t *testing.T, b redistest.Backend) {
	c := b.Client
	ctx := context.Background()
	pfx := redistest.Prefix(t, c)
	r := cluster.NewRedis(c, pfx)
	const account = "acc_1"
	i := r.Shard(account)
	st, err := r.State(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch == "" {
		t.Fatalf("state %+v", st)
	}
	// The zero state, and an old one, count nothing.
	for _, expect := range []gatehouse.ClusterState{{}, {Epoch: st.Epoch, N: st.N + 1}, {Epoch: "other", N: st.N}} {
		_, got, ok, err := r.Admit(ctx, &expect, "", account, []string{"user:u"}, lim)
		if err != nil || ok || got != st {
			t.Fatalf("expect %+v: ok %v, state %+v, err %v; want not decided in %+v", expect, ok, got, err, st)
		}
	}
	d, got, ok, err := r.Admit(ctx, &st, "", account, []string{"user:u"}, lim)
	if err != nil || !ok || got != st || !d.Allowed || d.BurstRemaining != 9 {
		t.Fatalf("under the current state: %+v %+v %v %v", d, got, ok, err)
	}
	before := make([]gatehouse.ClusterState, r.Shards())
	for j := range before {
		if before[j], err = r.State(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Announce(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Every shard is rung, in the epoch it was in.
	for j := range r.Shards() {
		now, err := r.State(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		if now.Epoch != before[j].Epoch || now.N == before[j].N {
			t.Fatalf("shard %d after an announcement: %+v, was %+v", j, now, before[j])
		}
	}
	if _, _, ok, _ := r.Admit(ctx, &st, "", account, []string{"user:u"}, lim); ok {
		t.Fatal("decided under the state before the announcement")
	}
	// An announcement that touched everything: nobody's old state holds.
	rests := gatehouse.SubjectSlots(gatehouse.UserSubject("u1"), gatehouse.AccountSubject(account))
	if _, _, ok, _ := r.Admit(ctx, &st, rests, account, []string{"user:u"}, lim); ok {
		t.Fatal("decided under an old state after a ring that touched everything")
	}
	// Rings that touch other subjects leave a request resting on u1 as
	// valid as it was; one that touches u1 does not.
	st, _ = r.State(ctx, i)
	for k := range 3 {
		if err := r.Announce(ctx, []string{gatehouse.UserSubject("other" + strconv.Itoa(k)), gatehouse.CredentialSubject("c" + strconv.Itoa(k))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, ok, err := r.Admit(ctx, &st, rests, account, []string{"user:u"}, lim); !ok || err != nil {
		t.Fatalf("after rings touching others: decided %v, %v; want decided", ok, err)
	}
	if _, _, ok, _ := r.Admit(ctx, &st, "", account, []string{"user:u"}, lim); ok {
		t.Fatal("decided under an old state with no subjects named")
	}
	// However far back the request rests, it is decided as long as the
	// list holds every ring since (it keeps the newest 256; here 256, then
	// 257): read in chunks from its newest end, each reading reaches the
	// ring it needs. (Its own budget, so that the counts below hold.)
	st, _ = r.State(ctx, i)
	for k := range 256 {
		if err := r.Announce(ctx, []string{gatehouse.UserSubject("far" + strconv.Itoa(k))}); err != nil {
			t.Fatal(err)
		}
		if k == 6 || k == 7 || k == 8 || k == 40 || k == 255 {
			if _, _, ok, err := r.Admit(ctx, &st, rests, account, []string{"user:far"}, lim); !ok || err != nil {
				t.Fatalf("after %d rings touching others: decided %v, %v; want decided", k+1, ok, err)
			}
		}
	}
	if err := r.Announce(ctx, []string{gatehouse.UserSubject("far")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.Admit(ctx, &st, rests, account, []string{"user:far"}, lim); ok {
		t.Fatal("decided resting on a state older than every ring listed")
	}
	// A ring the list does not hold (a node of the previous release adds
	// 1 to the value) says nothing of what it touched.
	key := pfx + "gatehouse:generation:{" + cluster.Tag(i) + "}"
	if err := c.Do(ctx, c.B().Hincrby().Key(key).Field("n").Increment(1).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.Admit(ctx, &st, rests, account, []string{"user:u"}, lim); ok {
		t.Fatal("decided after a ring that was not listed")
	}
	// Nor after a listed ring that came after it: the chain is broken.
	if err := r.Announce(ctx, []string{gatehouse.UserSubject("other")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.Admit(ctx, &st, rests, account, []string{"user:u"}, lim); ok {
		t.Fatal("decided across a ring that was not listed")
	}
	st, _ = r.State(ctx, i)
	if err := r.Announce(ctx, []string{gatehouse.UserSubject("u1")}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := r.Admit(ctx, &st, rests, account, []string{"user:u"}, lim); ok {
		t.Fatal("decided after a ring that touched the request's user")
	}
	d, _, ok, err = r.Admit(ctx, nil, "", account, []string{"user:u"}, lim)
	if err != nil || !ok || d.BurstRemaining != 7 {
		t.Fatalf("unconditional: %+v %v %v", d, ok, err)
	}
	// A lost shard comes back in a new epoch.
	if err := c.Do(ctx, c.B().Del().Key(pfx+"gatehouse:generation:{"+cluster.Tag(i)+"}").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	_, got, _, err = r.Admit(ctx, nil, "", account, []string{"user:u"}, lim)
	if err != nil || got.Epoch == st.Epoch {
		t.Fatalf("after the loss: %+v %v", got, err)
	}
}

// TestTags: the shards' slots are spread over the slot space, one per
// range, and an account's budgets share its shard's slot.
func TestTags(t *testing.T) {
	for i := range cluster.Shards {
		slot := int(cluster.Slot("x{" + cluster.Tag(i) + "}y"))
		if lo, hi := i*16384/cluster.Shards, (i+1)*16384/cluster.Shards; slot < lo || slot >= hi {
			t.Errorf("shard %d: slot %d outside [%d, %d)", i, slot, lo, hi)
		}
	}
	// Known slots (redis-cli cluster keyslot).
	for key, want := range map[string]uint16{"foo": 12182, "{user1000}.following": 3443, "123456789": 12739} {
		if got := cluster.Slot(key); got != want {
			t.Errorf("slot of %q = %d, want %d", key, got, want)
		}
	}
}

// TestAdmitBatchesKeepRequestsApart releases requests of several accounts
// together — several of them on one shard, so that their requests share
// scripts — each account with limits of its own, and some requests
// confirming a state the shard has left. Every account must admit exactly
// its own limit, each remaining count once, under its own limits; no
// request under the old state may be decided.
func TestAdmitBatchesKeepRequestsApart(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := cluster.NewRedis(b.Client, redistest.Prefix(t, b.Client))
		// Four accounts on shard 0, two elsewhere.
		var accounts []string
		for i := 0; len(accounts) < 6; i++ {
			a := fmt.Sprintf("acc_%d", i)
			if (cluster.Shard(a) == 0) == (len(accounts) < 4) {
				accounts = append(accounts, a)
			}
		}
		old, err := r.State(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Announce(ctx, nil); err != nil {
			t.Fatal(err)
		}
		type result struct {
			account string
			stale   bool
			d       ratelimit.Decision
			ok      bool
			err     error
		}
		const perAccount = 40
		results := make(chan result, perAccount*len(accounts))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for n, a := range accounts {
			l := ratelimit.Limits{Burst: 3 + n, BurstWindow: time.Minute, Daily: 1000, DailyWindow: 24 * time.Hour}
			for j := range perAccount {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var expect *gatehouse.ClusterState
					stale := j%4 == 3 && cluster.Shard(a) == 0
					if stale {
						expect = &old
					}
					d, _, ok, err := r.Admit(ctx, expect, "", a, []string{"user:u"}, l)
					results <- result{a, stale, d, ok, err}
				}()
			}
		}
		close(start)
		wg.Wait()
		close(results)
		remaining := map[string][]int{}
		for res := range results {
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.stale {
				if res.ok {
					t.Errorf("%s: decided under a state the shard has left", res.account)
				}
				continue
			}
			if !res.ok {
				t.Fatalf("%s: not decided", res.account)
			}
			want := 3 + slices.Index(accounts, res.account)
			if res.d.Limits.Burst != want {
				t.Errorf("%s: decided under a burst limit of %d, want %d", res.account, res.d.Limits.Burst, want)
			}
			if res.d.Allowed {
				remaining[res.account] = append(remaining[res.account], res.d.BurstRemaining)
			}
		}
		for n, a := range accounts {
			got := remaining[a]
			slices.Sort(got)
			want := make([]int, 3+n)
			for i := range want {
				want[i] = i
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: admitted with remaining %v, want %v", a, got, want)
			}
		}
	})
}

// TestBatchRestsOnRings decides batches that mix requests resting on
// different earlier states and on different subjects in one script call
// (the script reads the rings since once per batch and judges every
// request from that one reading): each request is decided exactly when no
// ring since its state touched any of its subjects, whatever the order of
// the batch.
func TestBatchRestsOnRings(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		pfx := redistest.Prefix(t, b.Client)
		r := cluster.NewRedis(b.Client, pfx)
		const account = "acc_walk"
		i := cluster.Shard(account)
		// Subjects on distinct slots: A, B, C, D are rung in turn; E never.
		var subjects []string
		seen := map[uint32]bool{}
		for k := 0; len(subjects) < 5; k++ {
			s := gatehouse.UserSubject(fmt.Sprintf("walk%d", k))
			if slot := gatehouse.SubjectSlot(s); !seen[slot] {
				seen[slot] = true
				subjects = append(subjects, s)
			}
		}
		states := make([]gatehouse.ClusterState, 5) // states[k]: after k rings
		var err error
		if states[0], err = r.State(ctx, i); err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(states); k++ {
			if err := r.Announce(ctx, []string{subjects[k-1]}); err != nil {
				t.Fatal(err)
			}
			if states[k], err = r.State(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		type request struct {
			since int   // the state it rests on
			rests []int // the subjects it rests on
		}
		var reqs []request
		for since := range states {
			for _, rests := range [][]int{{0}, {1}, {2}, {3}, {4}, {0, 4}, {4, 2}, {3, 4}} {
				reqs = append(reqs, request{since, rests})
			}
		}
		// want: no ring after since (ring k touched subject k-1) touched
		// any of its subjects.
		want := func(q request) bool {
			for _, s := range q.rests {
				if s < 4 && s+1 > q.since {
					return false
				}
			}
			return true
		}
		lim := ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Minute, Daily: 1 << 30, DailyWindow: 24 * time.Hour}
		for round := range 40 {
			rand.Shuffle(len(reqs), func(a, b int) { reqs[a], reqs[b] = reqs[b], reqs[a] })
			batch := make([]cluster.BatchRequest, len(reqs))
			for j, q := range reqs {
				var names []string
				for _, s := range q.rests {
					names = append(names, subjects[s])
				}
				batch[j] = cluster.BatchRequest{Expect: &states[q.since], Rests: gatehouse.SubjectSlots(names...), Account: account,
					Keys: []string{fmt.Sprintf("user:w%d", j)}, Limits: lim}
			}
			decided, err := r.AdmitBatch(ctx, i, batch)
			if err != nil {
				t.Fatal(err)
			}
			for j, q := range reqs {
				if decided[j] != want(q) {
					t.Fatalf("round %d: resting on the state after %d rings and subjects %v: decided %v, want %v", round, q.since, q.rests, decided[j], want(q))
				}
			}
		}
		// A ring the list does not hold (a node of the previous release
		// adds 1 to the value) breaks the chain for every request resting
		// on an earlier state, even one whose state a listed ring names.
		key := pfx + "gatehouse:generation:{" + cluster.Tag(i) + "}"
		if err := b.Client.Do(ctx, b.Client.B().Hincrby().Key(key).Field("n").Increment(1).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		for since := range states {
			decided, err := r.AdmitBatch(ctx, i, []cluster.BatchRequest{{Expect: &states[since], Rests: gatehouse.SubjectSlots(subjects[4]),
				Account: account, Keys: []string{"user:w"}, Limits: lim}})
			if err != nil {
				t.Fatal(err)
			}
			if decided[0] {
				t.Fatalf("resting on the state after %d rings: decided across a ring the list does not hold", since)
			}
		}
	})
}

// TestOwedRingsUnderConcurrentReads: a ring a node could not make is made
// by a read that starts after it failed, however many reads and
// admissions run at once, and once made is not made again. Reads that
// started owing it may each ring; none may settle a failure it did not
// see, or the next failure would be forgotten.
func TestOwedRingsUnderConcurrentReads(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		r := cluster.NewRedis(b.Client, redistest.Prefix(t, b.Client))
		const account = "acc_owed"
		i := r.Shard(account)
		state := func() gatehouse.ClusterState {
			t.Helper()
			st, err := r.State(ctx, i)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		state()
		for round := range 5 {
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 8 {
				wg.Go(func() {
					for k := range 100 {
						var err error
						if (g+k)%2 == 0 {
							_, err = r.State(ctx, i)
						} else {
							_, _, _, err = r.Admit(ctx, nil, "", account, []string{"user:u"}, ratelimit.Limits{Burst: 1 << 20, BurstWindow: time.Second, Daily: 1 << 30, DailyWindow: 24 * time.Hour})
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Go(func() {
				for range 20 {
					r.Owe(i)
					time.Sleep(time.Millisecond)
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// Whatever the reads settled, one more read leaves nothing owed.
			settled := state()
			if again := state(); again != settled {
				t.Fatalf("round %d: a read rang with nothing owed: %+v then %+v", round, settled, again)
			}
			// A failure now is owed, and made by the next read.
			r.Owe(i)
			if rung := state(); rung == settled {
				t.Fatalf("round %d: a failed ring was forgotten: the next read left the shard in %+v", round, rung)
			}
		}
	})
}

// BenchmarkBatchRestsOnRings measures one script call deciding a batch of
// five principals' requests, each resting on the state ten rings back
// (none touched it), as a busy node's batches are under churn.
func BenchmarkBatchRestsOnRings(b *testing.B) {
	c := redistest.Client(b)
	ctx := context.Background()
	r := cluster.NewRedis(c, redistest.Prefix(b, c))
	const account = "acc_walk"
	i := cluster.Shard(account)
	st, err := r.State(ctx, i)
	if err != nil {
		b.Fatal(err)
	}
	for k := range 10 {
		if err := r.Announce(ctx, []string{gatehouse.CredentialSubject(fmt.Sprintf("gone%d", k)), gatehouse.ClientSubject(fmt.Sprintf("gone%d", k))}); err != nil {
			b.Fatal(err)
		}
	}
	lim := ratelimit.Limits{Burst: 1 << 30, BurstWindow: time.Second, Daily: 1 << 40, DailyWindow: 24 * time.Hour}
	batch := make([]cluster.BatchRequest, 5)
	for j := range batch {
		u := fmt.Sprintf("busy%d", j)
		batch[j] = cluster.BatchRequest{Expect: &st, Rests: gatehouse.SubjectSlots(gatehouse.AccountSubject(account), gatehouse.UserSubject(u), gatehouse.CredentialSubject(u)),
			Account: account, Keys: []string{"user:" + u}, Limits: lim}
	}
	b.ResetTimer()
	for b.Loop() {
		decided, err := r.AdmitBatch(ctx, i, batch)
		if err != nil || !decided[0] {
			b.Fatal(decided, err)
		}
	}
}
