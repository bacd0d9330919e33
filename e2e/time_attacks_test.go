package e2e

import (
	"context"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/servertest"
	"github.com/gatehouse/gatehouse/password"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// movableClock is a clock a test moves; zero means the real time.
type movableClock struct{ at atomic.Int64 }

func (c *movableClock) now() time.Time {
	if n := c.at.Load(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return time.Now()
}

func (c *movableClock) set(t time.Time) { c.at.Store(t.UnixNano()) }

// timedService is a second service on the running server's store with a
// clock the test controls: the server's HTTP API makes everything, and the
// service judges it at chosen instants (as a node whose clock is there).
func timedService(t *testing.T, env *servertest.Env) (*service.Service, *movableClock) {
	t.Helper()
	clk := &movableClock{}
	svc := service.New(service.Config{Store: env.Server.Store, Passwords: password.New(servertest.FastPasswords),
		Digester: token.NewDigester(nil), Now: clk.now, ChangePoll: time.Nanosecond, RefreshGrace: service.DefaultRefreshGrace})
	return svc, clk
}

func enableAPITokens(t *testing.T, env *servertest.Env, admin string) {
	t.Helper()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/extensions/api_tokens", map[string]bool{"enabled": true}), 200, "")
}

func introspectAs(t *testing.T, env *servertest.Env, admin, tok string) map[string]any {
	t.Helper()
	r := env.As(admin, "POST", "/oauth/introspect", url.Values{"token": {tok}}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	return r.Map(t)
}

// TestTimePatchExpiryBoundedByMaxLifetime: SPEC §9.1 "API tokens and
// client credentials take expires_at (bounded by the account's
// max_credential_lifetime_days when set)". A credential made before the
// limit (no expiry) is patched, with the limit set, to an expiry ten years
// out: that expires_at is beyond the bound and must be refused, as it is
// on creation.
func TestTimePatchExpiryBoundedByMaxLifetime(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	enableAPITokens(t, env, admin)
	_, tokID := apiTokenWith(t, env, admin, map[string]any{"name": "before the limit"})
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]int{"max_credential_lifetime_days": 30}), 200, "")
	far := time.Now().AddDate(10, 0, 0).UTC().Truncate(time.Second)
	// Creation is bounded (holds).
	servertest.Expect(t, env.As(admin, "POST", "/v1/api-tokens", map[string]any{"name": "new", "expires_at": far}), 400, "invalid_request")
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "new", "expires_at": far}), 400, "invalid_request")
	// A patch sets the same expiry on an existing one.
	r := env.As(admin, "PATCH", "/v1/api-tokens/"+tokID, map[string]any{"expires_at": far})
	if r.Status != 400 {
		t.Errorf("PATCH API token expires_at %s with max_credential_lifetime_days 30: %d %s, want 400", far.Format(time.RFC3339), r.Status, r.Body)
	}
	r = env.As(devTok, "PATCH", "/v1/credentials/"+c.ID, map[string]any{"expires_at": far})
	if r.Status != 400 {
		t.Errorf("PATCH credential expires_at %s with max_credential_lifetime_days 30: %d %s, want 400", far.Format(time.RFC3339), r.Status, r.Body)
	}
}

// TestTimeClientTokenExpiresInBoundedByCredential: a client-credentials
// token minted from a credential that expires in 30 s stops working at
// the credential's expiry (docs/oauth.md: introspection's exp is "its own
// expiry, or its client credential's ... when that comes first"); the
// token response's expires_in (RFC 6749 §5.1: the lifetime of the access
// token) must not promise 3599 s.
func TestTimeClientTokenExpiresInBoundedByCredential(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	credEnds := time.Now().Add(30 * time.Second).UTC().Truncate(time.Second)
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "short", "expires_at": credEnds})
	servertest.Expect(t, r, 201, "")
	var short credential
	r.JSON(t, &short)
	r = clientToken(env, short)
	servertest.Expect(t, r, 200, "")
	m := r.Map(t)
	tok := m["access_token"].(string)
	// Introspection says when it stops (holds).
	in := introspectAs(t, env, admin, tok)
	if exp, _ := in["exp"].(float64); int64(exp) > credEnds.Unix() {
		t.Errorf("introspection exp %v after the credential's expiry %d", in["exp"], credEnds.Unix())
	}
	if ei, _ := m["expires_in"].(float64); ei > 31 {
		t.Errorf("expires_in %v for a token whose credential expires in 30 s (introspection exp %v)", ei, in["exp"])
	}
	me := env.As(tok, "GET", "/v1/me", nil).Map(t)
	if s, _ := me["credential_expires_at"].(string); s != "" {
		if at, err := time.Parse(time.RFC3339Nano, s); err == nil && at.After(credEnds) {
			t.Errorf("/v1/me credential_expires_at %s after the credential's expires_at %s", s, credEnds.Format(time.RFC3339))
		}
	}
}

