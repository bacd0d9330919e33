package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/logx"
	"github.com/gatehouse/gatehouse/server"
)

// TestRequestLogLosesNothingOnShutdown logs as the shipped command does
// (logx, text, info) but with a flush interval of an hour, so that only the
// flushes Gatehouse makes itself write anything out, and stops the server
// gracefully while 32 connections, opened in advance, send requests as
// fast as they are answered: every answered request has its line in the
// log exactly once, and no line names a request that was not answered.
func TestRequestLogLosesNothingOnShutdown(t *testing.T) {
	const conns = 32
	var logs servertest.SyncBuffer
	w := logx.NewWriter(&logs, time.Hour)
	e := servertest.Start(t, func(c *server.Config) { c.Logger, _ = logx.Open(w, false, nil) })
	tok := e.AdminToken()
	raiseLimits(t, e, tok)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	var warm sync.WaitGroup
	for range conns {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if resp, err := client.Get(e.URL + "/healthz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	warm.Wait()

	var (
		mu       sync.Mutex
		answered = map[string]bool{}
		sent     atomic.Int64
		wg       sync.WaitGroup
	)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("load-%d-%d", c, i)
				req, _ := http.NewRequest("GET", e.URL+"/v1/me", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("X-Request-Id", id)
				resp, err := client.Do(req)
				if err != nil {
					return // the server has stopped
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d %v", id, resp.StatusCode, err)
					return
				}
				mu.Lock()
				answered[id] = true
				mu.Unlock()
				sent.Add(1)
			}
		}()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	for sent.Load() < 3000 {
		select {
		case <-stopped:
			t.Fatal("the load stopped before the server did")
		case <-time.After(time.Millisecond):
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Server.Shutdown(ctx); err != nil { // graceful, under load
		t.Fatal(err)
	}
	<-stopped

	logged := map[string]int{}
	reqID := regexp.MustCompile(` client_request_id=(load-\S+)`) // the client's id, logged beside the one Gatehouse made
	for _, line := range strings.Split(logs.String(), "\n") {
		if m := reqID.FindStringSubmatch(line); m != nil && strings.Contains(line, " msg=request ") {
			logged[m[1]]++
		}
	}
	missing := 0
	for id := range answered {
		if logged[id] != 1 {
			missing++
		}
	}
	if missing > 0 || len(logged) != len(answered) {
		t.Fatalf("%d requests answered, %d logged, %d answered requests without exactly one line", len(answered), len(logged), missing)
	}
	t.Logf("%d requests answered under load, each logged once", len(answered))
}

// raiseLimits lifts the account's rate limits so a load is served, not
// refused.
func raiseLimits(t *testing.T, e *servertest.Env, tok string) {
	t.Helper()
	r := e.As(tok, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]any{"daily": 100000000, "burst": 1000000, "burst_window_seconds": 1}})
	servertest.Expect(t, r, http.StatusOK, "")
}
