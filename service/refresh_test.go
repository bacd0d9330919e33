package service_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// from is a request scope that names a client address, as the HTTP layer
// sets one for every request.
type from string

func (f from) Logger() *slog.Logger            { return slog.Default() }
func (f from) ClientAddr() string              { return string(f) }
func (f from) Principal() *gatehouse.Principal { return nil }

// clock is a settable clock for the service.
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

// refreshWorld is a service on a real SQLite store with a 5-second
// refresh grace, a settable clock and an admin's API access application.
type refreshWorld struct {
	t     *testing.T
	svc   *service.Service
	st    *store.Store
	clock *clock
	admin *gatehouse.Principal
	app   *service.APIAccessIssued
	// path is the SQLite file.
	path string
}

func newRefreshWorld(t *testing.T) *refreshWorld {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	st := openStoreAt(t, path)
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	svc := service.New(service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil), Now: c.now, RefreshGrace: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler)})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	out, _, err := svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := svc.AccessPrincipal(ctx, out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	app, err := svc.EnableAPIAccess(ctx, admin, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	return &refreshWorld{t: t, svc: svc, st: st, clock: c, admin: admin, app: app, path: path}
}

// refresh presents rt from the client address addr.
func (w *refreshWorld) refresh(addr, rt string) (*service.Issued, error) {
	return w.svc.RefreshGrant(gatehouse.WithRequestScope(context.Background(), from(addr)), w.app.ClientID, rt, "")
}

// mustRefresh is refresh that must succeed.
func (w *refreshWorld) mustRefresh(addr, rt string) *service.Issued {
	w.t.Helper()
	out, err := w.refresh(addr, rt)
	if err != nil {
		w.t.Fatalf("refresh from %s: %v", addr, err)
	}
	return out
}

// refused checks that presenting rt from addr is invalid_grant.
func (w *refreshWorld) refused(addr, rt string) {
	w.t.Helper()
	if out, err := w.refresh(addr, rt); gatehouse.ErrorCode(err) != gatehouse.EInvalidGrant {
		w.t.Fatalf("refresh from %s: %+v, %v; want invalid_grant", addr, out, err)
	}
}

// works reports whether an access token is accepted.
func (w *refreshWorld) works(access string) bool {
	_, err := w.svc.AccessPrincipal(context.Background(), access)
	return err == nil
}

// audited returns the audit entries with action, newest first.
func (w *refreshWorld) audited(action string) []*gatehouse.AuditEntry {
	w.t.Helper()
	es, _, err := w.svc.Audit(context.Background(), w.admin, service.AuditQuery{Action: action}, gatehouse.Page{Limit: 200})
	if err != nil {
		w.t.Fatal(err)
	}
	return es
}

// TestRefreshRetrySameClient: a retry by the same client inside the grace
// period gets the pair the first attempt committed, which works; it is
// audited; the lineage stays. Once the client has used the successor, a
// retry of the old token is refused, still without a revocation.
func TestRefreshRetrySameClient(t *testing.T) {
	w := newRefreshWorld(t)
	first := w.mustRefresh("198.51.100.7", w.app.RefreshToken)
	w.clock.add(4 * time.Second)
	again := w.mustRefresh("198.51.100.7", w.app.RefreshToken)
	if again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken || again.TokenType != "bearer" {
		t.Fatalf("retry answered another pair: %+v, first %+v", again, first)
	}
	if again.ExpiresIn != first.ExpiresIn-4 {
		t.Fatalf("retry expires_in %d, want %d", again.ExpiresIn, first.ExpiresIn-4)
	}
	if !w.works(again.AccessToken) {
		t.Fatal("the retried pair's access token is refused")
	}
	if es := w.audited(service.AuditRefreshRetried); len(es) != 1 || es[0].RemoteAddr != "198.51.100.7" || !strings.HasPrefix(es[0].Details["outcome"], "answered") {
		t.Fatalf("retry audit: %+v", es)
	}
	next := w.mustRefresh("198.51.100.7", again.RefreshToken)
	w.refused("198.51.100.7", w.app.RefreshToken)
	if !w.works(next.AccessToken) || len(w.audited(service.AuditLineageRevoked)) != 0 {
		t.Fatal("a retry after the successor was used revoked the lineage")
	}
	if es := w.audited(service.AuditRefreshRetried); len(es) != 2 || !strings.HasPrefix(es[0].Details["outcome"], "refused") {
		t.Fatalf("refused retry audit: %+v", es)
	}
}

// TestRefreshReuseFromAnotherAddress: inside the grace period, the same
// refresh token from another client address revokes the lineage, whoever
// came first — the thief who refreshed a stolen token first loses what
// they got when the real client presents it a second later.
func TestRefreshReuseFromAnotherAddress(t *testing.T) {
	w := newRefreshWorld(t)
	stolen := w.mustRefresh("203.0.113.66", w.app.RefreshToken)
	if !w.works(stolen.AccessToken) {
		t.Fatal("the thief's access token is refused before the real client came")
	}
	w.clock.add(time.Second)
	w.refused("198.51.100.7", w.app.RefreshToken)
	if w.works(stolen.AccessToken) || w.works(w.app.AccessToken) {
		t.Fatal("the lineage survived a reuse from another address")
	}
	w.refused("203.0.113.66", stolen.RefreshToken)
	es := w.audited(service.AuditLineageRevoked)
	if len(es) != 1 || es[0].RemoteAddr != "198.51.100.7" || es[0].Details["used_by"] != "203.0.113.66" || es[0].TargetID != w.app.ClientID {
		t.Fatalf("lineage audit: %+v", es)
	}
	// The application itself stays: a reissue starts a new lineage.
	if _, err := w.svc.ReissueAPIAccess(context.Background(), w.admin); err != nil {
		t.Fatal(err)
	}
}

// TestRefreshReuseAfterGrace: the same client past the grace period is
// reuse detection, as before.
func TestRefreshReuseAfterGrace(t *testing.T) {
	w := newRefreshWorld(t)
	next := w.mustRefresh("198.51.100.7", w.app.RefreshToken)
	w.clock.add(5*time.Second + time.Microsecond)
	w.refused("198.51.100.7", w.app.RefreshToken)
	if w.works(next.AccessToken) {
		t.Fatal("the lineage survived reuse after the grace period")
	}
	if es := w.audited(service.AuditLineageRevoked); len(es) != 1 || !strings.Contains(es[0].Details["reason"], "after the grace") {
		t.Fatalf("audit: %+v", es)
	}
}

// TestRefreshRetryKeepsNoSecret: what the rotation keeps for retries is
// sealed: neither new secret appears in it, and it does not open with
// another refresh token.
func TestRefreshRetryKeepsNoSecret(t *testing.T) {
	w := newRefreshWorld(t)
	next := w.mustRefresh("198.51.100.7", w.app.RefreshToken)
	it, err := w.st.TokenByHash(context.Background(), token.NewDigester(nil).Digest(w.app.RefreshToken))
	if err != nil {
		t.Fatal(err)
	}
	r, err := w.st.RefreshRetry(context.Background(), it.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{next.AccessToken, next.RefreshToken, next.AccessToken[4:20], next.RefreshToken[4:20]} {
		if strings.Contains(r.Sealed, secret) {
			t.Fatal("the kept pair holds a secret in the clear")
		}
	}
	if r.ClientAddr != "198.51.100.7" || !r.CreatedAt.Equal(w.clock.now()) || !it.UsedAt.Equal(w.clock.now()) {
		t.Fatalf("kept %+v, token used at %v", r, it.UsedAt)
	}
}

// TestRefreshConcurrent: 30 concurrent presentations of one refresh token
// make exactly one rotation. From one client address every answer is that
// rotation's pair; from 30 addresses exactly one succeeds and the lineage
// is revoked.
func TestRefreshConcurrent(t *testing.T) {
	const n = 30
	race := func(w *refreshWorld, addr func(i int) string) (pairs []*service.Issued, refused int) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			start = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				<-start
				out, err := w.refresh(addr(i), w.app.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					pairs = append(pairs, out)
				case gatehouse.ErrorCode(err) == gatehouse.EInvalidGrant:
					refused++
				default:
					t.Errorf("refresh %d: %v", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		return pairs, refused
	}
	t.Run("one client", func(t *testing.T) {
		w := newRefreshWorld(t)
		pairs, refused := race(w, func(int) string { return "198.51.100.7" })
		if len(pairs) != n || refused != 0 {
			t.Fatalf("%d answered, %d refused; want every retry answered", len(pairs), refused)
		}
		for _, p := range pairs {
			if p.RefreshToken != pairs[0].RefreshToken || p.AccessToken != pairs[0].AccessToken {
				t.Fatal("two rotations committed")
			}
		}
		if !w.works(pairs[0].AccessToken) || len(w.audited(service.AuditLineageRevoked)) != 0 {
			t.Fatal("the lineage was revoked")
		}
		if got := len(w.audited(service.AuditRefreshRetried)); got != n-1 {
			t.Fatalf("%d retries audited, want %d", got, n-1)
		}
		w.mustRefresh("198.51.100.7", pairs[0].RefreshToken)
	})
	t.Run("many clients", func(t *testing.T) {
		w := newRefreshWorld(t)
		pairs, refused := race(w, func(i int) string { return "198.51.100." + string(rune('a'+i)) })
		if len(pairs) != 1 || refused != n-1 {
			t.Fatalf("%d answered, %d refused; want exactly one", len(pairs), refused)
		}
		if w.works(pairs[0].AccessToken) {
			t.Fatal("the winner's tokens survived reuse from other addresses")
		}
		// Each loser that found the lineage live revoked and audited it;
		// one that read the token after that found it revoked already.
		if got := len(w.audited(service.AuditLineageRevoked)); got < 1 || got > n-1 {
			t.Fatalf("%d reuses audited, want 1 to %d", got, n-1)
		}
	})
}

// TestRefreshStampedWhenWritten: a rotation that waits out a stalled store
// — another connection holds SQLite's write lock while 30 s pass on the
// clock — marks the token used when its write happens, not when the
// request began. The client's retry right after the stall is inside the
// grace period and gets the committed pair; nothing is revoked (stamping
// at the start made that retry look 30 s late, and revoked the lineage).
func TestRefreshStampedWhenWritten(t *testing.T) {
	w := newRefreshWorld(t)
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+w.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out *service.Issued
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := w.refresh("198.51.100.7", w.app.RefreshToken)
		done <- result{out, err}
	}()
	time.Sleep(300 * time.Millisecond) // the rotation is waiting for the lock
	w.clock.add(30 * time.Second)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	first := <-done
	if first.err != nil {
		t.Fatalf("the stalled refresh: %v", first.err)
	}
	it, err := w.st.TokenByHash(ctx, token.NewDigester(nil).Digest(w.app.RefreshToken))
	if err != nil || !it.UsedAt.Equal(w.clock.now()) {
		t.Fatalf("used at %v, want the time of the write %v (%v)", it.UsedAt, w.clock.now(), err)
	}
	again := w.mustRefresh("198.51.100.7", w.app.RefreshToken)
	if again.RefreshToken != first.out.RefreshToken || len(w.audited(service.AuditLineageRevoked)) != 0 || !w.works(again.AccessToken) {
		t.Fatal("the retry after the stall did not get the committed pair")
	}
}
