package webhook

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/seal"
	"github.com/gatehouse/gatehouse/store"
)

// Defaults of WorkerConfig.
const (
	// DefaultPoll is how often a node looks for due deliveries.
	DefaultPoll = time.Second
	// DefaultBatch is how many deliveries a node claims at a time.
	DefaultBatch = 32
	// DefaultLease is how long a claimed delivery is this node's: longer
	// than an attempt can take, so that a live node finishes its attempt
	// before another may claim it, and a dead node's delivery is made by
	// another once it runs out.
	DefaultLease = 6 * Timeout
	// DefaultConcurrency is how many attempts a node makes at once.
	DefaultConcurrency = 8
	// DefaultPerEndpoint is how many of a node's attempts may be under
	// way to one endpoint at once: an endpoint that hangs holds at most
	// that many, for at most Timeout each, while the others go on.
	DefaultPerEndpoint = 2
)

// Disable reasons the worker writes on an endpoint.
const (
	ReasonGone    = "gone"    // it answered 410 Gone
	ReasonFailing = "failing" // a delivery's last retry failed
)

// WorkerConfig is what a Worker needs. Store and Sealer are required.
type WorkerConfig struct {
	Store  *store.Store
	Sealer *seal.Sealer
	// AllowInsecure allows http URLs and non-public addresses
	// (--webhook-allow-insecure).
	AllowInsecure bool
	// Client sends the requests; nil means Client(AllowInsecure).
	Client *http.Client
	// Poll, Batch, Lease, Concurrency and PerEndpoint: zero means the
	// defaults.
	Poll        time.Duration
	Batch       int
	Lease       time.Duration
	Concurrency int
	PerEndpoint int
	// Timeout bounds one attempt, from dialling to the end of the answer;
	// zero means Timeout. (A longer one is still cut by the Client's own
	// timeout, Timeout for the default Client.)
	Timeout time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives failures; nil means slog.Default().
	Logger *slog.Logger
}

// Worker makes the deliveries of the store's outbox: it claims due ones
// under a lease, signs and sends each, and records the outcome. Every
// node of a cluster runs one; a delivery's lease makes one node attempt
// it at a time. Build it with NewWorker; it is safe for concurrent use.
type Worker struct {
	cfg    WorkerConfig
	holder string
	wake   chan struct{}
	// ended is signalled when an attempt ends: a slot is free.
	ended chan struct{}

	mu      sync.Mutex
	running int            // attempts under way
	busy    map[string]int // attempts under way, by endpoint
}

// NewWorker returns a Worker for cfg. It has no side effects.
func NewWorker(cfg WorkerConfig) *Worker {
	if cfg.Client == nil {
		cfg.Client = Client(cfg.AllowInsecure)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = DefaultPerEndpoint
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = Timeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, holder: gatehouse.NewID("node"), wake: make(chan struct{}, 1), ended: make(chan struct{}, 1),
		busy: map[string]int{}}
}

// Wake asks the worker to look for due deliveries now rather than at its
// next poll (the service calls it after committing an event).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, keeping up to Concurrency attempts under
// way: it claims due deliveries for its free attempts whenever one ends,
// an event is committed (Wake) or Poll passes, so that an endpoint that is
// slow to answer delays only its own deliveries (at most PerEndpoint of
// them at once), never the others'. Attempts under way when ctx ends are
// not recorded, and their leases are given back so that any node makes
// them again at once (a node that dies leaves them to its leases instead).
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		if err := w.cfg.Store.ReleaseDeliveries(context.WithoutCancel(ctx), w.holder); err != nil {
			w.cfg.Logger.Warn("could not give back webhook deliveries under way; another node makes them after their leases", "err", err)
		}
	}()
	failing := false
	for {
		n, asked, err := w.start(ctx, &wg)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			w.cfg.Logger.Warn("cannot claim webhook deliveries; trying again", "err", err)
			failing = true
		case err == nil && failing:
			failing = false
		}
		if err == nil && n > 0 && n == asked {
			continue // more may be due, and attempts may be free
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		case <-w.ended:
		}
	}
}

// Round claims due deliveries for the worker's free attempts, makes them,
// and returns how many it claimed, once they have all ended. Run does the
// same without waiting for a round to end.
func (w *Worker) Round(ctx context.Context) (int, error) {
	var wg sync.WaitGroup
	n, _, err := w.start(ctx, &wg)
	wg.Wait()
	return n, err
}

