package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// WebhookEndpoint is a webhook endpoint as the store keeps it: the
// endpoint, its secret sealed (webhook.Sealer), and the secret a roll
// replaced, sealed too, until PrevExpiresAt.
type WebhookEndpoint struct {
	gatehouse.Webhook
	Sealed        string
	PrevSealed    string
	PrevExpiresAt *time.Time
}

const webhookColumns = `id, account_id, url, events, description, enabled, disabled_reason, secret_sealed, prev_sealed, prev_expires_at, created_at, updated_at`

func scanWebhook(r scanner) (*WebhookEndpoint, error) {
	var w WebhookEndpoint
	var events string
	var enabled int
	var prev sql.NullInt64
	var created, updated int64
	if err := r.Scan(&w.ID, &w.AccountID, &w.URL, &events, &w.Description, &enabled, &w.DisabledReason, &w.Sealed, &w.PrevSealed, &prev, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, err
	}
	w.Enabled = enabled != 0
	w.PrevExpiresAt = fromNullMicros(prev)
	w.CreatedAt, w.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &w, nil
}

// CreateWebhook stores a new endpoint.
func (t *Tx) CreateWebhook(w *WebhookEndpoint) error {
	events, _ := json.Marshal(w.Events)
	_, err := t.exec(`INSERT INTO webhook_endpoints (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.AccountID, w.URL, string(events), w.Description, boolInt(w.Enabled), w.DisabledReason, w.Sealed, w.PrevSealed,
		nullMicros(w.PrevExpiresAt), micros(w.CreatedAt), micros(w.UpdatedAt))
	return err
}

// UpdateWebhook writes every field of an endpoint read with WebhookForUpdate.
func (t *Tx) UpdateWebhook(w *WebhookEndpoint) error {
	events, _ := json.Marshal(w.Events)
	_, err := t.exec(`UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, enabled = ?, disabled_reason = ?,
		secret_sealed = ?, prev_sealed = ?, prev_expires_at = ?, updated_at = ? WHERE id = ?`,
		w.URL, string(events), w.Description, boolInt(w.Enabled), w.DisabledReason, w.Sealed, w.PrevSealed,
		nullMicros(w.PrevExpiresAt), micros(w.UpdatedAt), w.ID)
	return err
}

// DeleteWebhook deletes an endpoint and its deliveries.
func (t *Tx) DeleteWebhook(id string) error {
	if _, err := t.exec(`DELETE FROM webhook_deliveries WHERE endpoint_id = ?`, id); err != nil {
		return err
	}
	_, err := t.exec(`DELETE FROM webhook_endpoints WHERE id = ?`, id)
	return err
}

// WebhookForUpdate returns an account's endpoint, locked until the
// transaction ends, or not_found.
func (t *Tx) WebhookForUpdate(accountID, id string) (*WebhookEndpoint, error) {
	w, err := scanWebhook(t.row(`SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = ? AND account_id = ?`+t.forUpdate(), id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("webhook")
	}
	return w, err
}

// CountWebhooks returns how many endpoints an account has.
func (t *Tx) CountWebhooks(accountID string) (int, error) {
	var n int
	err := t.row(`SELECT COUNT(*) FROM webhook_endpoints WHERE account_id = ?`, accountID).Scan(&n)
	return n, err
}

// Webhook returns an account's endpoint, or not_found.
func (s *Store) Webhook(ctx context.Context, accountID, id string) (*WebhookEndpoint, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	w, err := scanWebhook(s.readRow(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = ? AND account_id = ?`, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("webhook")
	}
	return w, err
}

// Webhooks lists an account's endpoints, one page in id order.
func (s *Store) Webhooks(ctx context.Context, accountID string, p gatehouse.Page) ([]*WebhookEndpoint, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n := p.Size()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+webhookColumns+` FROM webhook_endpoints WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?`),
		accountID, p.After, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanWebhook, func(w *WebhookEndpoint) string { return w.ID })
}

// WebhookTarget is an enabled endpoint's id and event patterns: what the
// outbox needs to decide who receives an event.
type WebhookTarget struct {
	ID     string
	Events []string
}

// WebhookTargets returns an account's enabled endpoints, inside the
// transaction that writes an event.
func (t *Tx) WebhookTargets(accountID string) ([]WebhookTarget, error) {
	rows, err := t.query(webhookTargetsSQL, accountID)
	if err != nil {
		return nil, err
	}
	return collectAll(rows, scanWebhookTarget)
}

