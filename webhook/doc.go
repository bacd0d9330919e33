// Package webhook sends Gatehouse's events to the endpoints accounts
// register (SPEC §10.2): Standard Webhooks 1.0 signatures (Sign,
// Signatures), endpoint secrets (NewSecret) sealed under the server key
// (Sealer), the outbound safety rules (CheckURL, Dialer: https and public
// addresses only unless insecure targets are allowed, no redirects,
// bounded reads), the retry schedule (Schedule, NextAttempt), event names
// and the patterns endpoints subscribe with (Types, Match), and the Worker
// that claims due deliveries from the store's outbox and makes them.
//
// The rules of who may manage endpoints, and the writing of events in the
// transaction of the change they report, are the service's
// (service/webhooks.go); this package knows nothing of accounts or roles.
package webhook
