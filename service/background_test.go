package service_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
)

// TestChangePollInBackground: while Run runs, a revoking change made by
// another process on the same store (a second service, as gatehouse
// recover or another node without Redis) ends a token this service has
// cached, though no request reads the change counter; and once the
// counter cannot be read, a cached token is refused as unavailable,
// never served from the cache.
func TestChangePollInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	open := func() (*store.Store, *service.Service) {
		st := openStoreAt(t, path)
		return st, service.New(service.Config{Store: st, Passwords: cheapPasswords(),
			Digester: token.NewDigester(nil), ChangePoll: 100 * time.Millisecond})
	}
	st, svc := open()
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	login := func(svc *service.Service, email string) string {
		t.Helper()
		out, _, err := svc.PasswordGrant(ctx, email, pw, "192.0.2.1", "")
		if err != nil {
			t.Fatalf("login %s: %v", email, err)
		}
		return out.AccessToken
	}
	opTok := login(svc, "op@example.com")
	op, err := svc.AccessPrincipal(ctx, opTok)
	if err != nil {
		t.Fatal(err)
	}
	ann, err := svc.CreateUser(ctx, op, service.NewUser{Email: "ann@example.com", Password: pw, Roles: []gatehouse.Role{gatehouse.RoleDeveloper}})
	if err != nil {
		t.Fatal(err)
	}
	annTok := login(svc, "ann@example.com")
	if _, err := svc.AccessPrincipal(ctx, annTok); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()

	_, other := open()
	otherOp, err := other.AccessPrincipal(ctx, login(other, "op@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	disabled := gatehouse.StatusDisabled
	if _, err := other.UpdateUser(ctx, otherOp, ann.ID, service.UserPatch{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		_, err := svc.AccessPrincipal(ctx, annTok)
		if gatehouse.ErrorCode(err) == gatehouse.EInvalidToken || gatehouse.ErrorCode(err) == gatehouse.EInvalidUser {
			break
		}
		if i == 100 {
			t.Fatalf("the token of a user disabled elsewhere: %v, want refused", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The counter can no longer be read: the cached operator token is
	// refused as unavailable once the last read is older than the poll.
	stop()
	<-done
	st.Close()
	time.Sleep(150 * time.Millisecond)
	if _, err := svc.AccessPrincipal(ctx, opTok); gatehouse.ErrorCode(err) != gatehouse.EUnavailable {
		t.Fatalf("a cached token with the store away: %v, want temporarily_unavailable", err)
	}
}