// webhookTargetsSQL reads an account's enabled endpoints (WebhookTargets).
const webhookTargetsSQL = `SELECT id, events FROM webhook_endpoints WHERE account_id = ? AND enabled = 1 ORDER BY id`

func scanWebhookTarget(r scanner) (WebhookTarget, error) {
	var w WebhookTarget
	var events string
	if err := r.Scan(&w.ID, &events); err != nil {
		return w, err
	}
	return w, json.Unmarshal([]byte(events), &w.Events)
}

// WebhookEvent is one event of the outbox: its id (the webhook-id every
// attempt carries), type and the JSON body every delivery sends.
type WebhookEvent struct {
	ID        string
	AccountID string
	Type      string
	Body      []byte
	CreatedAt time.Time
}

// AddWebhookEvent writes an event and a pending delivery of it to each
// endpoint of endpointIDs, due at once, inside the transaction of the
// change it reports: it commits with the change or not at all.
func (t *Tx) AddWebhookEvent(e *WebhookEvent, endpointIDs []string) error {
	if len(endpointIDs) == 0 {
		return nil
	}
	if _, err := t.exec(`INSERT INTO webhook_events (id, account_id, type, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.ID, e.AccountID, e.Type, string(e.Body), micros(e.CreatedAt)); err != nil {
		return err
	}
	t.events = true
	for _, id := range endpointIDs {
		if err := t.addDelivery(gatehouse.NewID("whd"), id, e.ID, e.Type, e.CreatedAt); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tx) addDelivery(id, endpointID, eventID, typ string, now time.Time) error {
	_, err := t.exec(`INSERT INTO webhook_deliveries (id, endpoint_id, event_id, type, attempt, status, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`, id, endpointID, eventID, typ, gatehouse.DeliveryPending, micros(now), micros(now), micros(now))
	return err
}

const deliveryColumns = `id, endpoint_id, event_id, type, attempt, status, response_status, duration_ms, next_attempt_at, created_at`

func scanDelivery(r scanner) (*gatehouse.WebhookDelivery, error) {
	var d gatehouse.WebhookDelivery
	var next sql.NullInt64
	var created int64
	if err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.Type, &d.Attempt, &d.Status, &d.ResponseStatus, &d.DurationMS, &next, &created); err != nil {
		return nil, err
	}
	d.NextAttemptAt, d.CreatedAt = fromNullMicros(next), fromMicros(created)
	return &d, nil
}

// WebhookDeliveries lists an endpoint's deliveries, newest first.
func (s *Store) WebhookDeliveries(ctx context.Context, endpointID string, p gatehouse.Page) ([]*gatehouse.WebhookDelivery, string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	n, k := p.Size(), pageKeyset(gatehouse.Page{After: p.After, Limit: p.Limit}, true)
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE endpoint_id = ? AND `+k.cond+` `+k.order+` LIMIT ?`),
		endpointID, k.arg, n+1)
	if err != nil {
		return nil, "", err
	}
	return collect(rows, n, scanDelivery, func(d *gatehouse.WebhookDelivery) string { return d.ID })
}

