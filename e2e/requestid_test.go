package e2e

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestRequestIDsOnlyFromTrustedProxies sends a chosen X-Request-Id
// (issue 28, SPEC §10.8 "Request ids"): from a client that is no trusted
// proxy it is replaced by Gatehouse's own — in the answer, in the log
// line and upstream — and logged as client_request_id; from a trusted
// proxy it is kept and passed upstream.
func TestRequestIDsOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted string
		kept    bool
	}{
		{"not behind a trusted proxy", "", false},
		{"behind a trusted proxy", "127.0.0.1/32", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs servertest.SyncBuffer
			up := newUpstream(t)
			env := servertest.Start(t, func(c *server.Config) {
				c.Upstream = up.URL
				c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
				if tc.trusted != "" {
					tp, err := httpx.ParseTrustedProxies(tc.trusted)
					if err != nil {
						t.Fatal(err)
					}
					c.TrustedProxies = tp
				}
			})
			admin := env.AdminToken()
			for _, path := range []string{"/v1/me", "/upstream/thing"} {
				r := env.As(admin, "GET", path, nil, "X-Request-Id", "victim-req-123", "X-Forwarded-For", "203.0.113.9")
				servertest.Expect(t, r, http.StatusOK, "")
				id := r.Header.Get("X-Request-Id")
				if kept := id == "victim-req-123"; kept != tc.kept || id == "" {
					t.Fatalf("%s: request id %q, want kept %v", path, id, tc.kept)
				}
				line := awaitRequestLine(t, &logs, id)
				if logged, _ := line["client_request_id"].(string); (logged == "victim-req-123") == tc.kept {
					t.Fatalf("%s: client_request_id %q in %v", path, logged, line)
				}
				if path == "/upstream/thing" {
					if got := up.last().Values("X-Request-Id"); len(got) != 1 || got[0] != id {
						t.Fatalf("upstream got request id %q, answer %q", got, id)
					}
				}
			}
		})
	}
}

// awaitRequestLine returns the request line with the id: it is written
// just after the answer is sent, so it is waited for (a few seconds at
// most) rather than expected at once.
func awaitRequestLine(t *testing.T, logs *servertest.SyncBuffer, id string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range logLines(t, logs, "request") {
			if m["request_id"] == id {
				return m
			}
		}
	}
	return requestLine(t, logs, id)
}
