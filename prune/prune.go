// Package prune deletes, continuously and in small batches, every row of
// the store that has ended: expired tokens, used refresh tokens past the
// retention, what rotations kept for retries once the refresh grace is
// over, ended sessions, expired reveals, revoked families with no token
// left, and audit entries and usage counts older than the retention. In a
// cluster one node prunes at a time, under a lease kept in the store.
//
// What is kept and for how long is documented in docs/deploy.md.
package prune

import (
	"context"
	"log/slog"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// Defaults of Config.
const (
	// DefaultRetention is how long audit entries, usage counts and used
	// refresh tokens are kept (--retention).
	DefaultRetention = 90 * 24 * time.Hour
	// DefaultInterval is how often a node tries to prune.
	DefaultInterval = time.Minute
	// DefaultBatch is how many rows of one kind a transaction deletes.
	DefaultBatch = 500
	// maxBatches bounds one round's batches of all kinds; the rest waits
	// for the next round.
	maxBatches = 200
	// leaseName is the lease pruning nodes share.
	leaseName = "prune"
)

// Config is what a Pruner needs. Store is required.
type Config struct {
	Store *store.Store
	// Retention is how long audit entries, usage counts and used refresh
	// tokens are kept; zero means DefaultRetention.
	Retention time.Duration
	// RefreshGrace is the service's refresh grace period: what a rotation
	// kept for retries goes once it is over.
	RefreshGrace time.Duration
	// Interval is how often to prune; zero means DefaultInterval. The
	// lease lasts three intervals, so another node takes over within that
	// long when the pruning node stops.
	Interval time.Duration
	// Batch is the rows of one kind a transaction deletes; zero means
	// DefaultBatch.
	Batch int
	// Pause is the rest between batches, so that pruning never holds the
	// store's writer for long; zero means none.
	Pause time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives what each round deleted (debug) and errors (warn);
	// nil means slog.Default().
	Logger *slog.Logger
}

// Pruner prunes a store. Build it with New; it is safe for concurrent use.
type Pruner struct {
	cfg    Config
	holder string
}

// New returns a Pruner for cfg. It has no side effects.
func New(cfg Config) *Pruner {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Pruner{cfg: cfg, holder: gatehouse.NewID("node")}
}

// LogRetention is how long the revocation log keeps an entry: far longer
// than any running node takes to read it.
const LogRetention = time.Hour

// Cutoffs returns what has ended at now under p's settings.
func (p *Pruner) Cutoffs(now time.Time) store.Cutoffs {
	return store.Cutoffs{Now: now, Used: now.Add(-p.cfg.Retention), Retries: now.Add(-p.cfg.RefreshGrace), Audit: now.Add(-p.cfg.Retention),
		Log: now.Add(-LogRetention)}
}

// Round prunes once, if this node holds (or takes) the lease: batch after
// batch until nothing that has ended is left or maxBatches were run. It
// returns how many rows of each kind it deleted, and whether it held the
// lease.
func (p *Pruner) Round(ctx context.Context) (deleted map[string]int, held bool, err error) {
	now := p.cfg.Now()
	held, err = p.cfg.Store.TakeLease(ctx, leaseName, p.holder, now, 3*p.cfg.Interval)
	if err != nil || !held {
		return nil, held, err
	}
	deleted = map[string]int{}
	cut := p.Cutoffs(now)
	for range maxBatches {
		n, err := p.cfg.Store.Prune(ctx, cut, p.cfg.Batch)
		more := false
		for k, v := range n {
			deleted[k] += v
			more = more || v >= p.cfg.Batch
		}
		if err != nil || !more {
			return deleted, true, err
		}
		if p.cfg.Pause > 0 {
			select {
			case <-ctx.Done():
				return deleted, true, ctx.Err()
			case <-time.After(p.cfg.Pause):
			}
		}
	}
	return deleted, true, nil
}

// Run prunes every Interval until ctx ends.
func (p *Pruner) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		deleted, held, err := p.Round(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			p.cfg.Logger.Warn("pruning failed; trying again later", "err", err)
		case held:
			args := []any{}
			for _, k := range store.PruneKinds() {
				if deleted[k] > 0 {
					args = append(args, k, deleted[k])
				}
			}
			if len(args) > 0 {
				p.cfg.Logger.Debug("pruned", args...)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
