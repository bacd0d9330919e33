package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/faultproxy"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/store"
)

// faultTimeout is the store timeout of these tests: short, so that a call
// that waits it out is seen to.
const faultTimeout = 300 * time.Millisecond

// wantUnavailable fails unless err is a dependency failure (503).
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || !store.IsUnavailable(err) {
		t.Fatalf("%s: %v, want an unavailable error", what, err)
	}
}

// TestStalledSQLiteWriter: while another process holds SQLite's write
// lock (a stalled writer), a write transaction and a group-committed
// token insert fail as unavailable once the store's timeout passes, and so
// do writes queued together behind the one write connection — each within
// about twice the timeout, not one after the other — and they succeed
// once the lock is gone.
func TestStalledSQLiteWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := store.OpenWith(ctx, path, store.Options{Timeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, s)
	u := newUser(t, s, a)

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "update while the write lock is held", s.Update(ctx, func(tx *store.Tx) error { return tx.CreateUser(userOf(a)) }))
	tok := tokenOf(u, gatehouse.KindAccess, gatehouse.MethodPassword, "", "")
	wantUnavailable(t, "token insert while the write lock is held", s.CreateTokens(ctx, tok))
	// Writes queued together: every one fails, none waits for the others'
	// timeouts in turn (16 of them would take 16 timeouts and more).
	const queued = 16
	errs := make(chan error, queued)
	start := time.Now()
	for range queued {
		go func() { errs <- s.Update(ctx, func(tx *store.Tx) error { return tx.CreateUser(userOf(a)) }) }()
	}
	for range queued {
		wantUnavailable(t, "queued update while the write lock is held", <-errs)
	}
	if took := time.Since(start); took > queued*faultTimeout/2 {
		t.Errorf("%d queued writes took %v to fail: they waited in turn", queued, took)
	}
	// Reads go on.
	if _, err := s.User(ctx, a.ID, u.ID); err != nil {
		t.Fatalf("read while the write lock is held: %v", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, tok); err != nil {
		t.Fatalf("token insert once the lock is gone: %v", err)
	}
	if err := s.CheckWrite(ctx); err != nil {
		t.Fatalf("write check once the lock is gone: %v", err)
	}
}

// TestQueuedWritesWaitForAMovingWriter: a write queued behind SQLite's one
// write connection waits as long as the transaction holding it moves — a
// step within the timeout each time — however long that is in all: a
// burst of this process's own writes is a queue, not a stall.
func TestQueuedWritesWaitForAMovingWriter(t *testing.T) {
	ctx := context.Background()
	// A longer timeout than the other fault tests': each step's margin
	// (half of it) must hold on a loaded machine under -race.
	const timeout = time.Second
	s, err := store.OpenWith(ctx, filepath.Join(t.TempDir(), "gatehouse.db"), store.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, s)
	holding := make(chan struct{})
	slow := make(chan error, 1)
	go func() {
		slow <- s.Update(ctx, func(tx *store.Tx) error {
			close(holding)
			// Five steps, each well within the timeout, two and a half
			// timeouts in all.
			for range 5 {
				time.Sleep(timeout / 2)
				if err := tx.CreateUser(userOf(a)); err != nil {
					return err
				}
			}
			return nil
		})
	}()
	<-holding
	const queued = 8
	errs := make(chan error, queued)
	for range queued {
		go func() { errs <- s.Update(ctx, func(tx *store.Tx) error { return tx.CreateUser(userOf(a)) }) }()
	}
	if err := <-slow; err != nil {
		t.Fatalf("the moving writer: %v", err)
	}
	for range queued {
		if err := <-errs; err != nil {
			t.Errorf("a write queued behind a moving writer: %v", err)
		}
	}
}

// TestPostgresConnectionFaults: a store whose PostgreSQL connections go
// through a proxy. Reset connections (RST) and held ones (a blackhole)
// fail reads and writes as unavailable, the held ones within the store's
// timeout; when the network heals the same store works again by itself.
func TestPostgresConnectionFaults(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.Schema(t)
	host := strings.SplitN(strings.SplitN(dbURL, "@", 2)[1], "/", 2)[0]
	p, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := store.OpenWith(ctx, strings.Replace(dbURL, "@"+host+"/", "@"+p.Addr()+"/", 1), store.Options{Timeout: faultTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a := newAccount(t, s)
	u := newUser(t, s, a)
	works := func(step string) {
		t.Helper()
		if _, err := s.User(ctx, a.ID, u.ID); err != nil {
			t.Fatalf("%s: read: %v", step, err)
		}
		if err := s.CheckWrite(ctx); err != nil {
			t.Fatalf("%s: write: %v", step, err)
		}
	}
	works("before")
	for _, m := range []faultproxy.Mode{faultproxy.Reset, faultproxy.Blackhole} {
		p.Set(m)
		_, err := s.User(ctx, a.ID, u.ID)
		wantUnavailable(t, m.String()+": read", err)
		wantUnavailable(t, m.String()+": write", s.CheckWrite(ctx))
		wantUnavailable(t, m.String()+": token insert", s.CreateTokens(ctx, tokenOf(u, gatehouse.KindAccess, gatehouse.MethodPassword, "", "")))
		p.Set(faultproxy.Pass)
		// The pool may hold connections the fault broke; each is found
		// out by one call. The store answers again within a few calls.
		var err2 error
		for range 25 {
			if _, err2 = s.User(ctx, a.ID, u.ID); err2 == nil {
				break
			}
			wantUnavailable(t, m.String()+": read while recovering", err2)
		}
		works("after " + m.String())
	}
}

// TestReadOnlyPostgres: a database that refuses writes (a standby, or
// default_transaction_read_only) fails writes as unavailable and the
// write check with them, while reads work.
func TestReadOnlyPostgres(t *testing.T) {
	ctx := context.Background()
	dbURL := pgtest.Schema(t)
	rw := openURL(t, dbURL)
	a := newAccount(t, rw)
	ro := openURL(t, dbURL+"&default_transaction_read_only=on")
	if _, err := ro.Account(ctx, a.ID); err != nil {
		t.Fatalf("read: %v", err)
	}
	wantUnavailable(t, "write check", ro.CheckWrite(ctx))
	wantUnavailable(t, "update", ro.Update(ctx, func(tx *store.Tx) error { return tx.CreateAccount(accountOf()) }))
}

// openURL opens and migrates a store on url.
func openURL(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.OpenWith(context.Background(), url, store.Options{Timeout: faultTimeout * 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil && !strings.Contains(url, "read_only") {
		t.Fatal(err)
	}
	return s
}