// Redeliver adds a new pending delivery, due at now, of the event the
// endpoint's delivery deliveryID carried, and returns it; not_found when
// the endpoint has no such delivery.
func (t *Tx) Redeliver(endpointID, deliveryID string, now time.Time) (*gatehouse.WebhookDelivery, error) {
	old, err := scanDelivery(t.row(`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ? AND endpoint_id = ?`, deliveryID, endpointID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("delivery")
	}
	if err != nil {
		return nil, err
	}
	t.events = true
	d := &gatehouse.WebhookDelivery{ID: gatehouse.NewID("whd"), WebhookID: endpointID, EventID: old.EventID, Type: old.Type,
		Status: gatehouse.DeliveryPending, NextAttemptAt: &now, CreatedAt: now}
	return d, t.addDelivery(d.ID, endpointID, d.EventID, d.Type, now)
}

// Claim is a delivery a node has leased to make one attempt of: the
// delivery, its event, and its endpoint (URL and sealed secrets).
type Claim struct {
	Delivery gatehouse.WebhookDelivery
	Event    WebhookEvent
	Endpoint WebhookEndpoint
}

// ClaimDeliveries leases, to holder until now+lease, at most n pending
// deliveries that are due at now and not leased, of enabled endpoints
// other than those in skip, at most perEndpoint of any one endpoint (0:
// no limit), the earliest due first, and returns them. On PostgreSQL the
// rows are chosen with FOR UPDATE SKIP LOCKED, so that nodes claiming at
// once never take the same delivery; on SQLite write transactions are
// serialised already.
func (s *Store) ClaimDeliveries(ctx context.Context, holder string, now time.Time, lease time.Duration, n, perEndpoint int, skip []string) ([]*Claim, error) {
	ctx, cancel := s.watch(ctx)
	defer cancel()
	due := `d.status = ? AND d.next_attempt_at <= ? AND d.lease_until <= ?`
	args := []any{gatehouse.DeliveryPending, micros(now), micros(now)}
	if len(skip) > 0 {
		due += ` AND d.endpoint_id NOT IN (?` + strings.Repeat(`, ?`, len(skip)-1) + `)`
		for _, id := range skip {
			args = append(args, id)
		}
	}
	q, qargs := `SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE `+due+` AND w.enabled = 1`, args
	if perEndpoint > 0 {
		// The earliest perEndpoint of each endpoint's due deliveries, read
		// without locks; the outer query locks and checks them again.
		q += ` AND d.id IN (SELECT id FROM (SELECT d.id, ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS r
			FROM webhook_deliveries d WHERE ` + due + `) f WHERE r <= ?)`
		qargs = append(append(qargs, args...), perEndpoint)
	}
	var out []*Claim
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(q+` ORDER BY d.next_attempt_at LIMIT ?`+s.d.claimRows), append(qargs, n)...)
		if err != nil {
			return err
		}
		ids, err := collectAll(rows, func(r scanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := s.exec(ctx, tx, `UPDATE webhook_deliveries SET lease_until = ?, lease_holder = ? WHERE id = ?`,
				micros(now.Add(lease)), holder, id); err != nil {
				return err
			}
			c := &Claim{}
			var next sql.NullInt64
			var created, evCreated int64
			var events, body string
			var enabled int
			var prev sql.NullInt64
			var wCreated, wUpdated int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT d.id, d.endpoint_id, d.event_id, d.type, d.attempt, d.status, d.response_status, d.duration_ms, d.next_attempt_at, d.created_at,
				e.account_id, e.body, e.created_at,
				w.url, w.events, w.description, w.enabled, w.disabled_reason, w.secret_sealed, w.prev_sealed, w.prev_expires_at, w.created_at, w.updated_at
				FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = ?`), id).Scan(
				&c.Delivery.ID, &c.Delivery.WebhookID, &c.Delivery.EventID, &c.Delivery.Type, &c.Delivery.Attempt, &c.Delivery.Status,
				&c.Delivery.ResponseStatus, &c.Delivery.DurationMS, &next, &created,
				&c.Event.AccountID, &body, &evCreated,
				&c.Endpoint.URL, &events, &c.Endpoint.Description, &enabled, &c.Endpoint.DisabledReason, &c.Endpoint.Sealed, &c.Endpoint.PrevSealed, &prev, &wCreated, &wUpdated)
			if errors.Is(err, sql.ErrNoRows) {
				continue // its event was pruned: nothing to send
			}
			if err != nil {
				return err
			}
			c.Delivery.NextAttemptAt, c.Delivery.CreatedAt = fromNullMicros(next), fromMicros(created)
			c.Event.ID, c.Event.Type, c.Event.Body, c.Event.CreatedAt = c.Delivery.EventID, c.Delivery.Type, []byte(body), fromMicros(evCreated)
			c.Endpoint.ID, c.Endpoint.AccountID, c.Endpoint.Enabled = c.Delivery.WebhookID, c.Event.AccountID, enabled != 0
			c.Endpoint.PrevExpiresAt, c.Endpoint.CreatedAt, c.Endpoint.UpdatedAt = fromNullMicros(prev), fromMicros(wCreated), fromMicros(wUpdated)
			_ = json.Unmarshal([]byte(events), &c.Endpoint.Events)
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// Attempt is the outcome of one delivery attempt, for FinishAttempt.
type Attempt struct {
	DeliveryID string
	Holder     string
	// Attempt is the attempt's number (1 for the first).
	Attempt        int
	Status         string // delivered, pending (to retry at Next) or failed
	ResponseStatus int
	DurationMS     int64
	Next           *time.Time
	At             time.Time
	// Disable, when set, disables the delivery's endpoint with this
	// reason and writes Audit (the endpoint disabled by its deliveries).
	Disable string
	Audit   *gatehouse.AuditEntry
}

// FinishAttempt records an attempt's outcome, if holder still holds the
// delivery's lease (a node whose lease ran out while it delivered
// reports false: another node has the delivery now), and disables the
// endpoint when the outcome says so.
func (s *Store) FinishAttempt(ctx context.Context, a Attempt) (bool, error) {
	held := false
	err := s.Update(ctx, func(tx *Tx) error {
		held = false // as the run that commits finds it
		if a.Disable != "" {
			// The endpoint before its delivery, the order a change or a
			// deletion of the endpoint takes them in, so that the two
			// cannot deadlock.
			var id string
			err := tx.row(`SELECT id FROM webhook_endpoints WHERE id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = ?)`+tx.forUpdate(),
				a.DeliveryID).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		res, err := tx.exec(`UPDATE webhook_deliveries SET attempt = ?, status = ?, response_status = ?, duration_ms = ?, next_attempt_at = ?,
			lease_until = 0, lease_holder = '', updated_at = ? WHERE id = ? AND lease_holder = ?`,
			a.Attempt, a.Status, a.ResponseStatus, a.DurationMS, nullMicros(a.Next), micros(a.At), a.DeliveryID, a.Holder)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		held = true
		if a.Disable == "" {
			return nil
		}
		res, err = tx.exec(`UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ?
			WHERE enabled = 1 AND id = (SELECT endpoint_id FROM webhook_deliveries WHERE id = ?)`, a.Disable, micros(a.At), a.DeliveryID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return tx.Audit(a.Audit)
	})
	return held, err
}

// EventDelivery returns the endpoint's first delivery of the event, or
// not_found.
func (s *Store) EventDelivery(ctx context.Context, endpointID, eventID string) (*gatehouse.WebhookDelivery, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	d, err := scanDelivery(s.readRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE endpoint_id = ? AND event_id = ? ORDER BY id LIMIT 1`, endpointID, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("delivery")
	}
	return d, err
}

