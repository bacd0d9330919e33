package service

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
	"github.com/gatehouse/gatehouse/webhook"
)

// Webhook limits.
const (
	// MaxWebhooks bounds an account's endpoints.
	MaxWebhooks = 50
	// MaxWebhookOverlap bounds how long a rolled webhook secret keeps
	// signing beside its successor.
	MaxWebhookOverlap = 7 * 24 * time.Hour
)

// WebhookInput is the input of CreateWebhook.
type WebhookInput struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

// RollInput is the input of RollWebhookSecret: how long, in seconds, the
// secret being replaced keeps signing beside the new one (0 to
// MaxWebhookOverlap).
type RollInput struct {
	OverlapSeconds int64 `json:"overlap_seconds"`
}

// checkWebhookURL checks an endpoint's URL: its form, and where it
// resolves now (each delivery checks again when it connects).
func (s *Service) checkWebhookURL(ctx context.Context, raw string) (string, error) {
	u, err := webhook.CheckURL(strings.TrimSpace(raw), s.webhookInsecure)
	if err != nil {
		return "", err
	}
	if err := webhook.CheckAddresses(ctx, u, s.webhookInsecure); err != nil {
		return "", err
	}
	return u.String(), nil
}

func webhookAudit(w *store.WebhookEndpoint) map[string]string {
	return map[string]string{"url": w.URL, "events": strings.Join(w.Events, " "), "enabled": strconv.FormatBool(w.Enabled)}
}

// CreateWebhook registers an endpoint for p's account and returns it with
// its secret, shown this once. Admins only (webhooks:write); at most
// MaxWebhooks per account.
func (s *Service) CreateWebhook(ctx context.Context, p *gatehouse.Principal, in WebhookInput) (*gatehouse.Webhook, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	if err := requireOwnAuthority(p, "create a webhook endpoint"); err != nil {
		return nil, err
	}
	events, err := webhook.CheckPatterns(in.Events)
	if err != nil {
		return nil, err
	}
	desc, err := checkName("description", in.Description, MaxDescriptionLen, false)
	if err != nil {
		return nil, err
	}
	url, err := s.checkWebhookURL(ctx, in.URL)
	if err != nil {
		return nil, err
	}
	now := s.now()
	secret := webhook.NewSecret()
	w := &store.WebhookEndpoint{Webhook: gatehouse.Webhook{ID: gatehouse.NewID("whk"), AccountID: p.AccountID, URL: url, Events: events,
		Description: desc, Enabled: true, CreatedAt: now, UpdatedAt: now}}
	w.Sealed = s.sealer.Seal(w.ID, secret)
	err = s.update(ctx, func(tx *store.Tx) error {
		if _, err := tx.Account(p.AccountID); err != nil { // lock: the count holds until commit
			return err
		}
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		n, err := tx.CountWebhooks(p.AccountID)
		if err != nil {
			return err
		}
		if n >= MaxWebhooks {
			return gatehouse.Errorf(gatehouse.EConflict, "An account has at most %d webhook endpoints", MaxWebhooks)
		}
		if err := tx.CreateWebhook(w); err != nil {
			return err
		}
		return s.record(tx, s.audit(ctx, p, "webhook.create", "webhook", w.ID, webhookAudit(w)))
	})
	if err != nil {
		return nil, err
	}
	out := w.Webhook
	out.Secret = secret
	return &out, nil
}

// Webhooks lists p's account's endpoints (webhooks:read), without secrets.
func (s *Service) Webhooks(ctx context.Context, p *gatehouse.Principal, pg gatehouse.Page) ([]*gatehouse.Webhook, string, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, "", err
	}
	ws, next, err := s.store.Webhooks(ctx, p.AccountID, pg)
	if err != nil {
		return nil, "", err
	}
	out := make([]*gatehouse.Webhook, len(ws))
	for i, w := range ws {
		out[i] = &w.Webhook
	}
	return out, next, nil
}

// Webhook returns one of p's account's endpoints, or not_found.
func (s *Service) Webhook(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.Webhook, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	w, err := s.store.Webhook(ctx, p.AccountID, id)
	if err != nil {
		return nil, err
	}
	return &w.Webhook, nil
}