// start claims due deliveries for the worker's free attempts (at most
// Batch), of endpoints none of whose deliveries it is making, and starts
// their attempts under wg. It returns how many it claimed and how many it
// asked for.
func (w *Worker) start(ctx context.Context, wg *sync.WaitGroup) (n, asked int, err error) {
	w.mu.Lock()
	asked = min(w.cfg.Concurrency-w.running, w.cfg.Batch)
	skip := make([]string, 0, len(w.busy))
	for id := range w.busy {
		skip = append(skip, id)
	}
	w.mu.Unlock()
	if asked <= 0 {
		return 0, 0, nil
	}
	claims, err := w.cfg.Store.ClaimDeliveries(ctx, w.holder, w.cfg.Now(), w.cfg.Lease, asked, w.cfg.PerEndpoint, skip)
	if err != nil {
		return 0, asked, err
	}
	w.mu.Lock()
	for _, c := range claims {
		w.running++
		w.busy[c.Endpoint.ID]++
	}
	w.mu.Unlock()
	for _, c := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.deliver(ctx, c)
			w.mu.Lock()
			w.running--
			if w.busy[c.Endpoint.ID]--; w.busy[c.Endpoint.ID] == 0 {
				delete(w.busy, c.Endpoint.ID)
			}
			w.mu.Unlock()
			select {
			case w.ended <- struct{}{}:
			default:
			}
		}()
	}
	return len(claims), asked, nil
}

// keys returns the HMAC keys that sign for the endpoint at now: its
// secret's, and during a roll's overlap the previous one's.
func (w *Worker) keys(e *store.WebhookEndpoint, now time.Time) ([][]byte, error) {
	secret, err := w.cfg.Sealer.Open(e.ID, e.Sealed)
	if err != nil {
		return nil, err
	}
	key, err := SecretKey(secret)
	if err != nil {
		return nil, err
	}
	keys := [][]byte{key}
	if e.PrevSealed != "" && e.PrevExpiresAt != nil && now.Before(*e.PrevExpiresAt) {
		if prev, err := w.cfg.Sealer.Open(e.ID, e.PrevSealed); err == nil {
			if k, err := SecretKey(prev); err == nil {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// Send makes one signed POST of body as event id to url at now with keys,
// and returns the answer's status (0 when none came) and how long it took.
func (w *Worker) Send(ctx context.Context, rawURL string, keys [][]byte, id string, body []byte, now time.Time) (int, time.Duration, error) {
	start := time.Now()
	if _, err := CheckURL(rawURL, w.cfg.AllowInsecure); err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Signatures(keys, id, now, body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	drain(resp.Body)
	return resp.StatusCode, time.Since(start), nil
}

// deliver makes one attempt of claim c and records its outcome.
func (w *Worker) deliver(ctx context.Context, c *store.Claim) {
	now := w.cfg.Now()
	a := store.Attempt{DeliveryID: c.Delivery.ID, Holder: w.holder, Attempt: c.Delivery.Attempt + 1}
	keys, err := w.keys(&c.Endpoint, now)
	var status int
	var took time.Duration
	if err == nil {
		status, took, err = w.Send(ctx, c.Endpoint.URL, keys, c.Event.ID, c.Event.Body, now)
	}
	if ctx.Err() != nil {
		return // shutting down: the lease gives the delivery back
	}
	a.ResponseStatus, a.DurationMS, a.At = status, took.Milliseconds(), w.cfg.Now()
	switch {
	case err == nil && status >= 200 && status < 300:
		a.Status = gatehouse.DeliveryDelivered
	case err == nil && status == http.StatusGone:
		a.Status, a.Disable = gatehouse.DeliveryFailed, ReasonGone
	default:
		if wait, ok := NextAttempt(a.Attempt); ok {
			next := a.At.Add(wait)
			a.Status, a.Next = gatehouse.DeliveryPending, &next
		} else {
			a.Status, a.Disable = gatehouse.DeliveryFailed, ReasonFailing
		}
	}
	if err != nil {
		w.cfg.Logger.Info("a webhook delivery failed", "webhook", c.Endpoint.ID, "delivery", c.Delivery.ID, "attempt", a.Attempt, "err", err)
	}
	if a.Disable != "" {
		details := map[string]string{"reason": a.Disable, "url": c.Endpoint.URL, "delivery_id": c.Delivery.ID, "attempt": strconv.Itoa(a.Attempt)}
		if status != 0 {
			details["response_status"] = strconv.Itoa(status)
		}
		a.Audit = &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: c.Endpoint.AccountID, Actor: "webhooks", Action: "webhook.disabled",
			TargetType: "webhook", TargetID: c.Endpoint.ID, Details: details, CreatedAt: a.At.UTC().Truncate(time.Microsecond)}
	}
	held, err := w.cfg.Store.FinishAttempt(context.WithoutCancel(ctx), a)
	switch {
	case err != nil:
		w.cfg.Logger.Warn("could not record a webhook delivery's attempt; it is made again after its lease", "delivery", c.Delivery.ID, "err", err)
	case !held:
		w.cfg.Logger.Warn("a webhook delivery's lease ran out before its attempt was recorded", "delivery", c.Delivery.ID)
	}
}