// TestTimeAPIAccessExpiresInBoundedByMinter: an API access application
// enabled through an API token that expires in 30 s — every token of it
// stops with that API token (SPEC §10.8) — must not answer expires_in of
// a whole day.
func TestTimeAPIAccessExpiresInBoundedByMinter(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	enableAPITokens(t, env, admin)
	ends := time.Now().Add(30 * time.Second).UTC().Truncate(time.Second)
	// An admin who is not the operator (the operator's reach holds
	// accounts:write, which an API token of the account cannot cover).
	env.CreateUser(admin, "admin2@example.com", memberPW, "admin")
	_, key := newKey(t, env, admin, "", map[string]any{"name": "short", "expires_at": ends})
	r := withKey(env, key, "admin2@example.com", "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	in := introspectAs(t, env, admin, m["access_token"].(string))
	if exp, _ := in["exp"].(float64); int64(exp) > ends.Unix() {
		t.Errorf("introspection exp %v after the minting API token's expiry %d", in["exp"], ends.Unix())
	}
	if ei, _ := m["expires_in"].(float64); ei > 31 {
		t.Errorf("expires_in %v for an API access token whose minting API token expires in 30 s (introspection exp %v)", ei, in["exp"])
	}
}

// TestTimeExpiresAtInputs: expires_at edge values on both credential
// kinds: never a 5xx; the far future (9999 in UTC) accepted, 10000 in UTC
// refused; past, now-ish, leap second and malformed refused with 400;
// offsets and fractional seconds kept as the same instant (to the
// microsecond, truncated: never later than asked).
func TestTimeExpiresAtInputs(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	enableAPITokens(t, env, admin)
	n := 0
	post := func(raw string) (*servertest.Response, *servertest.Response) {
		n++
		body := `{"name":"t` + strconv.Itoa(n) + `","expires_at":` + raw + `}`
		a := env.As(admin, "POST", "/v1/api-tokens", body, "Content-Type", "application/json")
		c := env.As(devTok, "POST", "/v1/credentials", body, "Content-Type", "application/json")
		return a, c
	}
	for _, raw := range []string{`"9999-12-31T23:59:59Z"`, `"9999-12-31T23:59:59.999999999Z"`, `"9999-12-31T23:59:59+14:00"`} {
		a, c := post(raw)
		servertest.Expect(t, a, 201, "")
		servertest.Expect(t, c, 201, "")
	}
	for _, raw := range []string{`"9999-12-31T23:59:59-23:59"`, `"9999-12-31T23:59:59-00:01"`, `"2000-01-01T00:00:00Z"`, `"0001-01-01T00:00:00Z"`,
		`"2030-06-30T23:59:60Z"`, `"2030-02-30T00:00:00Z"`, `"2030-01-01T24:00:00Z"`, `"2030-01-01"`,
		`"2030-01-01T00:00:00"`, `1893456000`, `"-2030-01-01T00:00:00Z"`, `"+2030-01-01T00:00:00Z"`, `"10000-01-01T00:00:00Z"`, `""`} {
		a, c := post(raw)
		if a.Status != 400 || c.Status != 400 {
			t.Errorf("expires_at %s: API token %d %s, credential %d %s; want 400", raw, a.Status, a.Body, c.Status, c.Body)
		}
	}
	// An offset and nanoseconds: the same instant, never later.
	want := time.Now().Add(48 * time.Hour).Truncate(time.Second).Add(123456789 * time.Nanosecond)
	raw := `"` + want.In(time.FixedZone("x", -(9*3600+30*60))).Format(time.RFC3339Nano) + `"`
	a, c := post(raw)
	servertest.Expect(t, a, 201, "")
	servertest.Expect(t, c, 201, "")
	for _, r := range []*servertest.Response{a, c} {
		got, err := time.Parse(time.RFC3339Nano, r.Map(t)["expires_at"].(string))
		if err != nil || got.After(want) || want.Sub(got) >= time.Microsecond {
			t.Errorf("expires_at %s answered %v (%v), want %s to the microsecond", raw, r.Map(t)["expires_at"], err, want.UTC().Format(time.RFC3339Nano))
		}
	}
}

// TestTimeExactExpiry: with a clock the test moves, an API token, a
// client credential and every token minted from it, and a password-grant
// token work until the instant before their expiry — cached — and are
// refused from that very instant on, cache or not.
func TestTimeExactExpiry(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	enableAPITokens(t, env, admin)
	// Before the client-credentials token's own expiry (3599 s).
	T := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Second).Add(123456 * time.Microsecond)
	key, _ := apiTokenWith(t, env, admin, map[string]any{"name": "exact", "expires_at": T})
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "exact", "expires_at": T})
	servertest.Expect(t, r, 201, "")
	var cred credential
	r.JSON(t, &cred)
	ccTok := accessToken(t, clientToken(env, cred))
	pwTok := env.Login("dev@example.com", memberPW)

	svc, clk := timedService(t, env)
	ctx := context.Background()
	before := T.Add(-time.Microsecond)
	clk.set(before)
	for i := 0; i < 2; i++ { // the second from the cache
		if _, err := svc.APITokenPrincipal(ctx, key, ""); err != nil {
			t.Fatalf("API token at expiry-1µs: %v", err)
		}
		if _, err := svc.ClientPrincipal(ctx, cred.ClientID, cred.ClientSecret); err != nil {
			t.Fatalf("client credential at expiry-1µs: %v", err)
		}
		if _, err := svc.AccessPrincipal(ctx, ccTok); err != nil {
			t.Fatalf("client-credentials token at credential expiry-1µs: %v", err)
		}
	}
	clk.set(T)
	if _, err := svc.APITokenPrincipal(ctx, key, ""); err == nil {
		t.Errorf("API token accepted at its expires_at")
	}
	if _, err := svc.ClientPrincipal(ctx, cred.ClientID, cred.ClientSecret); err == nil {
		t.Errorf("client credential accepted at its expires_at")
	}
	if _, err := svc.AccessPrincipal(ctx, ccTok); err == nil {
		t.Errorf("client-credentials token accepted at its credential's expires_at")
	}

	// A password token: its own expiry.
	clk.set(time.Time{})
	p, err := svc.AccessPrincipal(ctx, pwTok)
	if err != nil {
		t.Fatalf("password token now: %v", err)
	}
	exp := p.ExpiresAt
	clk.set(exp.Add(-time.Microsecond))
	if _, err := svc.AccessPrincipal(ctx, pwTok); err != nil {
		t.Fatalf("password token at expiry-1µs: %v", err)
	}
	clk.set(exp)
	if _, err := svc.AccessPrincipal(ctx, pwTok); err == nil {
		t.Errorf("password token accepted at its expiry %s", exp)
	}
}