// changeWebhook runs fn on the endpoint id of p's account, locked, and
// stores and audits the result as action.
func (s *Service) changeWebhook(ctx context.Context, p *gatehouse.Principal, id, action string, fn func(w *store.WebhookEndpoint) (map[string]string, error)) (*store.WebhookEndpoint, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	var out *store.WebhookEndpoint
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		w, err := tx.WebhookForUpdate(p.AccountID, id)
		if err != nil {
			return err
		}
		details, err := fn(w)
		if err != nil {
			return err
		}
		w.UpdatedAt = s.now()
		if action == "webhook.delete" {
			err = tx.DeleteWebhook(w.ID)
		} else {
			err = tx.UpdateWebhook(w)
		}
		if err != nil {
			return err
		}
		out = w
		return s.record(tx, s.audit(ctx, p, action, "webhook", w.ID, details))
	})
	return out, err
}

// UpdateWebhook changes an endpoint's URL, events, description or
// enabled flag; enabling it again clears why deliveries disabled it.
func (s *Service) UpdateWebhook(ctx context.Context, p *gatehouse.Principal, id string, patch gatehouse.WebhookPatch) (*gatehouse.Webhook, error) {
	if err := RequireAdmin(p); err != nil { // before any look-up of the URL
		return nil, err
	}
	if patch.URL != nil {
		if err := requireOwnAuthority(p, "change where a webhook endpoint's events go"); err != nil {
			return nil, err
		}
	}
	var url, desc string
	var events []string
	var err error
	if patch.Events != nil {
		if events, err = webhook.CheckPatterns(*patch.Events); err != nil {
			return nil, err
		}
	}
	if patch.Description != nil {
		if desc, err = checkName("description", *patch.Description, MaxDescriptionLen, false); err != nil {
			return nil, err
		}
	}
	if patch.URL != nil {
		if url, err = s.checkWebhookURL(ctx, *patch.URL); err != nil {
			return nil, err
		}
	}
	w, err := s.changeWebhook(ctx, p, id, "webhook.update", func(w *store.WebhookEndpoint) (map[string]string, error) {
		if patch.URL != nil {
			w.URL = url
		}
		if patch.Events != nil {
			w.Events = events
		}
		if patch.Description != nil {
			w.Description = desc
		}
		if patch.Enabled != nil {
			w.Enabled = *patch.Enabled
			w.DisabledReason = ""
		}
		return webhookAudit(w), nil
	})
	if err != nil {
		return nil, err
	}
	return &w.Webhook, nil
}

// DeleteWebhook deletes an endpoint and its deliveries.
func (s *Service) DeleteWebhook(ctx context.Context, p *gatehouse.Principal, id string) error {
	_, err := s.changeWebhook(ctx, p, id, "webhook.delete", func(w *store.WebhookEndpoint) (map[string]string, error) {
		return map[string]string{"url": w.URL}, nil
	})
	return err
}

// RollWebhookSecret gives an endpoint a new secret, returned this once;
// the one it replaces keeps signing beside it for in.OverlapSeconds.
func (s *Service) RollWebhookSecret(ctx context.Context, p *gatehouse.Principal, id string, in RollInput) (*gatehouse.Webhook, error) {
	if err := requireOwnAuthority(p, "roll a webhook endpoint's secret"); err != nil {
		return nil, err
	}
	if in.OverlapSeconds < 0 || in.OverlapSeconds > int64(MaxWebhookOverlap/time.Second) {
		return nil, gatehouse.InvalidField("overlap_seconds", "Use 0 to 604800 seconds.", "overlap_seconds must be from 0 to %d", int64(MaxWebhookOverlap/time.Second))
	}
	secret := webhook.NewSecret()
	w, err := s.changeWebhook(ctx, p, id, "webhook.roll", func(w *store.WebhookEndpoint) (map[string]string, error) {
		w.PrevSealed, w.PrevExpiresAt = "", nil
		if in.OverlapSeconds > 0 {
			until := s.now().Add(time.Duration(in.OverlapSeconds) * time.Second)
			w.PrevSealed, w.PrevExpiresAt = w.Sealed, &until
		}
		w.Sealed = s.sealer.Seal(w.ID, secret)
		return map[string]string{"overlap_seconds": strconv.FormatInt(in.OverlapSeconds, 10)}, nil
	})
	if err != nil {
		return nil, err
	}
	out := w.Webhook
	out.Secret = secret
	return &out, nil
}

