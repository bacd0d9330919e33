package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestWebhookExpiryNotices: two nodes on one store, each looking for
// expiry notices every 100 ms, and an endpoint subscribed to
// credential.expiring and credential.expired. An API token expiring in 3
// days gets the 7-day notice, a client credential expiring in 12 hours
// the 1-day notice, and an API token expiring in 2 seconds the 1-day
// notice and then, once expired, credential.expired — each exactly once
// however many polls of the two nodes saw it, with the credential's name,
// prefix or client id and expiry, and no secret.
func TestWebhookExpiryNotices(t *testing.T) {
	fast := func(c *server.Config) { c.ExpiryPoll = 100 * time.Millisecond }
	a := servertest.Start(t, insecureWebhooks, fast)
	b := servertest.Start(t, insecureWebhooks, fast, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
	admin, _, devTok, _ := developer(t, a)
	rc := newReceiver(t, nil)
	servertest.Expect(t, a.As(admin, "POST", "/v1/webhooks", map[string]any{"url": rc.URL, "events": []string{"credential.expiring", "credential.expired"}}), 201, "")
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
	// Expiries to the nanosecond: "brief" must live long enough for a
	// poll to see it a day from its end before it ends, however slow the
	// set-up on a loaded machine.
	at := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(time.RFC3339Nano) }
	weekID, weekSecret := newKey(t, b, admin, "", map[string]any{"name": "week", "expires_at": at(72 * time.Hour)})
	briefID, briefSecret := newKey(t, a, admin, "", map[string]any{"name": "brief", "expires_at": at(6 * time.Second)})
	r := b.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "day", "expires_at": at(12 * time.Hour)})
	servertest.Expect(t, r, 201, "")
	day := r.Map(t)
	dayID, daySecret := day["id"].(string), fmt.Sprint(day["client_secret"])

	want := map[string]bool{
		"credential.expiring/" + weekID + "/7d":      true,
		"credential.expiring/" + dayID + "/1d":       true,
		"credential.expiring/" + briefID + "/1d":     true,
		"credential.expired/" + briefID + "/expired": true,
	}
	key := func(d received) string {
		id := d.Event.Data["api_token_id"] + d.Event.Data["credential_id"]
		return d.Event.Type + "/" + id + "/" + d.Event.Data["stage"]
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		seen := 0
		for _, d := range rc.all() {
			if want[key(d)] {
				seen++
			}
		}
		if seen >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d of the %d notices arrived", seen, len(want))
		}
	}
	time.Sleep(time.Second) // ten more polls of each node: none may send again
	got := map[string]int{}
	for _, d := range rc.all() {
		got[key(d)]++
		noSecrets(t, d, weekSecret, briefSecret, daySecret)
		e := d.Event.Data
		switch id := e["api_token_id"] + e["credential_id"]; id {
		case weekID:
			if e["name"] != "week" || e["prefix"] == "" || e["expires_at"] == "" {
				t.Errorf("week's notice: %s", d.Body)
			}
		case dayID:
			if e["name"] != "day" || e["client_id"] != day["client_id"] {
				t.Errorf("day's notice: %s", d.Body)
			}
		case briefID:
			if e["name"] != "brief" {
				t.Errorf("brief's notice: %s", d.Body)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("notices %v, want each of %v", got, want)
	}
	for k, n := range got {
		if !want[k] || n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
}
