package gatehouse

import "time"

// AuditEntry is one record of the audit log (SPEC §8): who changed what,
// when, and from where. Details never hold a secret.
type AuditEntry struct {
	ID         string `json:"id"`
	AccountID  string `json:"account_id"`
	ActorID    string `json:"actor_id"`
	Actor      string `json:"actor"`
	Action     string `json:"action"`
	TargetType string `json:"target_type"`
	TargetID   string `json:"target_id"`
	// CredentialID and Credential name what the change was made with: the
	// API token (id and name), the client id, or the session or token id.
	CredentialID string            `json:"credential_id,omitempty"`
	Credential   string            `json:"credential,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
	RemoteAddr   string            `json:"remote_addr"`
	CreatedAt    time.Time         `json:"created_at"`
}

// AuditFilter narrows the audit log; the zero value matches every entry.
type AuditFilter struct {
	// Actor matches the actor's id exactly or a part of their name
	// (e-mail) in any case.
	Actor string
	// Action matches actions that begin with it: "user." every change of
	// users, "user.update" that one.
	Action string
	// Target matches the target's id or its type ("credential").
	Target string
	// Since and Until bound the time of the entry: Since included, Until
	// excluded; zero for no bound.
	Since, Until time.Time
}