// Expiring is a credential whose expiry is near or past, for the expiry
// notices: an API token (Kind "api_token") or a client credential
// ("credential").
type Expiring struct {
	Kind, ID, AccountID, Name, Hint string
	ExpiresAt                       time.Time
}

// ExpiringCredentials returns at most n live credentials (not revoked, not
// canaries) of accounts with an enabled webhook endpoint whose expiry is
// after from and at or before to.
func (s *Store) ExpiringCredentials(ctx context.Context, from, to time.Time, n int) ([]Expiring, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.rdb.QueryContext(ctx, s.q(`SELECT 'api_token', id, account_id, name, prefix, expires_at FROM api_tokens
		WHERE expires_at > ? AND expires_at <= ? AND revoked_at IS NULL AND canary = 0
		AND account_id IN (SELECT account_id FROM webhook_endpoints WHERE enabled = 1)
		UNION ALL
		SELECT 'credential', id, account_id, name, client_id, expires_at FROM client_credentials
		WHERE expires_at > ? AND expires_at <= ? AND revoked_at IS NULL
		AND account_id IN (SELECT account_id FROM webhook_endpoints WHERE enabled = 1)
		LIMIT ?`), micros(from), micros(to), micros(from), micros(to), n)
	if err != nil {
		return nil, err
	}
	return collectAll(rows, func(r scanner) (Expiring, error) {
		var e Expiring
		var at int64
		err := r.Scan(&e.Kind, &e.ID, &e.AccountID, &e.Name, &e.Hint, &at)
		e.ExpiresAt = fromMicros(at)
		return e, err
	})
}

// AddNotice records that the notice of stage was sent for the
// credential's (or user's) expiry or period at, and reports whether it is
// new: false when some node sent it already.
func (t *Tx) AddNotice(credentialID, stage string, expiresAt, now time.Time) (bool, error) {
	res, err := t.exec(`INSERT INTO webhook_notices (credential_id, stage, expires_at, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, credentialID, stage, micros(expiresAt), micros(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ReleaseDeliveries gives back every delivery holder has leased, due at
// once: a node that stops hands its attempts under way to the next node
// (or to itself restarted) without waiting for the leases to run out.
func (s *Store) ReleaseDeliveries(ctx context.Context, holder string) error {
	return s.Update(ctx, func(tx *Tx) error {
		_, err := tx.exec(`UPDATE webhook_deliveries SET lease_until = 0, lease_holder = '' WHERE lease_holder = ? AND status = ?`,
			holder, gatehouse.DeliveryPending)
		return err
	})
}