// TestTimeExpiryMovedEarlierWhileCached: a credential cached on a node
// whose expiry another node moves earlier is refused on this node from
// the new expiry on, not the old one.
func TestTimeExpiryMovedEarlierWhileCached(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, _ := developer(t, env)
	enableAPITokens(t, env, admin)
	late := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	key, keyID := apiTokenWith(t, env, admin, map[string]any{"name": "moved", "expires_at": late})
	r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "moved", "expires_at": late})
	servertest.Expect(t, r, 201, "")
	var cred credential
	r.JSON(t, &cred)
	ccTok := accessToken(t, clientToken(env, cred))

	svc, clk := timedService(t, env)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := svc.APITokenPrincipal(ctx, key, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.AccessPrincipal(ctx, ccTok); err != nil {
			t.Fatal(err)
		}
	}
	early := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-tokens/"+keyID, map[string]any{"expires_at": early}), 200, "")
	servertest.Expect(t, env.As(devTok, "PATCH", "/v1/credentials/"+cred.ID, map[string]any{"expires_at": early}), 200, "")
	// This service reads the store's change counter at every look-up
	// (ChangePoll 1 ns), as a node does within a second.
	clk.set(early)
	if _, err := svc.APITokenPrincipal(ctx, key, ""); err == nil {
		t.Errorf("API token accepted at its new, earlier expiry (was cached until %s)", late)
	}
	if _, err := svc.AccessPrincipal(ctx, ccTok); err == nil {
		t.Errorf("client-credentials token accepted at its credential's new, earlier expiry")
	}
}

