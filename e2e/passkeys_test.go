package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/servertest"
)

// TestPasskeysOffWithoutAHostName: without a public URL the console has no
// host name a passkey can be bound to; the passkey routes say so with 503
// and the setting to use, and the rest of the second factors work.
func TestPasskeysOffWithoutAHostName(t *testing.T) {
	env := servertest.Start(t)
	tok := env.AdminToken()
	r := env.As(tok, "POST", "/v1/me/mfa/passkeys/options", nil)
	servertest.Expect(t, r, 503, "temporarily_unavailable")
	if !strings.Contains(string(r.Body), "--public-url") {
		t.Fatalf("the answer does not name the setting: %s", r.Body)
	}
	servertest.Expect(t, env.As(tok, "GET", "/v1/me/mfa/passkeys", nil), 200, "")
}

// TestPasskeyAPIInput: the passkey routes answer bad input with a clear
// 4xx, never a 5xx; a challenge is bound to its user, and one answer
// posted at once by many is refused by all but none with a 5xx.
func TestPasskeyAPIInput(t *testing.T) {
	env := startOnLocalhost(t)
	admin := env.AdminToken()
	env.CreateUser(admin, "kim@example.com", memberPW)
	kim := env.Login("kim@example.com", memberPW)

	var c struct {
		ChallengeID string `json:"challenge_id"`
		Options     struct {
			PublicKey struct {
				RP struct {
					ID string `json:"id"`
				} `json:"rp"`
				Challenge string `json:"challenge"`
			} `json:"publicKey"`
		} `json:"options"`
	}
	r := env.As(kim, "POST", "/v1/me/mfa/passkeys/options", nil)
	servertest.Expect(t, r, 200, "")
	r.JSON(t, &c)
	if c.Options.PublicKey.RP.ID != "localhost" || c.Options.PublicKey.Challenge == "" || c.ChallengeID == "" {
		t.Fatalf("options: %s", r.Body)
	}
	fake := map[string]any{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": map[string]string{"clientDataJSON": "e30", "attestationObject": "oA"}}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"garbage credential", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "credential": fake}, 400, "invalid_request"},
		{"credential not an object", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "credential": "x"}, 400, "invalid_request"},
		{"no credential", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID}, 400, "invalid_request"},
		{"unknown challenge", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": "pkc_nope", "credential": fake}, 400, "invalid_request"},
		{"NUL in challenge", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": "pkc\u0000", "credential": fake}, 400, "invalid_request"},
		{"long name", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "name": strings.Repeat("n", 65), "credential": fake}, 400, "invalid_request"},
		{"unknown field", "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "credential": fake, "x": 1}, 400, "invalid_request"},
		{"rename unknown", "PATCH", "/v1/me/mfa/passkeys/pk_nope", map[string]string{"name": "x"}, 404, "not_found"},
		{"remove unknown", "DELETE", "/v1/me/mfa/passkeys/pk_nope", nil, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			servertest.Expect(t, env.As(kim, tc.method, tc.path, tc.body), tc.status, tc.code)
		})
	}
	// Another user's challenge is not theirs to answer.
	servertest.Expect(t, env.As(admin, "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "credential": fake}), 400, "invalid_request")

	// Many answers to one challenge at once: all refused, none a 5xx.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			r := env.As(kim, "POST", "/v1/me/mfa/passkeys", map[string]any{"challenge_id": c.ChallengeID, "credential": fake})
			if r.Status != 400 {
				t.Errorf("status %d: %s", r.Status, r.Body)
			}
		})
	}
	wg.Wait()
	if m := env.As(kim, "GET", "/v1/me/mfa", nil).Map(t); m["passkeys"] != 0.0 {
		t.Fatalf("mfa: %v", m)
	}
}