// TestWebhook sends a webhook.test event to the endpoint (whatever its
// events) and returns its delivery; conflict while the endpoint is
// disabled.
func (s *Service) TestWebhook(ctx context.Context, p *gatehouse.Principal, id string) (*gatehouse.WebhookDelivery, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	var eventID string
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		w, err := tx.WebhookForUpdate(p.AccountID, id)
		if err != nil {
			return err
		}
		if !w.Enabled {
			return gatehouse.Errorf(gatehouse.EConflict, "The webhook is disabled; enable it first")
		}
		e := s.audit(ctx, p, "webhook.test", "webhook", w.ID, map[string]string{"url": w.URL})
		if err := tx.Audit(e); err != nil {
			return err
		}
		ev := s.event("webhook.test", e)
		eventID = ev.ID
		return tx.AddWebhookEvent(ev, []string{w.ID})
	})
	if err != nil {
		return nil, err
	}
	// The primary's copy: the delivery may have been made already.
	return s.store.EventDelivery(ctx, id, eventID)
}

// WebhookDeliveries lists an endpoint's deliveries, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, p *gatehouse.Principal, id string, pg gatehouse.Page) ([]*gatehouse.WebhookDelivery, string, error) {
	if _, err := s.Webhook(ctx, p, id); err != nil {
		return nil, "", err
	}
	return s.store.WebhookDeliveries(ctx, id, pg)
}

// Redeliver sends the event of one of an endpoint's deliveries again, as
// a new delivery (the same webhook-id), and returns it.
func (s *Service) Redeliver(ctx context.Context, p *gatehouse.Principal, id, deliveryID string) (*gatehouse.WebhookDelivery, error) {
	if err := RequireAdmin(p); err != nil {
		return nil, err
	}
	var out *gatehouse.WebhookDelivery
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := requireAdminNow(tx, p); err != nil {
			return err
		}
		w, err := tx.WebhookForUpdate(p.AccountID, id)
		if err != nil {
			return err
		}
		if out, err = tx.Redeliver(w.ID, deliveryID, s.now()); err != nil {
			return err
		}
		return tx.Audit(s.audit(ctx, p, "webhook.redeliver", "webhook", w.ID, map[string]string{"delivery_id": deliveryID, "event_id": out.EventID}))
	})
	if err != nil {
		return nil, err
	}
	s.wakeWebhooks()
	return out, nil
}

// wakeWebhooks tells the delivery worker that an event committed.
func (s *Service) wakeWebhooks() {
	if s.onWebhookEvent != nil {
		s.onWebhookEvent()
	}
}

// eventTypes returns the events (SPEC §10.2) an audited change reports:
// the one place where changes become events. Changes of the audit log
// that no event names return none.
func eventTypes(e *gatehouse.AuditEntry) []string {
	switch e.Action {
	case "user.create":
		return []string{"user.created"}
	case "user.update":
		out := []string{"user.updated"}
		if e.Details["status"] == string(gatehouse.StatusDisabled) {
			out = append(out, "user.disabled")
		}
		if e.Details["password"] != "" {
			out = append(out, "user.password_changed")
		}
		return out
	case "user.password_change":
		return []string{"user.password_changed"}
	case "developer.add":
		return []string{"developer.added"}
	case "developer.remove":
		return []string{"developer.removed"}
	case "api_access.enable":
		return []string{"api_access.enabled"}
	case "api_access.revoke":
		return []string{"api_access.revoked"}
	case AuditLineageRevoked:
		return []string{"refresh_token.reuse_detected"}
	case "credential.create", "api_token.create":
		return []string{"credential.created"}
	case "credential.update", "api_token.update", "api_access.update":
		return []string{"credential.updated"}
	case "credential.roll", "api_token.rolled", "api_access.reissue":
		return []string{"credential.rolled"}
	case "credential.delete", "api_token.revoke":
		return []string{"credential.deleted"}
	case "credential.leaked", "credential.expiring", "credential.expired", "signin.throttled", "quota.threshold":
		return []string{e.Action}
	case "credential.canary_used":
		return []string{"credential.canary_used"}
	case "extension.api_tokens":
		return []string{"extension.changed"}
	case "settings.update":
		return []string{"settings.changed"}
	case "app.authorize":
		return []string{"authorization.granted"}
	case "app.authorization_revoke":
		return []string{"authorization.revoked"}
	case "account.update":
		// The suspended account's own entry (its admins' copy).
		if e.Details["status"] == string(gatehouse.AccountSuspended) && e.TargetID == e.AccountID {
			return []string{"account.suspended"}
		}
	}
	return nil
}