// TestTimeLoweredMaxBoundsExisting: docs/scopes.md: "max_credential_
// lifetime_days: 30 on the account so no token lives longer than a
// month". An API token and a client credential made before the limit was
// set (no expiry) are judged two days after the limit is lowered to one
// day.
func TestTimeLoweredMaxBoundsExisting(t *testing.T) {
	env := servertest.Start(t)
	admin, _, _, cred := developer(t, env)
	enableAPITokens(t, env, admin)
	key, _ := apiTokenWith(t, env, admin, map[string]any{"name": "forever"})
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]int{"max_credential_lifetime_days": 1}), 200, "")
	svc, clk := timedService(t, env)
	ctx := context.Background()
	clk.set(time.Now().Add(49 * time.Hour))
	if _, err := svc.APITokenPrincipal(ctx, key, ""); err == nil {
		t.Errorf("API token made before max_credential_lifetime_days=1 still works two days after it was set")
	}
	if _, err := svc.ClientPrincipal(ctx, cred.ClientID, cred.ClientSecret); err == nil {
		t.Errorf("client credential made before max_credential_lifetime_days=1 still works two days after it was set")
	}
}

// TestTimeBurstRetryAfter: a burst refusal's Retry-After is a whole
// number of seconds within the window, and a request sent once it has
// passed is admitted.
func TestTimeBurstRetryAfter(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"rate_limit": map[string]int{"burst": 2, "burst_window_seconds": 2}}), 200, "")
	var refused *servertest.Response
	for i := 0; i < 5 && refused == nil; i++ {
		if r := env.As(admin, "GET", "/v1/me", nil); r.Status == 422 {
			refused = r
		}
	}
	if refused == nil {
		t.Fatal("never refused")
	}
	ra, err := strconv.Atoi(refused.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q for a 2 s window", refused.Header.Get("Retry-After"))
	}
	time.Sleep(time.Duration(ra)*time.Second + 50*time.Millisecond)
	servertest.Expect(t, env.As(admin, "GET", "/v1/me", nil), 200, "")
}

// TestTimeQuotaRetryAfter: over a daily or monthly quota, Retry-After
// (and the quota policy's w) is the wait until the period's end in UTC —
// the next midnight, the first of the next month — to within a couple of
// seconds of this test's own reading.
func TestTimeQuotaRetryAfter(t *testing.T) {
	env := servertest.Start(t)
	_, _, devTok, _ := developer(t, env)
	for _, period := range []string{"day", "month"} {
		r := env.As(devTok, "POST", "/v1/credentials", map[string]any{"name": "q" + period, "quota": map[string]any{"limit": 1, "period": period}})
		servertest.Expect(t, r, 201, "")
		var c credential
		r.JSON(t, &c)
		tok := accessToken(t, clientToken(env, c))
		servertest.Expect(t, env.As(tok, "GET", "/v1/me", nil), 200, "")
		r = env.As(tok, "GET", "/v1/me", nil)
		servertest.Expect(t, r, 422, "quota_exceeded")
		now := time.Now().UTC()
		y, m, d := now.Date()
		end := time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
		if period == "month" {
			end = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
		}
		want := int(end.Sub(now) / time.Second)
		ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || ra < want-2 || ra > want+2 {
			t.Errorf("%s quota: Retry-After %q, want about %d (until %s)", period, r.Header.Get("Retry-After"), want, end)
		}
	}
}

// TestTimeRollBoundedByLoweredMax: a token and a credential made before
// max_credential_lifetime_days was set roll into ones that expire within
// it (docs/scopes.md).
func TestTimeRollBoundedByLoweredMax(t *testing.T) {
	env := servertest.Start(t)
	admin, _, devTok, c := developer(t, env)
	enableAPITokens(t, env, admin)
	_, id := apiTokenWith(t, env, admin, map[string]any{"name": "forever"})
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]int{"max_credential_lifetime_days": 2}), 200, "")
	limit := time.Now().Add(48*time.Hour + time.Minute)
	r := env.As(admin, "POST", "/v1/api-tokens/"+id+"/roll", map[string]int{"overlap_seconds": 0})
	servertest.Expect(t, r, 201, "")
	s, _ := r.Map(t)["expires_at"].(string)
	if at, err := time.Parse(time.RFC3339Nano, s); err != nil || at.After(limit) {
		t.Errorf("rolled API token expires_at %q, want within 2 days", s)
	}
	servertest.Expect(t, env.As(devTok, "POST", "/v1/credentials/"+c.ID+"/roll", map[string]int{"overlap_seconds": 0}), 200, "")
	cr := env.As(devTok, "GET", "/v1/credentials", nil)
	servertest.Expect(t, cr, 200, "")
	s = ""
	for _, x := range cr.Map(t)["data"].([]any) {
		if m := x.(map[string]any); m["id"] == c.ID {
			s, _ = m["expires_at"].(string)
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, s); err != nil || at.After(limit) {
		t.Errorf("rolled credential expires_at %q, want within 2 days", s)
	}
}

