package store

import (
	"context"
	"database/sql"
	"time"
)

// Cutoffs say what has ended, for Prune: rows older than these times are
// of no further use (see docs/deploy.md, "What is kept and for how long").
type Cutoffs struct {
	// Now: tokens, sessions and reveals that expired at or before it.
	Now time.Time
	// Used: refresh tokens used at or before it (kept until then so that
	// reuse detection still recognises them).
	Used time.Time
	// Retries: what rotations kept for retries, made at or before it (the
	// refresh grace period is over).
	Retries time.Time
	// Audit: audit entries and usage counts from before it.
	Audit time.Time
}

// A pruning rule: what one batch deletes, given the cutoffs, and the
// batch's size as the last parameter.
type pruneRule struct {
	name  string
	query string
	args  func(c Cutoffs) []any
}

// pruneRules are every kind of row that ends. Each statement deletes at
// most a batch of rows, by key, so that a transaction stays short on both
// stores; a revoked family goes once no token of it is left (no rotation
// can add one then: a rotation needs a token of the family to use).
var pruneRules = []pruneRule{
	{"expired_tokens", `DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"used_refresh_tokens", `DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE used_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Used)} }},
	{"refresh_retries", `DELETE FROM refresh_retries WHERE token_id IN (SELECT token_id FROM refresh_retries WHERE created_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Retries)} }},
	{"ended_sessions", `DELETE FROM sessions WHERE id IN (SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.expires_at <= ? OR s.user_epoch <> u.epoch OR s.password_epoch <> u.password_epoch LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"expired_reveals", `DELETE FROM reveals WHERE id IN (SELECT id FROM reveals WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"empty_revoked_families", `DELETE FROM revoked_families WHERE family_id IN (SELECT f.family_id FROM revoked_families f
		WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.family_id) LIMIT ?)`,
		func(Cutoffs) []any { return nil }},
	{"old_audit_entries", `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Audit)} }},
	{"old_usage_counts", `DELETE FROM usage_counts WHERE (account_id, day, user_id, credential) IN
		(SELECT account_id, day, user_id, credential FROM usage_counts WHERE day < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{c.Audit.UTC().Format(time.DateOnly)} }},
}

// PruneKinds names the kinds of rows Prune deletes, in its order.
func PruneKinds() []string {
	out := make([]string, len(pruneRules))
	for i, r := range pruneRules {
		out[i] = r.name
	}
	return out
}

// Prune deletes one batch, at most batch rows, of every kind of row that
// has ended by c, each kind in a short transaction of its own, and returns
// how many rows of each kind it deleted (by PruneKinds' names). A kind
// with as many deletions as batch may have more left.
func (s *Store) Prune(ctx context.Context, c Cutoffs, batch int) (map[string]int, error) {
	out := map[string]int{}
	for _, r := range pruneRules {
		args := append(r.args(c), batch)
		bctx, cancel := s.watch(ctx) // each batch's steps have the store's deadline
		err := s.tx(bctx, func(tx *sql.Tx) error {
			res, err := s.exec(bctx, tx, r.query, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			out[r.name] = int(n)
			return err
		})
		cancel()
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// TakeLease takes or renews the lease name for holder until now+ttl, and
// reports whether holder has it: it does when nobody held it, when holder
// held it already, or when the last holder's lease ran out. One row per
// lease, so it works alike on SQLite and on PostgreSQL, where nodes of a
// cluster share it.
func (s *Store) TakeLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`), name, holder, micros(now.Add(ttl)), micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}