// record writes audit entry e inside tx and, for each event the change
// reports, the event with a delivery to every enabled endpoint of the
// account subscribed to it: the event commits with the change or not at
// all.
func (s *Service) record(tx *store.Tx, e *gatehouse.AuditEntry) error {
	types := reported(e)
	if len(types) == 0 {
		return tx.Audit(e)
	}
	// The entry and who may hear of it, in one round trip.
	targets, err := tx.AuditTargets(e)
	if err != nil {
		return err
	}
	return s.emitTo(tx, e, types, targets)
}

// emit writes, inside tx, the events that e reports (see record), without
// writing e itself.
func (s *Service) emit(tx *store.Tx, e *gatehouse.AuditEntry) error {
	types := reported(e)
	if len(types) == 0 {
		return nil
	}
	targets, err := tx.WebhookTargets(e.AccountID)
	if err != nil {
		return err
	}
	return s.emitTo(tx, e, types, targets)
}

// reported returns the event types that e reports (none for a nil entry
// or one outside any account).
func reported(e *gatehouse.AuditEntry) []string {
	if e == nil || e.AccountID == "" {
		return nil
	}
	return eventTypes(e)
}

// emitTo writes, inside tx, an event of each of types that e reports,
// with a delivery to every one of the account's enabled endpoints
// (targets) subscribed to it.
func (s *Service) emitTo(tx *store.Tx, e *gatehouse.AuditEntry, types []string, targets []store.WebhookTarget) error {
	for _, typ := range types {
		var to []string
		for _, t := range targets {
			if webhook.Match(t.Events, typ) {
				to = append(to, t.ID)
			}
		}
		if len(to) == 0 {
			continue
		}
		if err := tx.AddWebhookEvent(s.event(typ, e), to); err != nil {
			return err
		}
	}
	return nil
}

// EventBody is the JSON body every delivery of an event sends.
type EventBody struct {
	Type      string            `json:"type"`
	Timestamp time.Time         `json:"timestamp"`
	AccountID string            `json:"account_id"`
	Data      map[string]string `json:"data"`
}

// event builds the event of type typ that audit entry e reports. Its data
// names the target (target_type, target_id and <type>_id), the actor and
// the credential it used (actor_credential, actor_credential_id), and the
// entry's details (which never hold a secret).
func (s *Service) event(typ string, e *gatehouse.AuditEntry) *store.WebhookEvent {
	data := make(map[string]string, len(e.Details)+8)
	for k, v := range e.Details {
		data[k] = v
	}
	data["audit_action"] = e.Action
	data["audit_id"] = e.ID
	data["target_type"], data["target_id"] = e.TargetType, e.TargetID
	if e.TargetType != "" {
		data[e.TargetType+"_id"] = e.TargetID
	}
	data["actor"], data["actor_id"] = e.Actor, e.ActorID
	if e.Credential != "" || e.CredentialID != "" {
		data["actor_credential"], data["actor_credential_id"] = e.Credential, e.CredentialID
	}
	if e.RemoteAddr != "" {
		data["remote_addr"] = e.RemoteAddr
	}
	now := e.CreatedAt
	if now.IsZero() {
		now = s.now()
	}
	body, _ := json.Marshal(EventBody{Type: typ, Timestamp: now, AccountID: e.AccountID, Data: data})
	return &store.WebhookEvent{ID: gatehouse.NewID("msg"), AccountID: e.AccountID, Type: typ, Body: body, CreatedAt: now}
}

// Expiry notices (SPEC §10.2): credential.expiring 7 days and 1 day
// before a credential's expires_at, credential.expired after it.
const (
	// ExpiryPoll is how often Run looks for credentials to give notice of,
	// unless Config.ExpiryPoll says otherwise.
	ExpiryPoll = time.Minute
	// expiredWindow is how long after an expiry credential.expired may
	// still be sent (a node that was down catches up within it).
	expiredWindow = 24 * time.Hour
	// maxExpiryBatch bounds one look's credentials.
	maxExpiryBatch = 500
)

// expiryStage returns the notice due for an expiry at now: "expired",
// "1d", "7d", or "" for none yet.
func expiryStage(expires, now time.Time) string {
	switch {
	case !now.Before(expires):
		return "expired"
	case !now.Before(expires.Add(-24 * time.Hour)):
		return "1d"
	case !now.Before(expires.Add(-7 * 24 * time.Hour)):
		return "7d"
	}
	return ""
}

