package webhook_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/prune"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/webhook"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingBody counts what is read of an answer's body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// deliveries lists an endpoint's deliveries, newest first.
func (f *fixture) deliveries(t *testing.T, id string) []*gatehouse.WebhookDelivery {
	t.Helper()
	ds, _, err := f.svc.WebhookDeliveries(context.Background(), f.op, id, gatehouse.Page{})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestAnswerReadIsBounded: a receiver that answers 200 and then streams
// an endless body has at most MaxAnswer bytes of it read; the attempt is
// recorded as delivered at once, the connection is dropped, and the
// worker is free for the next delivery.
func TestAnswerReadIsBounded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	handlerDone := make(chan struct{}, 1)
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { handlerDone <- struct{}{} }()
		w.WriteHeader(http.StatusOK)
		chunk := make([]byte, 32<<10)
		for i := range chunk {
			chunk[i] = 'x'
		}
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); { // until the worker hangs up
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	var read atomic.Int64
	client := webhook.Client(true)
	inner := client.Transport
	client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err == nil {
			resp.Body = countingBody{resp.Body, &read}
		}
		return resp, err
	})
	w := webhook.NewWorker(webhook.WorkerConfig{Store: f.st, Sealer: webhook.NewSealer([]byte("k")), AllowInsecure: true, Client: client,
		Now: f.clock, Logger: slog.New(slog.DiscardHandler)})

	wh := f.testEventTo(t, srv.URL)
	start := time.Now()
	if n, err := w.Round(ctx); n != 1 || err != nil {
		t.Fatalf("round: %d, %v", n, err)
	}
	took := time.Since(start)
	if took > 8*time.Second {
		t.Fatalf("the attempt took %s: the worker was held by the answer", took)
	}
	if got := read.Load(); got > webhook.MaxAnswer {
		t.Fatalf("%d bytes of the answer read, more than %d", got, webhook.MaxAnswer)
	}
	select {
	case <-handlerDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still streaming: the connection was kept")
	}
	if written.Load() <= webhook.MaxAnswer {
		t.Fatalf("the receiver wrote only %d bytes; the test proves nothing", written.Load())
	}
	if ds := f.deliveries(t, wh.ID); len(ds) != 1 || ds[0].Status != gatehouse.DeliveryDelivered || ds[0].ResponseStatus != 200 || ds[0].Attempt != 1 {
		t.Fatalf("delivery: %+v", ds)
	}
	t.Logf("the receiver wrote %d bytes, %d were read, in %s", written.Load(), read.Load(), took)
}