// TestTimeLifetimeSettings: the lifetimes' bounds are enforced, and a
// new lifetime applies to tokens issued from then on (expires_in).
func TestTimeLifetimeSettings(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	for _, bad := range []map[string]any{
		{"token_lifetimes": map[string]int{"password_seconds": 59}},
		{"token_lifetimes": map[string]int{"password_seconds": 2592001}},
		{"token_lifetimes": map[string]int{"client_credentials_seconds": 59}},
		{"token_lifetimes": map[string]int{"client_credentials_seconds": 86401}},
		{"token_lifetimes": map[string]any{"password_seconds": 60.5}},
		{"max_credential_lifetime_days": -1},
		{"max_credential_lifetime_days": 3651},
	} {
		servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", bad), 400, "invalid_request")
	}
	servertest.Expect(t, env.As(admin, "PUT", "/v1/settings", map[string]any{"token_lifetimes": map[string]int{"password_seconds": 60}}), 200, "")
	r := env.Request("POST", "/authorization", url.Values{"username": {servertest.AdminEmail}, "password": {servertest.AdminPassword}}.Encode(),
		"Content-Type", "application/x-www-form-urlencoded")
	servertest.Expect(t, r, 200, "")
	if ei := r.Map(t)["expires_in"]; ei != float64(60) {
		t.Errorf("password grant expires_in %v, want 60", ei)
	}
	for _, bad := range []any{0, 366, 1.5, -1, "7"} {
		servertest.Expect(t, env.As(admin, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": bad}), 400, "invalid_request")
	}
	r = env.As(admin, "POST", "/v1/api-access", map[string]any{"access_token_ttl_days": 2})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	if m["expires_in"] != float64(2*86400) {
		t.Errorf("api access expires_in %v", m["expires_in"])
	}
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 366}), 400, "invalid_request")
	servertest.Expect(t, env.As(admin, "PATCH", "/v1/api-access", map[string]any{"access_token_ttl_days": 3}), 200, "")
	r = env.Request("POST", "/oauth/token", map[string]string{"grant_type": "refresh_token", "client_id": m["client_id"].(string), "refresh_token": m["refresh_token"].(string)})
	servertest.Expect(t, r, 200, "")
	if ei := r.Map(t)["expires_in"]; ei != float64(3*86400) {
		t.Errorf("refresh after PATCH ttl 3: expires_in %v", ei)
	}
}

// TestTimeRefreshGraceBoundary: a used refresh token presented again by
// the same client exactly at the end of the grace period (5 s) is a retry
// (the committed pair, nothing revoked); one microsecond later it is
// reuse, and the lineage is revoked (SPEC §3.1: "later than a short grace
// period").
func TestTimeRefreshGraceBoundary(t *testing.T) {
	env := servertest.Start(t)
	admin := env.AdminToken()
	r := env.As(admin, "POST", "/v1/api-access", map[string]any{})
	servertest.Expect(t, r, 201, "")
	m := r.Map(t)
	clientID, rt := m["client_id"].(string), m["refresh_token"].(string)
	svc, clk := timedService(t, env)
	ctx := context.Background()
	// Ahead of the database's clock: on PostgreSQL a rotation is stamped
	// with the later of the node's time and the database's.
	t0 := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	clk.set(t0)
	first, err := svc.RefreshGrant(ctx, clientID, rt, "")
	if err != nil {
		t.Fatal(err)
	}
	clk.set(t0.Add(service.DefaultRefreshGrace))
	again, err := svc.RefreshGrant(ctx, clientID, rt, "")
	if err != nil || again.AccessToken != first.AccessToken || again.RefreshToken != first.RefreshToken {
		t.Fatalf("retry at the grace period's last instant: %v (same pair %v)", err, err == nil && again.AccessToken == first.AccessToken)
	}
	if _, err := svc.AccessPrincipal(ctx, first.AccessToken); err != nil {
		t.Fatalf("the pair after an in-grace retry: %v", err)
	}
	clk.set(t0.Add(service.DefaultRefreshGrace + time.Microsecond))
	if _, err := svc.RefreshGrant(ctx, clientID, rt, ""); err == nil {
		t.Fatalf("reuse after the grace period accepted")
	}
	if _, err := svc.AccessPrincipal(ctx, first.AccessToken); err == nil {
		t.Errorf("lineage not revoked by reuse after the grace period")
	}
}
