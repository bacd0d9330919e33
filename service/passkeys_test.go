package service_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/mfa"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// TestPasskeyIsASecondFactor: a passkey alone makes its user one who signs
// in with a second factor (the password grant refuses them), and
// `gatehouse recover` clears the operator's passkeys with the rest.
func TestPasskeyIsASecondFactor(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	svc := service.New(service.Config{Store: st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
		Digester: token.NewDigester(nil), Logger: slog.New(slog.DiscardHandler), MFASealer: mfa.NewSealer([]byte("test key"))})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	op, err := st.UserByEmail(ctx, "op@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx *store.Tx) error {
		return tx.CreatePasskey(&store.Passkey{ID: "pk_1", AccountID: op.AccountID, UserID: op.ID, CredentialID: "Y3JlZA", Name: "Key", Credential: "{}"})
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", ""); !strings.Contains(gatehouse.ErrorMessage(err), "second factor") {
		t.Fatalf("the password grant of a user with a passkey: %v", err)
	}
	// Without a relying party the ceremonies say why.
	if _, err := svc.BeginPasskeySignIn(ctx, "", "192.0.2.1"); gatehouse.ErrorCode(err) != gatehouse.EUnavailable {
		t.Fatalf("no relying party: %v", err)
	}
	if _, err := svc.Recover(ctx, "op@example.com", "a brand new long password"); err != nil {
		t.Fatal(err)
	}
	if f, err := st.Factors(ctx, op.ID); err != nil || f.Passkeys != 0 || f.Any() {
		t.Fatalf("after recover: %+v %v", f, err)
	}
	if _, _, err := svc.PasswordGrant(ctx, "op@example.com", "a brand new long password", "192.0.2.1", ""); err != nil {
		t.Fatalf("after recover: %v", err)
	}
}
