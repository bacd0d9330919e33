package service_test

import (
	"database/sql"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/service"
)

// TestWriteSeesTheDisableItWaitedFor: on PostgreSQL, a write in a user's
// name that waits for their account's lock, held by a change that
// disables them, is refused once that change commits — it reads the user
// after the lock, not as they were when it began (requireActiveNow: two
// statements, not one join). The write is the deletion of the user's own
// credential; the credential stays.
func TestWriteSeesTheDisableItWaitedFor(t *testing.T) {
	dsn := pgtest.Schema(t)
	w := newLPOn(t, openStoreAt(t, dsn))
	dev, err := w.svc.CreateUser(w.ctx, w.op, service.NewUser{Email: "dev@example.com", Password: pw, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}})
	if err != nil {
		t.Fatal(err)
	}
	p := w.login("dev@example.com")
	c, err := w.svc.CreateCredential(w.ctx, p, service.CredentialInput{Name: "kept"})
	if err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The disable, as a change of a user makes it: the account locked,
	// then the user's row written; held open until the write waits.
	tx, err := db.BeginTx(w.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE`, dev.AccountID); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE users SET status = 'disabled' WHERE id = $1`, dev.ID); err != nil {
		t.Fatal(err)
	}
	var holder int
	if err := tx.QueryRow(`SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.svc.DeleteCredential(w.ctx, p, c.ID) }()
	pgtest.AwaitBlocked(t, db, holder, "the deletion waits for the account's lock")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("a deletion by a user disabled while it waited: %v, want forbidden", err)
	}
	if _, err := w.svc.Credential(w.ctx, w.op, c.ID); err != nil {
		t.Fatalf("the credential after the refused deletion: %v", err)
	}
}
