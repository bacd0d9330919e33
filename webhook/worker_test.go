package webhook_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/pgtest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/token"
	"github.com/gatehouse/gatehouse/webhook"
)

const pw = "a long enough password"

// fixture is a service and a worker on a fresh store (SQLite, or a
// PostgreSQL schema with GATEHOUSE_TEST_DATABASE=postgres), sharing a
// clock the test moves, with the operator's principal.
type fixture struct {
	st  *store.Store
	svc *service.Service
	w   *webhook.Worker
	op  *gatehouse.Principal

	mu  sync.Mutex
	now time.Time
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) wait(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dbURL := filepath.Join(t.TempDir(), "g.db")
	if os.Getenv("GATEHOUSE_TEST_DATABASE") == "postgres" {
		dbURL = pgtest.Schema(t)
	}
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, now: time.Now()}
	sealer := webhook.NewSealer([]byte("k"))
	f.svc = service.New(service.Config{Store: st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
		Digester: token.NewDigester(nil), Now: f.clock, Logger: slog.New(slog.DiscardHandler), WebhookSealer: sealer, WebhookAllowInsecure: true})
	f.w = webhook.NewWorker(webhook.WorkerConfig{Store: st, Sealer: sealer, AllowInsecure: true, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	if _, _, err := f.svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	out, _, err := f.svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.op, err = f.svc.AccessPrincipal(ctx, out.AccessToken); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRetryScheduleThenDisable: an endpoint that always answers 500 gets
// an attempt at each step of the schedule and none between; after the
// last it is disabled with an audit entry and sent nothing more.
func TestRetryScheduleThenDisable(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	wh, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: srv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TestWebhook(ctx, f.op, wh.ID); err != nil {
		t.Fatal(err)
	}
	round := func() int {
		n, err := f.w.Round(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if round() != 1 || hits.Load() != 1 {
		t.Fatalf("first attempt: %d hits", hits.Load())
	}
	for i, step := range webhook.Schedule {
		f.wait(step - step/10 - time.Second) // before the earliest jitter
		if n := round(); n != 0 {
			t.Fatalf("attempt %d made %s early", i+2, step/10)
		}
		f.wait(step/5 + 2*time.Second) // past the latest
		if n := round(); n != 1 {
			t.Fatalf("attempt %d not made after %s", i+2, step)
		}
	}
	if got := hits.Load(); got != int64(webhook.MaxAttempts) {
		t.Fatalf("%d attempts, want %d", got, webhook.MaxAttempts)
	}
	got, err := f.svc.Webhook(ctx, f.op, wh.ID)
	if err != nil || got.Enabled || got.DisabledReason != webhook.ReasonFailing {
		t.Fatalf("after the last retry: %+v, %v", got, err)
	}
	ds, _, _ := f.svc.WebhookDeliveries(ctx, f.op, wh.ID, gatehouse.Page{})
	if len(ds) != 1 || ds[0].Status != gatehouse.DeliveryFailed || ds[0].Attempt != webhook.MaxAttempts || ds[0].ResponseStatus != 500 || ds[0].NextAttemptAt != nil {
		t.Fatalf("delivery: %+v", ds[0])
	}
	entries, _, err := f.st.FindAudit(ctx, f.op.AccountID, gatehouse.AuditFilter{Action: "webhook.disabled"}, gatehouse.Page{})
	if err != nil || len(entries) != 1 || entries[0].TargetID != wh.ID || entries[0].Details["reason"] != webhook.ReasonFailing {
		t.Fatalf("audit: %+v, %v", entries, err)
	}
	// Disabled: a new event is sent nothing.
	if _, err := f.svc.UpdateSettings(ctx, f.op, gatehouse.SettingsPatch{}); err != nil {
		t.Fatal(err)
	}
	f.wait(time.Hour)
	round()
	if hits.Load() != int64(webhook.MaxAttempts) {
		t.Fatal("a disabled endpoint was sent an event")
	}
}

// TestLeaseGivesADeadNodesDeliveryToAnother: a node that claimed a
// delivery and stopped mid-attempt (its context ended before the answer)
// records nothing; another node makes the attempt once the lease ran out,
// and not before; the first node's late outcome is not recorded.
func TestLeaseGivesADeadNodesDeliveryToAnother(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release // the first attempt never gets its answer
		}
	}))
	defer srv.Close()
	defer close(release)
	wh, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: srv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TestWebhook(ctx, f.op, wh.ID); err != nil {
		t.Fatal(err)
	}
	dying, die := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		n, _ := f.w.Round(dying)
		done <- n
	}()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	die()
	if n := <-done; n != 1 {
		t.Fatalf("the first node claimed %d", n)
	}
	other := webhook.NewWorker(webhook.WorkerConfig{Store: f.st, Sealer: webhook.NewSealer([]byte("k")), AllowInsecure: true, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	if n, _ := other.Round(ctx); n != 0 {
		t.Fatal("another node claimed a leased delivery")
	}
	f.wait(webhook.DefaultLease + time.Second)
	if n, err := other.Round(ctx); n != 1 || err != nil || hits.Load() != 2 {
		t.Fatalf("after the lease: claimed %d, %d requests, %v", n, hits.Load(), err)
	}
	ds, _, _ := f.svc.WebhookDeliveries(ctx, f.op, wh.ID, gatehouse.Page{})
	if len(ds) != 1 || ds[0].Status != gatehouse.DeliveryDelivered || ds[0].Attempt != 1 {
		t.Fatalf("delivery: %+v", ds[0])
	}
	// The first node's outcome, arriving late, is not recorded.
	held, err := f.st.FinishAttempt(ctx, store.Attempt{DeliveryID: ds[0].ID, Holder: "node_dead", Attempt: 1, Status: gatehouse.DeliveryFailed, At: f.clock()})
	if held || err != nil {
		t.Fatalf("a stale holder recorded an outcome: %v, %v", held, err)
	}
}

// TestExpiryNoticesOnce: an API token expiring in three days gets
// credential.expiring (7 days) at once, then (1 day) a day before, then
// credential.expired, each once however often and on however many nodes
// the look runs.
func TestExpiryNoticesOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Type string            `json:"type"`
			Data map[string]string `json:"data"`
		}
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev.Type+" "+ev.Data["stage"])
		mu.Unlock()
	}))
	defer srv.Close()
	on := true
	if err := f.svc.SetAPITokensExtension(ctx, f.op, &on); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: srv.URL, Events: []string{"credential.expiring", "credential.expired"}}); err != nil {
		t.Fatal(err)
	}
	expires := f.clock().Add(72 * time.Hour)
	if _, err := f.svc.CreateAPIToken(ctx, f.op, service.APITokenInput{Name: "ci", ExpiresAt: &expires}); err != nil {
		t.Fatal(err)
	}
	other := service.New(service.Config{Store: f.st, Passwords: password.New(password.Params{Memory: 1024, Time: 1, Threads: 1}),
		Digester: token.NewDigester(nil), Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	look := func(want int) {
		t.Helper()
		total := 0
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, s := range []*service.Service{f.svc, other, f.svc, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := s.NoticeExpiries(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		if total != want {
			t.Fatalf("%d notices sent, want %d", total, want)
		}
		for {
			if n, _ := f.w.Round(ctx); n == 0 {
				break
			}
		}
	}
	look(1)
	f.wait(47 * time.Hour)
	look(0)
	f.wait(2 * time.Hour) // a day before
	look(1)
	f.wait(24 * time.Hour) // expired
	look(1)
	look(0)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"credential.expiring 7d", "credential.expiring 1d", "credential.expired expired"}
	if len(got) != len(want) {
		t.Fatalf("received %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("received %v, want %v", got, want)
		}
	}
}

// TestStoppingNodeGivesItsDeliveriesBack: a worker stopped mid-attempt
// gives its lease back, so another node makes the attempt at once.
func TestStoppingNodeGivesItsDeliveriesBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release
		}
	}))
	defer srv.Close()
	defer close(release)
	wh, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: srv.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TestWebhook(ctx, f.op, wh.ID); err != nil {
		t.Fatal(err)
	}
	stopping, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.w.Run(stopping); close(done) }()
	for hits.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	<-done
	other := webhook.NewWorker(webhook.WorkerConfig{Store: f.st, Sealer: webhook.NewSealer([]byte("k")), AllowInsecure: true, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	if n, err := other.Round(ctx); n != 1 || err != nil || hits.Load() != 2 {
		t.Fatalf("after the stop: claimed %d, %d requests, %v", n, hits.Load(), err)
	}
}

// TestSlowEndpointDelaysNoOther: an endpoint that does not answer holds at
// most PerEndpoint of the worker's attempts, and a delivery to another
// endpoint committed while they hang is made at once, not after them. A
// worker that claimed in rounds and waited for each round to end held it
// until the hanging attempts' timeout (here longer than the test waits).
func TestSlowEndpointDelaysNoOther(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var hanging, most atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hanging.Add(1)
		defer hanging.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	fast := make(chan string, 16)
	quick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fast <- r.Header.Get("webhook-id")
	}))
	w := webhook.NewWorker(webhook.WorkerConfig{Store: f.st, Sealer: webhook.NewSealer([]byte("k")), AllowInsecure: true,
		Client: &http.Client{}, Timeout: 10 * time.Minute, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	defer func() {
		close(release)
		cancel()
		<-done
		slow.Close()
		quick.Close()
	}()
	slowHook, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: slow.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	quickHook, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: quick.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	const hung = 6
	for range hung {
		if _, err := f.svc.TestWebhook(ctx, f.op, slowHook.ID); err != nil {
			t.Fatal(err)
		}
	}
	go func() { defer close(done); w.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for hanging.Load() < webhook.DefaultPerEndpoint {
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts to the slow endpoint under way, want %d", hanging.Load(), webhook.DefaultPerEndpoint)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// While they hang, two deliveries to the other endpoint.
	for range 2 {
		if _, err := f.svc.TestWebhook(ctx, f.op, quickHook.ID); err != nil {
			t.Fatal(err)
		}
		w.Wake()
		select {
		case <-fast:
		case <-time.After(30 * time.Second):
			t.Fatalf("no delivery to the other endpoint while the slow one hangs (%d attempts hanging)", hanging.Load())
		}
	}
	if m := most.Load(); m > webhook.DefaultPerEndpoint {
		t.Fatalf("%d attempts to one endpoint at once, want at most %d", m, webhook.DefaultPerEndpoint)
	}
}
