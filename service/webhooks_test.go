package service_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/webhook"
)

// TestEventsCommitWithTheirChange: an event is written only when its
// change commits: a change refused (a user whose address is taken) and a
// transaction that fails after recording its event leave no delivery. On
// SQLite and on PostgreSQL (skipped when it is not there, except under
// CI=true).
func TestEventsCommitWithTheirChange(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { eventsCommitWithTheirChange(t, openStore(t)) })
	t.Run("postgres", func(t *testing.T) { eventsCommitWithTheirChange(t, openStoreAt(t, pgtest.Schema(t))) })
}

func eventsCommitWithTheirChange(t *testing.T, st *store.Store) {
	ctx := context.Background()
	sealer := webhook.NewSealer(nil)
	svc := service.New(service.Config{Store: st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
		Digester: token.NewDigester(nil), Logger: slog.New(slog.DiscardHandler), WebhookSealer: sealer, WebhookAllowInsecure: true})
	worker := webhook.NewWorker(webhook.WorkerConfig{Store: st, Sealer: sealer, AllowInsecure: true, Logger: slog.New(slog.DiscardHandler)})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	out, _, err := svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	op, err := svc.AccessPrincipal(ctx, out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	wh, err := svc.CreateWebhook(ctx, op, service.WebhookInput{URL: srv.URL, Events: []string{"user.*"}})
	if err != nil {
		t.Fatal(err)
	}
	// A conflict (the address is taken) rolls the user's creation back.
	if _, err := svc.CreateUser(ctx, op, service.NewUser{Email: "op@example.com", Password: pw}); gatehouse.ErrorCode(err) != gatehouse.EConflict {
		t.Fatalf("duplicate user: %v", err)
	}
	// A change whose transaction fails after its event was written.
	boom := errors.New("boom")
	if err := service.FailAfterEvent(ctx, svc, op, boom); !errors.Is(err, boom) {
		t.Fatalf("FailAfterEvent: %v", err)
	}
	worker.Round(ctx)
	ds, _, _ := svc.WebhookDeliveries(ctx, op, wh.ID, gatehouse.Page{})
	if len(ds) != 0 || hits.Load() != 0 {
		t.Fatalf("a rolled-back change sent %d requests, %d deliveries", hits.Load(), len(ds))
	}
	// The same change committed is delivered.
	if _, err := svc.CreateUser(ctx, op, service.NewUser{Email: "new@example.com", Password: pw}); err != nil {
		t.Fatal(err)
	}
	if n, err := worker.Round(ctx); n != 1 || err != nil || hits.Load() != 1 {
		t.Fatalf("committed change: %d claimed, %d requests, %v", n, hits.Load(), err)
	}
}
