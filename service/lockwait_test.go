package service_test

import (
	"context"
	"database/sql"
	"log/slog"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// TestWriteSeesTheDisableItWaitedFor: on PostgreSQL, a write in a user's
// name that waits for their account's lock, held by a change that
// disables them, is refused once that change commits — it reads the user
// after the lock, not as they were when it began (requireActiveNow: two
// statements, not one join). The write is the deletion of the user's own
// credential; the credential stays.
func TestWriteSeesTheDisableItWaitedFor(t *testing.T) {
	dsn := pgtest.Schema(t)
	st := openStoreAt(t, dsn)
	ctx := context.Background()
	svc := service.New(service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil), Logger: slog.New(slog.DiscardHandler)})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	login := func(email string) *gatehouse.Principal {
		t.Helper()
		out, _, err := svc.PasswordGrant(ctx, email, pw, "192.0.2.1", "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := svc.AccessPrincipal(ctx, out.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	op := login("op@example.com")
	dev, err := svc.CreateUser(ctx, op, service.NewUser{Email: "dev@example.com", Password: pw, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}})
	if err != nil {
		t.Fatal(err)
	}
	p := login("dev@example.com")
	c, err := svc.CreateCredential(ctx, p, service.CredentialInput{Name: "kept"})
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
	tx, err := db.BeginTx(ctx, nil)
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
	go func() { done <- svc.DeleteCredential(ctx, p, c.ID) }()
	pgtest.AwaitBlocked(t, db, holder, "the deletion waits for the account's lock")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; gatehouse.ErrorCode(err) != gatehouse.EForbidden {
		t.Fatalf("a deletion by a user disabled while it waited: %v, want forbidden", err)
	}
	if _, err := svc.Credential(ctx, op, c.ID); err != nil {
		t.Fatalf("the credential after the refused deletion: %v", err)
	}
}
