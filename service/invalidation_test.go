package service_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// node is one service on a shared SQLite store, counting its cache
// look-ups.
type node struct {
	svc          *service.Service
	hits, misses atomic.Int64
}

// TestRevocationTouchesOnlyItsSubjects: two nodes on one store (no Redis:
// the second learns from the revocation log, read every 50 ms). A change
// to one user ends that user's cached tokens on both nodes, while another
// user's stay cached; a change made by a process that writes no log entry
// (here: by hand) drops every cached look-up.
func TestRevocationTouchesOnlyItsSubjects(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	open := func() *node {
		st := openStoreAt(t, path)
		n := &node{}
		n.svc = service.New(service.Config{Store: st, Passwords: cheapPasswords(),
			Digester: token.NewDigester(nil), ChangePoll: 50 * time.Millisecond,
			OnCacheLookup: func(hit bool) {
				if hit {
					n.hits.Add(1)
				} else {
					n.misses.Add(1)
				}
			}})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { n.svc.Run(runCtx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		return n
	}
	a := open()
	if _, _, err := a.svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	b := open()
	login := func(email string) string {
		t.Helper()
		out, _, err := a.svc.PasswordGrant(ctx, email, pw, "192.0.2.1", "")
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		return out.AccessToken
	}
	op, err := a.svc.AccessPrincipal(ctx, login("op@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*gatehouse.User{}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		if users[email], err = a.svc.CreateUser(ctx, op, service.NewUser{Email: email, Password: pw, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}}); err != nil {
			t.Fatal(err)
		}
	}
	ann, bob := login("ann@example.com"), login("bob@example.com")
	// lookup validates tok on n and reports whether it was served from
	// n's cache.
	lookup := func(n *node, tok string) (hit bool, err error) {
		h := n.hits.Load()
		_, err = n.svc.AccessPrincipal(ctx, tok)
		return n.hits.Load() > h, err
	}
	for _, n := range []*node{a, b} {
		for _, tok := range []string{ann, bob} {
			if _, err := lookup(n, tok); err != nil {
				t.Fatal(err)
			}
			if hit, err := lookup(n, tok); !hit || err != nil {
				t.Fatalf("second look-up: hit %v, %v", hit, err)
			}
		}
	}

	disabled := gatehouse.StatusDisabled
	if _, err := a.svc.UpdateUser(ctx, op, users["ann@example.com"].ID, service.UserPatch{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	// Node a refuses at once; node b once it has read the log.
	if _, err := lookup(a, ann); err == nil {
		t.Fatal("the disabling node still accepts the disabled user's token")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := lookup(b, ann)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other node still accepts the disabled user's token after 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range []*node{a, b} {
		if hit, err := lookup(n, bob); !hit || err != nil {
			t.Fatalf("another user's token after the revocation: hit %v, %v; want a cache hit", hit, err)
		}
	}

	// A change the log does not name: everything is read again.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA busy_timeout = 5000`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE changes SET n = n + 1 WHERE name = 'revoking'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	for _, n := range []*node{a, b} {
		if hit, err := lookup(n, bob); hit || err != nil {
			t.Fatalf("after a change without a log entry: hit %v, %v; want a miss", hit, err)
		}
	}
}

// TestRevocationRacesLookups: many goroutines validate a token on a node
// while its user is disabled on another; once the disable returned and
// the node has read the log, no look-up that begins succeeds, however the
// look-ups and the fill of the cache interleaved with it. The user's
// neighbour is never refused.
func TestRevocationRacesLookups(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	var svcs []*service.Service
	for range 2 {
		st := openStoreAt(t, path)
		svcs = append(svcs, service.New(service.Config{Store: st, Passwords: cheapPasswords(),
			Digester: token.NewDigester(nil), ChangePoll: time.Millisecond}))
	}
	a, b := svcs[0], svcs[1]
	if _, _, err := a.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	login := func(email string) string {
		out, _, err := a.PasswordGrant(ctx, email, pw, "192.0.2.1", "")
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		return out.AccessToken
	}
	op, err := a.AccessPrincipal(ctx, login("op@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		victim, err := a.CreateUser(ctx, op, service.NewUser{Email: "v" + string(rune('a'+round)) + "@example.com", Password: pw, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}})
		if err != nil {
			t.Fatal(err)
		}
		vt := login(victim.Email)
		var (
			disabledAt atomic.Int64 // nanoseconds since start once the disable returned
			wrong      atomic.Int64
			wg         sync.WaitGroup
			start      = time.Now()
		)
		stop := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					began := time.Since(start).Nanoseconds()
					_, err := b.AccessPrincipal(ctx, vt)
					if d := disabledAt.Load(); err == nil && d != 0 && began > d {
						wrong.Add(1)
					}
				}
			})
		}
		time.Sleep(5 * time.Millisecond)
		disabled := gatehouse.StatusDisabled
		if _, err := a.UpdateUser(ctx, op, victim.ID, service.UserPatch{Status: &disabled}); err != nil {
			t.Fatal(err)
		}
		// b reads the log at least every millisecond: a look-up that
		// begins 20 ms after the disable must see it.
		time.Sleep(20 * time.Millisecond)
		disabledAt.Store(time.Since(start).Nanoseconds())
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Fatalf("round %d: %d look-ups served a disabled user's token after the node read the log", round, n)
		}
	}
}
