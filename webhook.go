package gatehouse

import "time"

// The webhook scopes (SPEC §10.2): reading and managing an account's
// webhook endpoints and their deliveries.
const (
	ScopeWebhooksRead  Scope = "webhooks:read"
	ScopeWebhooksWrite Scope = "webhooks:write"
)

// Webhook is an endpoint an account's events are sent to (SPEC §10.2).
// Secret is set only in the answer that creates the endpoint or rolls its
// secret: it is stored sealed and shown once.
type Webhook struct {
	ID          string   `json:"id"`
	AccountID   string   `json:"-"`
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	// DisabledReason says why deliveries disabled the endpoint
	// ("gone": it answered 410; "failing": its last retry failed); empty
	// when enabled, or disabled by an admin.
	DisabledReason string    `json:"disabled_reason,omitempty"`
	Secret         string    `json:"secret,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// WebhookPatch is a change to a webhook endpoint; nil fields are kept.
type WebhookPatch struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

// The statuses of a webhook delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookDelivery is one event's delivery to one endpoint: its attempts
// so far, the last answer's status and duration, and when it is tried
// next while pending.
type WebhookDelivery struct {
	ID             string     `json:"id"`
	WebhookID      string     `json:"webhook_id"`
	EventID        string     `json:"event_id"`
	Type           string     `json:"type"`
	Attempt        int        `json:"attempt"`
	Status         string     `json:"status"`
	ResponseStatus int        `json:"response_status"`
	DurationMS     int64      `json:"duration_ms"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
}