// TestAttemptTimesOut: a receiver that never answers is a failed attempt
// once the worker's timeout has passed, to be made again on the schedule.
func TestAttemptTimesOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	const timeout = 300 * time.Millisecond
	w := webhook.NewWorker(webhook.WorkerConfig{Store: f.st, Sealer: webhook.NewSealer([]byte("k")), AllowInsecure: true, Timeout: timeout,
		Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	wh := f.testEventTo(t, srv.URL)
	start := time.Now()
	if n, err := w.Round(ctx); n != 1 || err != nil {
		t.Fatalf("round: %d, %v", n, err)
	}
	if took := time.Since(start); took < timeout || took > 8*time.Second {
		t.Fatalf("the attempt took %s with a timeout of %s", took, timeout)
	}
	ds := f.deliveries(t, wh.ID)
	if len(ds) != 1 || hits.Load() != 1 {
		t.Fatalf("%d deliveries, %d requests", len(ds), hits.Load())
	}
	d := ds[0]
	if d.Status != gatehouse.DeliveryPending || d.Attempt != 1 || d.ResponseStatus != 0 || d.NextAttemptAt == nil || d.DurationMS < timeout.Milliseconds() {
		t.Fatalf("after the timeout: %+v", d)
	}
	if next := d.NextAttemptAt.Sub(f.clock()); next < webhook.Schedule[0]*8/10 || next > webhook.Schedule[0]*12/10+time.Second {
		t.Fatalf("next attempt in %s, want about %s", next, webhook.Schedule[0])
	}
}

// TestDeliveriesPrunedAfterRetention: deliveries no longer pending are
// deleted once older than the retention, and an event once it has no
// delivery left; pending deliveries, their events and newer deliveries
// are kept, and go once they are done.
func TestDeliveriesPrunedAfterRetention(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer bad.Close()
	good, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: ok.URL, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	flaky, err := f.svc.CreateWebhook(ctx, f.op, service.WebhookInput{URL: bad.URL, Events: []string{"settings.changed"}})
	if err != nil {
		t.Fatal(err)
	}
	round := func() {
		t.Helper()
		if _, err := f.w.Round(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Old: a test event to the good endpoint (delivered), and a change
	// sent to both (delivered to one, pending at the other).
	if _, err := f.svc.TestWebhook(ctx, f.op, good.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UpdateSettings(ctx, f.op, gatehouse.SettingsPatch{}); err != nil {
		t.Fatal(err)
	}
	round()
	if ds := f.deliveries(t, flaky.ID); len(ds) != 1 || ds[0].Status != gatehouse.DeliveryPending {
		t.Fatalf("the failing endpoint's delivery: %+v", ds)
	}
	if ds := f.deliveries(t, good.ID); len(ds) != 2 || ds[0].Status != gatehouse.DeliveryDelivered || ds[1].Status != gatehouse.DeliveryDelivered {
		t.Fatalf("the good endpoint's deliveries: %+v", ds)
	}

	const retention = 24 * time.Hour
	p := prune.New(prune.Config{Store: f.st, Retention: retention, Now: f.clock, Logger: slog.New(slog.DiscardHandler)})
	pruneRound := func() map[string]int {
		t.Helper()
		deleted, held, err := p.Round(ctx)
		if err != nil || !held {
			t.Fatalf("prune: %v, held %v", err, held)
		}
		return deleted
	}
	// Within the retention nothing goes.
	f.wait(retention - time.Minute)
	if d := pruneRound(); d["old_webhook_deliveries"] != 0 || d["old_webhook_events"] != 0 {
		t.Fatalf("pruned within the retention: %v", d)
	}
	// A new event, delivered.
	if _, err := f.svc.TestWebhook(ctx, f.op, good.ID); err != nil {
		t.Fatal(err)
	}
	round() // (the failing endpoint is tried again, and fails again)

	// Past the retention: the old delivered ones go, with the test event;
	// the change's event stays while its other delivery is pending.
	f.wait(2 * time.Minute)
	if d := pruneRound(); d["old_webhook_deliveries"] != 2 || d["old_webhook_events"] != 1 {
		t.Fatalf("pruned past the retention: %v", d)
	}
	if ds := f.deliveries(t, good.ID); len(ds) != 1 || ds[0].Type != "webhook.test" || !ds[0].CreatedAt.After(f.clock().Add(-retention)) {
		t.Fatalf("the good endpoint's deliveries after pruning: %+v", ds)
	}
	if ds := f.deliveries(t, flaky.ID); len(ds) != 1 || ds[0].Status != gatehouse.DeliveryPending || ds[0].Attempt != 2 {
		t.Fatalf("the pending delivery after pruning: %+v", ds)
	}
	// Once the pending one is delivered it goes, and its event with it.
	failing.Store(false)
	f.wait(webhook.Schedule[1] * 2)
	round()
	if ds := f.deliveries(t, flaky.ID); len(ds) != 1 || ds[0].Status != gatehouse.DeliveryDelivered {
		t.Fatalf("the retried delivery: %+v", ds)
	}
	if d := pruneRound(); d["old_webhook_deliveries"] != 1 || d["old_webhook_events"] != 1 {
		t.Fatalf("pruned once delivered: %v", d)
	}
	if ds := f.deliveries(t, flaky.ID); len(ds) != 0 {
		t.Fatalf("the failing endpoint's deliveries after pruning: %+v", ds)
	}
	if ds := f.deliveries(t, good.ID); len(ds) != 1 {
		t.Fatalf("the newer delivery was pruned: %+v", ds)
	}
}

// testEventTo adds an endpoint at url for every event and sends it the
// test event, to be delivered by the next round.
func (f *fixture) testEventTo(t *testing.T, url string) *gatehouse.Webhook {
	t.Helper()
	wh, err := f.svc.CreateWebhook(context.Background(), f.op, service.WebhookInput{URL: url, Events: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.TestWebhook(context.Background(), f.op, wh.ID); err != nil {
		t.Fatal(err)
	}
	return wh
}
