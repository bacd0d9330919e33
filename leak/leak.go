// Package leak serves leak response (SPEC §10.1) over HTTP: the
// unauthenticated bulk revocation of found secrets. The rules — what a
// reported secret is and what revoking it does — are the service's
// (service.RevokeLeaked); this package decodes, rate-limits and answers.
package leak

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/throttle"
)

// Limits of the bulk endpoint.
const (
	// MaxBatch is the most secrets one request may report.
	MaxBatch = 1000
	// RequestsPerHour is how many requests one client address may make
	// in any hour.
	RequestsPerHour = 60
	// concurrentBatches bounds the batches worked on at once by a node;
	// a request beyond waits for a slot before it is answered.
	concurrentBatches = 4
)

// Rules are the throttle rules of the bulk endpoint: RequestsPerHour per
// client address (the throttle's three counters all keyed by it).
func Rules() throttle.Rules {
	r := throttle.Rule{Limit: RequestsPerHour, Window: time.Hour}
	return throttle.Rules{UserAddr: r, User: r, Addr: r}
}

// Bulk serves POST /v1/credentials/revoke. Build it with NewBulk.
type Bulk struct {
	service  *service.Service
	throttle throttle.Throttle
	logger   *slog.Logger
	slots    chan struct{}
	work     sync.WaitGroup
}

// NewBulk returns the handler. th counts requests per client address
// (built with Rules; a cluster passes one shared through Redis).
func NewBulk(svc *service.Service, th throttle.Throttle, logger *slog.Logger) *Bulk {
	if logger == nil {
		logger = slog.Default()
	}
	return &Bulk{service: svc, throttle: th, logger: logger, slots: make(chan struct{}, concurrentBatches)}
}

// bulkRequest is the body of a bulk report.
type bulkRequest struct {
	Credentials []string `json:"credentials"`
}

// ServeHTTP answers a well-formed report 202 {} whatever it held — live,
// revoked, unknown or garbage strings alike — and revokes what it holds
// after answering, so that neither the answer nor its timing tells what a
// string was. More than MaxBatch strings, none, or a malformed body is
// invalid_request; the RequestsPerHour+1st request of an address within
// an hour is too_many_attempts with Retry-After.
func (b *Bulk) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr := httpx.ClientAddr(r)
	if _, err := b.throttle.Reserve(r.Context(), "bulk-revoke\x00"+addr, addr); err != nil {
		if gatehouse.ErrorCode(err) != gatehouse.ETooManyAttempts {
			b.logger.Warn("bulk revocation: the throttle cannot be reached", "err", err)
			err = gatehouse.Errorf(gatehouse.EUnavailable, "The service is unavailable; try again shortly")
		}
		httpx.Error(w, r, err)
		return
	}
	var req bulkRequest
	if err := httpx.DecodeJSON(w, r, &req, false); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if len(req.Credentials) == 0 || len(req.Credentials) > MaxBatch {
		httpx.Error(w, r, gatehouse.InvalidField("credentials", "Send from 1 to 1000 strings.", "credentials must hold from 1 to %d strings", MaxBatch))
		return
	}
	select {
	case b.slots <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	b.work.Add(1)
	ctx := context.WithoutCancel(r.Context())
	go func() {
		defer func() { <-b.slots; b.work.Done() }()
		b.revoke(ctx, req.Credentials)
	}()
	httpx.WriteJSON(w, http.StatusAccepted, struct{}{})
}

// revoke revokes each reported secret; a failure is logged and the rest
// go on.
func (b *Bulk) revoke(ctx context.Context, secrets []string) {
	for _, raw := range secrets {
		if _, err := b.service.RevokeLeaked(ctx, raw, service.LeakReport{Via: service.LeakViaBulk}); err != nil {
			b.logger.Error("bulk revocation: a reported secret could not be revoked", "err", err)
		}
	}
}

// Wait returns once every accepted batch has been worked through (for a
// server that stops).
func (b *Bulk) Wait() { b.work.Wait() }