// NoticeExpiries sends the expiry notices due at now, each once however
// many nodes run it (the notice's row commits with its event), and
// returns how many it sent. Only accounts with an enabled endpoint are
// looked at.
func (s *Service) NoticeExpiries(ctx context.Context) (int, error) {
	now := s.now()
	list, err := s.store.ExpiringCredentials(ctx, now.Add(-expiredWindow), now.Add(7*24*time.Hour), maxExpiryBatch)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, c := range list {
		stage := expiryStage(c.ExpiresAt, now)
		if stage == "" {
			continue
		}
		action := "credential.expiring"
		if stage == "expired" {
			action = "credential.expired"
		}
		hint := "prefix"
		if c.Kind == "credential" {
			hint = "client_id"
		}
		e := &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: c.AccountID, Actor: "gatehouse", Action: action, TargetType: c.Kind, TargetID: c.ID,
			Details: map[string]string{"name": c.Name, hint: c.Hint, "expires_at": c.ExpiresAt.Format(time.RFC3339), "stage": stage}, CreatedAt: now}
		fresh := false // as the run that commits found it
		err := s.update(ctx, func(tx *store.Tx) (err error) {
			if fresh, err = tx.AddNotice(c.ID, stage, c.ExpiresAt, now); err != nil || !fresh {
				return err
			}
			return s.emit(tx, e)
		})
		if err != nil {
			return sent, err
		}
		if fresh {
			sent++
		}
	}
	return sent, nil
}

// ThrottleNoticeEvery is how often, at most, signin.throttled is sent for
// one user: the first refusal of a run of them is told, not each.
const ThrottleNoticeEvery = 15 * time.Minute

// maxThrottleNoticed bounds the users this node remembers having told of.
const maxThrottleNoticed = 10_000

// throttleNotices remembers, per e-mail key, until when this node need
// not look at the store again for a signin.throttled notice.
type throttleNotices struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// notEmailKey begins the sign-in throttle's keys that are not e-mail
// keys: no e-mail key holds a NUL.
const notEmailKey = "\x00"

// noticeThrottled sends signin.throttled to the account of the user whose
// sign-in the throttle refused (none for an unknown address): at most
// once per ThrottleNoticeEvery per user across the cluster (the notice's
// row commits with its event), and with one store look-up per user per
// node in that time, so that a flood of refused attempts costs the store
// nothing more. Failures are logged, never returned: the refusal stands.
func (s *Service) noticeThrottled(ctx context.Context, key, from string) {
	if strings.HasPrefix(key, notEmailKey) || len(key) > MaxEmailLen {
		// A throttle key of its own (deviceKey) names no address, nor
		// does one longer than any address: neither is remembered, so the
		// notices' memory is bounded by the addresses' length.
		return
	}
	now := s.now()
	n := &s.throttleNoticed
	n.mu.Lock()
	if n.until == nil || len(n.until) >= maxThrottleNoticed {
		n.until = map[string]time.Time{}
	}
	if now.Before(n.until[key]) {
		n.mu.Unlock()
		return
	}
	bucket := now.Truncate(ThrottleNoticeEvery)
	n.until[key] = bucket.Add(ThrottleNoticeEvery)
	n.mu.Unlock()
	ctx = context.WithoutCancel(ctx)
	u, err := s.store.UserByEmail(ctx, key)
	if err != nil {
		return // unknown (not_found) or unreadable: nothing to tell
	}
	e := &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: u.AccountID, Actor: "gatehouse", Action: "signin.throttled",
		TargetType: "user", TargetID: u.ID, Details: map[string]string{"email": u.Email, "client_addr": from}, RemoteAddr: from, CreatedAt: now}
	err = s.update(ctx, func(tx *store.Tx) error {
		targets, err := tx.WebhookTargets(u.AccountID)
		if err != nil || !slices.ContainsFunc(targets, func(t store.WebhookTarget) bool { return webhook.Match(t.Events, e.Action) }) {
			return err // nobody listens: nothing to write
		}
		fresh, err := tx.AddNotice(u.ID, "throttled", bucket, now)
		if err != nil || !fresh {
			return err
		}
		return s.emit(tx, e)
	})
	if err != nil {
		s.logger.Warn("could not send signin.throttled", "err", err)
	}
}
