package prune_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/prune"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

const pw = "a long enough password"

var stores = []struct {
	name string
	open func(t *testing.T) *store.Store
}{
	{"sqlite", func(t *testing.T) *store.Store { return open(t, filepath.Join(t.TempDir(), "g.db")) }},
	{"postgres", func(t *testing.T) *store.Store { return open(t, pgtest.Schema(t)) }},
}

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// TestPruneDeletesWhatEnded makes one row of every kind through the
// service, then prunes as time passes: each kind goes when it has ended,
// and nothing still in use goes with it.
func TestPruneDeletesWhatEnded(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			c := &clock{t: time.Now().UTC().Truncate(time.Second)}
			dig := token.NewDigester(nil)
			svc := service.New(service.Config{Store: st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
				Digester: dig, Now: c.now, RefreshGrace: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
				t.Fatal(err)
			}
			login, _, err := svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "") // 1 hour
			if err != nil {
				t.Fatal(err)
			}
			admin, err := svc.AccessPrincipal(ctx, login.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			app, err := svc.EnableAPIAccess(ctx, admin, service.APIAccessInput{}) // 1 day, refresh 90 days
			if err != nil {
				t.Fatal(err)
			}
			next, err := svc.RefreshGrant(ctx, app.ClientID, app.RefreshToken, "")
			if err != nil {
				t.Fatal(err)
			}
			session, _, err := svc.Login(ctx, "op@example.com", pw, "192.0.2.1") // 12 hours
			if err != nil {
				t.Fatal(err)
			}
			p := prune.New(prune.Config{Store: st, Retention: 30 * 24 * time.Hour, RefreshGrace: 5 * time.Second, Batch: 1, Now: c.now})

			has := func(raw string) bool {
				_, err := st.TokenByHash(ctx, dig.Digest(raw))
				if err != nil && gatehouse.ErrorCode(err) != gatehouse.ENotFound {
					t.Fatal(err)
				}
				return err == nil
			}
			hasSession := func() bool {
				_, _, _, err := st.SessionByHash(ctx, dig.Digest(session))
				return err == nil
			}
			hasRetry := func() bool {
				it, err := st.TokenByHash(ctx, dig.Digest(app.RefreshToken))
				if err != nil {
					return false
				}
				_, err = st.RefreshRetry(ctx, it.ID)
				return err == nil
			}
			audit := func() int {
				es, _, err := st.FindAudit(ctx, admin.AccountID, gatehouse.AuditFilter{}, gatehouse.Page{Limit: 200})
				if err != nil {
					t.Fatal(err)
				}
				return len(es)
			}
			round := func() map[string]int {
				t.Helper()
				n, held, err := p.Round(ctx)
				if err != nil || !held {
					t.Fatalf("round: held %v, %v", held, err)
				}
				return n
			}
			type state struct{ login, appAccess, used, next, nextAccess, session, retry bool }
			now := func() state {
				return state{has(login.AccessToken), has(app.AccessToken), has(app.RefreshToken), has(next.RefreshToken), has(next.AccessToken), hasSession(), hasRetry()}
			}
			auditBefore := audit()
			if auditBefore == 0 {
				t.Fatal("no audit entries to keep")
			}

			// Nothing has ended yet.
			round()
			if got, want := now(), (state{true, true, true, true, true, true, true}); got != want {
				t.Fatalf("at once: %+v, want %+v", got, want)
			}
			// Past the grace: the retry record goes, nothing else. (On
			// PostgreSQL a rotation is stamped by the database's clock at
			// commit, which a loaded machine puts after the fake one's
			// start: the grace is counted from the later of the two.)
			c.mu.Lock()
			c.t = later(c.t, time.Now().UTC())
			c.mu.Unlock()
			c.add(6 * time.Second)
			if n := round(); n["refresh_retries"] != 1 {
				t.Fatalf("deleted %v", n)
			}
			if got, want := now(), (state{true, true, true, true, true, true, false}); got != want {
				t.Fatalf("after the grace: %+v, want %+v", got, want)
			}
			// Two hours: the password-grant token has expired; a batch of
			// one row still deletes it all over the round.
			c.add(2 * time.Hour)
			round()
			if got, want := now(), (state{false, true, true, true, true, true, false}); got != want {
				t.Fatalf("after two hours: %+v, want %+v", got, want)
			}
			// Thirteen hours: the session has ended.
			c.add(11 * time.Hour)
			round()
			if got, want := now(), (state{false, true, true, true, true, false, false}); got != want {
				t.Fatalf("after thirteen hours: %+v, want %+v", got, want)
			}
			// Two days: the API access tokens have expired; the used refresh
			// token is kept for the retention, the unused one works.
			c.add(48 * time.Hour)
			round()
			if got, want := now(), (state{false, false, true, true, false, false, false}); got != want {
				t.Fatalf("after two days: %+v, want %+v", got, want)
			}
			if audit() != auditBefore {
				t.Fatal("audit entries went before the retention")
			}
			// Past the retention: the used refresh token and the audit go;
			// the unused refresh token still works.
			c.add(30 * 24 * time.Hour)
			round()
			if got, want := now(), (state{false, false, false, true, false, false, false}); got != want {
				t.Fatalf("after the retention: %+v, want %+v", got, want)
			}
			if n := audit(); n != 0 {
				t.Fatalf("%d audit entries kept past the retention", n)
			}
			if _, err := svc.RefreshGrant(ctx, app.ClientID, next.RefreshToken, ""); err != nil {
				t.Fatalf("the unused refresh token after pruning: %v", err)
			}
		})
	}
}

// TestPruneLease: of two nodes on one store, one prunes; the other takes
// over once the first's lease has run out.
func TestPruneLease(t *testing.T) {
	for _, b := range stores {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			c := &clock{t: time.Now()}
			a := prune.New(prune.Config{Store: st, Interval: time.Minute, Now: c.now})
			z := prune.New(prune.Config{Store: st, Interval: time.Minute, Now: c.now})
			held := func(p *prune.Pruner) bool {
				_, ok, err := p.Round(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !held(a) || held(z) || !held(a) {
				t.Fatal("the lease is not exclusive")
			}
			c.add(3*time.Minute + time.Second)
			if !held(z) || held(a) {
				t.Fatal("the lease did not pass on once it ran out")
			}
		})
	}
}
