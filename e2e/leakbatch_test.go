package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/server"
)

// TestLeakGitHubLargeBatch: GitHub sends hundreds of tokens in one alert.
// A signed batch of 500 live secrets (490 API tokens and 10 client
// secrets, as GitHub lists them, each once) posted to one node is answered
// 200 with one true_positive label per token, in the batch's order, and
// every one of them is refused on the other node afterwards.
func TestLeakGitHubLargeBatch(t *testing.T) {
	signer := newGitHubSigner(t)
	rs := startRedis(t, "")
	cfg := func(c *server.Config) {
		c.RedisURL, c.RedisPrefix, c.GitHubScanningKeys = "redis://127.0.0.1:"+rs.port+"/0", "ghbatch:", signer.file
	}
	a := servertest.Start(t, cfg)
	b := servertest.Start(t, cfg, func(c *server.Config) { c.DatabaseURL = a.DatabaseURL })
	admin, _, devTok, cred := developer(t, a)
	// Making 500 secrets is not what this test limits.
	servertest.Expect(t, a.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 100000, "daily": 1000000}}), 200, "")
	servertest.Expect(t, a.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")

	const apiTokens, secrets = 490, 10
	batch := make([]map[string]string, apiTokens+secrets)
	creds := make([]credential, len(batch)) // the client credentials, by place in the batch
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if i < apiTokens {
					var tok apiToken
					r := a.As(admin, "POST", "/v1/api-tokens", map[string]string{"name": fmt.Sprintf("t%d", i)})
					if r.Status != 201 {
						t.Errorf("API token %d: %d %s", i, r.Status, r.Body)
						continue
					}
					r.JSON(t, &tok)
					batch[i] = map[string]string{"token": tok.Token, "type": "gatehouse_api_token", "url": fmt.Sprintf("https://github.com/o/r/blob/c/%d.env", i), "source": "content"}
					continue
				}
				c := cred
				if i > apiTokens {
					r := a.As(devTok, "POST", "/v1/credentials", map[string]string{"name": fmt.Sprintf("c%d", i)})
					if r.Status != 201 {
						t.Errorf("credential %d: %d %s", i, r.Status, r.Body)
						continue
					}
					r.JSON(t, &c)
				}
				creds[i] = c
				batch[i] = map[string]string{"token": c.ClientSecret, "type": "gatehouse_client_secret", "url": "https://github.com/o/r/commit/c", "source": "commit"}
			}
		}()
	}
	for i := range batch {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// works runs each secret on env, 8 at a time, and returns how many
	// still work.
	works := func(env *servertest.Env) int {
		var (
			mu sync.Mutex
			n  int
			wg sync.WaitGroup
		)
		work := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					var r *servertest.Response
					if i < apiTokens {
						r = env.Request("GET", "/v1/me", nil, "X-API-Token", batch[i]["token"])
					} else {
						r = clientToken(env, creds[i])
					}
					switch r.Status {
					case 200:
						mu.Lock()
						n++
						mu.Unlock()
					case 401:
					default:
						t.Errorf("secret %d: %d %s", i, r.Status, r.Body)
					}
				}
			}()
		}
		for i := range batch {
			work <- i
		}
		close(work)
		wg.Wait()
		return n
	}
	if n := works(a); n != len(batch) {
		t.Fatalf("%d of %d secrets work before the alert", n, len(batch))
	}

	body, _ := json.Marshal(batch)
	r := postGitHub(b, body, signer.id, signer.sign(t, body))
	servertest.Expect(t, r, 200, "")
	var labels []map[string]string
	r.JSON(t, &labels)
	if len(labels) != len(batch) {
		t.Fatalf("%d labels for %d tokens", len(labels), len(batch))
	}
	for i, l := range labels {
		sum := sha256.Sum256([]byte(batch[i]["token"]))
		if l["token_hash"] != hex.EncodeToString(sum[:]) || l["token_type"] != batch[i]["type"] || l["label"] != "true_positive" {
			t.Fatalf("label %d: %v for %s", i, l, batch[i]["type"])
		}
	}
	if n := works(a); n != 0 {
		t.Fatalf("%d of %d reported secrets still work on the other node", n, len(batch))
	}
}
