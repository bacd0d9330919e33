package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

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

// softKey is a passkey in memory, answering the console's ceremonies as
// a platform authenticator would: a discoverable P-256 credential that
// verifies its user and attests "none". Its signature counter stays 0,
// as synced passkeys' does, so that sign-ins with it released together
// are not told apart by their counters.
type softKey struct {
	t      *testing.T
	origin string // the console's origin, which the browser names
	id     []byte
	key    *ecdsa.PrivateKey
	handle string // the user handle (base64url), learnt at registration
}

// newSoftKey returns a new passkey for the console of env.
func newSoftKey(t *testing.T, env *servertest.Env) *softKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &softKey{t: t, origin: env.URL, id: []byte(rand.Text()), key: key}
}

// passkeyCeremony is a ceremony begun: the challenge's id and what the
// answer to its options needs.
type passkeyCeremony struct {
	ChallengeID string `json:"challenge_id"`
	Options     struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RPID      string `json:"rpId"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	} `json:"options"`
}

var b64 = base64.RawURLEncoding

// clientData is the clientDataJSON of a ceremony of typ for c.
func (k *softKey) clientData(typ string, c passkeyCeremony) []byte {
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": c.Options.PublicKey.Challenge, "origin": k.origin, "crossOrigin": false})
	if err != nil {
		k.t.Fatal(err)
	}
	return b
}

// authData is the authenticator data for the relying party rpID: user
// present and verified, counter 0, and the attested credential when
// attested is given.
func authData(rpID string, attested []byte) []byte {
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01 | 0x04) // UP, UV
	if attested != nil {
		flags |= 0x40 // AT
	}
	out := append(h[:], flags, 0, 0, 0, 0)
	return append(out, attested...)
}

// created answers registration ceremony c: the PublicKeyCredential as
// JSON (toJSON()).
func (k *softKey) created(c passkeyCeremony) map[string]any {
	k.handle = c.Options.PublicKey.User.ID
	cose, err := webauthncbor.Marshal(&webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: k.key.X.FillBytes(make([]byte, 32)), YCoord: k.key.Y.FillBytes(make([]byte, 32)),
	})
	if err != nil {
		k.t.Fatal(err)
	}
	attested := append(make([]byte, 16), byte(len(k.id)>>8), byte(len(k.id))) // AAGUID 0, the id's length
	attested = append(append(attested, k.id...), cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData(c.Options.PublicKey.RP.ID, attested)})
	if err != nil {
		k.t.Fatal(err)
	}
	return map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(k.clientData("webauthn.create", c)),
			"attestationObject": b64.EncodeToString(att), "transports": []string{"internal"}}}
}

// signed answers sign-in ceremony c: the assertion as JSON.
func (k *softKey) signed(c passkeyCeremony) string {
	ad := authData(c.Options.PublicKey.RPID, nil)
	cd := k.clientData("webauthn.get", c)
	h := sha256.Sum256(cd)
	signed := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, signed[:])
	if err != nil {
		k.t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"id": b64.EncodeToString(k.id), "rawId": b64.EncodeToString(k.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": k.handle}})
	if err != nil {
		k.t.Fatal(err)
	}
	return string(b)
}

// passkeyAddShot begins registering k for the user of tok (a console
// session's or password-grant token) and returns the answer, named name,
// as a volley shot, without sending it.
func passkeyAddShot(t *testing.T, env *servertest.Env, tok string, k *softKey, name string) volleyReq {
	t.Helper()
	r := env.As(tok, "POST", "/v1/me/mfa/passkeys/options", nil)
	servertest.Expect(t, r, 200, "")
	var c passkeyCeremony
	r.JSON(t, &c)
	body, err := json.Marshal(map[string]any{"challenge_id": c.ChallengeID, "name": name, "credential": k.created(c)})
	if err != nil {
		t.Fatal(err)
	}
	return volleyReq{req: asRequest(t, env, tok, "POST", "/v1/me/mfa/passkeys", string(body))}
}

// addPasskey registers k for the user of tok under name and returns the
// passkey's id.
func addPasskey(t *testing.T, env *servertest.Env, tok string, k *softKey, name string) string {
	t.Helper()
	s := passkeyAddShot(t, env, tok, k, name)
	body, _ := io.ReadAll(s.req.Body)
	r := env.As(tok, "POST", "/v1/me/mfa/passkeys", json.RawMessage(body))
	servertest.Expect(t, r, 201, "")
	var out struct {
		Passkey struct {
			ID string `json:"id"`
		} `json:"passkey"`
	}
	r.JSON(t, &out)
	return out.Passkey.ID
}

// passkeySignInShot begins a console sign-in with k from the client
// address from — password-less, or, with email and pw, as the second
// factor after the password — and returns the answer as a volley shot,
// without sending it. A sign-in that works is answered 303 with a
// session cookie (sessionOf).
func passkeySignInShot(t *testing.T, env *servertest.Env, k *softKey, from, email, pw string) volleyReq {
	t.Helper()
	csrf, cookie := adminLoginForm(t, env.URL)
	cookies := "gatehouse_login_csrf=" + cookie
	form := url.Values{"csrf": {csrf}}
	if email != "" {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(formRequest(t, env.URL+"/admin/login", url.Values{"csrf": {csrf}, "email": {email}, "password": {pw}}, "Cookie", cookies))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		pending := cookieValue(resp, "gatehouse_sign_in")
		if resp.StatusCode != http.StatusSeeOther || pending == "" {
			t.Fatalf("password step: %d, pending %q", resp.StatusCode, pending)
		}
		cookies += "; gatehouse_sign_in=" + pending
		form.Set("second", "1")
	}
	r := env.Request("POST", "/admin/login/passkey/options", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Cookie", cookies)
	servertest.Expect(t, r, 200, "")
	var c passkeyCeremony
	r.JSON(t, &c)
	form.Set("challenge_id", c.ChallengeID)
	form.Set("credential", k.signed(c))
	return volleyReq{req: formRequest(t, env.URL+"/admin/login/passkey", form, "Cookie", cookies), from: from}
}

// sessionOf returns the console session an answer started, or "".
func sessionOf(r *servertest.Response) string {
	if r.Status != http.StatusSeeOther {
		return ""
	}
	return cookieValue(&http.Response{Header: r.Header}, "gatehouse_session")
}
