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
	// Audit: audit entries, usage counts, and webhook deliveries no
	// longer pending and events no longer delivered, from before it.
	Audit time.Time
	// Log: revocation log entries written before it (a node that has not
	// read the log since then drops its whole cache instead).
	Log time.Time
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
	// An authorization code is kept as long as a used refresh token, so
	// that a second use long after the first is still recognised (and
	// revokes what it issued).
	{"expired_codes", `DELETE FROM auth_codes WHERE id IN (SELECT id FROM auth_codes WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Used)} }},
	// A client that registered itself (SPEC §10.4) goes after 30 days
	// unused; its tokens stop working with it (their parent is gone).
	{"unused_registered_clients", `DELETE FROM registered_clients WHERE id IN (SELECT id FROM registered_clients
		WHERE COALESCE(last_used_at, created_at) <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now.Add(-RegisteredUnused))} }},
	{"expired_device_codes", `DELETE FROM device_codes WHERE id IN (SELECT id FROM device_codes WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Used)} }},
	{"expired_reveals", `DELETE FROM reveals WHERE id IN (SELECT id FROM reveals WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"expired_sign_ins", `DELETE FROM sign_ins WHERE id IN (SELECT id FROM sign_ins WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"expired_sso_logins", `DELETE FROM sso_logins WHERE id IN (SELECT id FROM sso_logins WHERE expires_at <= ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Now)} }},
	{"empty_revoked_families", `DELETE FROM revoked_families WHERE family_id IN (SELECT f.family_id FROM revoked_families f
		WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.family_id) LIMIT ?)`,
		func(Cutoffs) []any { return nil }},
	{"old_audit_entries", `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Audit)} }},
	{"old_revocation_log", `DELETE FROM revocation_log WHERE n IN (SELECT n FROM revocation_log WHERE created_at < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Log)} }},
	{"old_usage_counts", `DELETE FROM usage_counts WHERE (account_id, day, user_id, credential) IN
		(SELECT account_id, day, user_id, credential FROM usage_counts WHERE day < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{c.Audit.UTC().Format(time.DateOnly)} }},
	// A quota's count is of no use once its period is over; periods of
	// months before the cutoff's month are certainly over.
	{"old_quota_counts", `DELETE FROM quota_counts WHERE (account_id, budget, period) IN
		(SELECT account_id, budget, period FROM quota_counts WHERE period < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{c.Audit.UTC().Format("2006-01")} }},
	{"old_webhook_deliveries", `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE created_at < ? AND status <> 'pending' LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Audit)} }},
	{"old_webhook_notices", `DELETE FROM webhook_notices WHERE (credential_id, stage, expires_at) IN
		(SELECT credential_id, stage, expires_at FROM webhook_notices WHERE created_at < ? LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Audit)} }},
	{"old_webhook_events", `DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e WHERE e.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) LIMIT ?)`,
		func(c Cutoffs) []any { return []any{micros(c.Audit)} }},
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
