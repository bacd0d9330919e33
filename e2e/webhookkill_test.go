package e2e

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestWebhookNodeKilledMidDelivery: two nodes on one PostgreSQL, only the
// first delivering (the second runs with --no-webhook-delivery). The
// receiver holds the first attempt of an event open; while it does, the
// delivering node is killed (SIGKILL) mid-delivery. A node started in its
// place delivers the event once the dead node's lease has run out: the
// receiver sees the same webhook-id a second time, answers 200, and the
// delivery is delivered — nothing is lost, and it is attempted by no one
// else while the lease holds.
func TestWebhookNodeKilledMidDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real servers")
	}
	if os.Getenv(servertest.EnvDatabase) != "postgres" {
		t.Skip("two nodes need PostgreSQL: run with " + servertest.EnvDatabase + "=postgres")
	}
	var (
		arrived = make(chan struct{}, 4)
		held    = make(chan struct{})
	)
	defer close(held)
	rc := newReceiver(t, func(_ string, n int) int {
		arrived <- struct{}{}
		if n == 1 {
			<-held // until the test ends: the node dies first
		}
		return http.StatusOK
	})
	db := servertest.DatabaseURL(t)
	a := launch(t, "--database-url", db, "--log-level", "error", "--webhook-allow-insecure")
	a.waitReady(t)
	b := launch(t, "--database-url", db, "--log-level", "error", "--webhook-allow-insecure", "--no-webhook-delivery")
	b.waitReady(t)
	_, login, _ := b.call("POST", "/authorization", "", map[string]string{"username": "admin@example.com", "password": processAdminPassword})
	admin := login["access_token"].(string)
	st, out, _ := b.call("POST", "/v1/webhooks", admin, map[string]any{"url": rc.URL, "events": []string{"settings.changed"}})
	if st != 201 {
		t.Fatalf("create: %d %v", st, out)
	}
	whID := out["id"].(string)
	if st, out, _ := b.call("PUT", "/v1/settings", admin, map[string]any{"leak_policy": "notify"}); st != 200 {
		t.Fatalf("settings: %d %v", st, out)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the delivering node made no attempt")
	}
	a.kill()
	killed := time.Now()

	c := launch(t, "--database-url", db, "--log-level", "error", "--webhook-allow-insecure")
	c.waitReady(t)
	select {
	case <-arrived:
	case <-time.After(3 * time.Minute):
		t.Fatal("no node delivered the event after its node was killed mid-delivery")
	}
	after := time.Since(killed)
	t.Logf("delivered again %s after the kill", after.Round(time.Second))
	// The dead node's lease (6 × the 10-s attempt timeout, taken at most
	// a few seconds before the kill) kept the delivery from the new node.
	if after < 30*time.Second {
		t.Fatalf("attempted again %s after the kill, while the dead node's lease held", after)
	}
	got := rc.all()
	if len(got) != 2 || got[0].ID == "" || got[1].ID != got[0].ID || got[1].Event.Type != "settings.changed" {
		t.Fatalf("the receiver saw %d requests: %+v", len(got), got)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, list, _ := c.call("GET", "/v1/webhooks/"+whID+"/deliveries", admin, nil)
		data, _ := list["data"].([]any)
		if len(data) == 1 && data[0].(map[string]any)["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries after the second attempt: %v", list)
		}
	}
	time.Sleep(2 * time.Second)
	if n := len(rc.all()); n != 2 {
		t.Fatalf("%d requests in all, want 2", n)
	}
}
