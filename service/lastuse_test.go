package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testenv"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/token"
)

// TestLastUseOfEveryKind checks SPEC §10.8 "Last use": the use of an
// access token is a use of the credential it was issued to. An API access
// application's last_used_at follows its access tokens' use, and a client
// credential's its tokens' use, not only the grant; each mark is written
// at most once per service.LastUsedResolution.
func TestLastUseOfEveryKind(t *testing.T) {
	ctx := context.Background()
	clock := testenv.NewClock()
	clock.Add(time.Duration(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()))
	st := openStore(t)
	svc := service.New(service.Config{Store: st, Passwords: cheapPasswords(),
		Digester: token.NewDigester(nil), Now: clock.Now})
	if _, _, err := svc.Bootstrap(ctx, "op@example.com", pw); err != nil {
		t.Fatal(err)
	}
	login, _, err := svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", "")
	if err != nil {
		t.Fatal(err)
	}
	op, err := svc.AccessPrincipal(ctx, login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetDeveloper(ctx, op, op.User.ID, true, false); err != nil {
		t.Fatal(err)
	}
	// A new sign-in carries the developer role.
	if login, _, err = svc.PasswordGrant(ctx, "op@example.com", pw, "192.0.2.1", ""); err != nil {
		t.Fatal(err)
	}
	if op, err = svc.AccessPrincipal(ctx, login.AccessToken); err != nil {
		t.Fatal(err)
	}
	app, err := svc.EnableAPIAccess(ctx, op, service.APIAccessInput{})
	if err != nil {
		t.Fatal(err)
	}
	cred, err := svc.CreateCredential(ctx, op, service.CredentialInput{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := svc.ClientCredentialsGrant(ctx, cred.ClientID, cred.ClientSecret, "", "")
	if err != nil {
		t.Fatal(err)
	}
	lastUse := func() (appUse, credUse *time.Time) {
		t.Helper()
		a, err := svc.APIAccess(ctx, op)
		if err != nil {
			t.Fatal(err)
		}
		c, err := svc.Credential(ctx, op, cred.ID)
		if err != nil {
			t.Fatal(err)
		}
		return a.LastUsedAt, c.LastUsedAt
	}
	use := func(raw string) {
		t.Helper()
		if _, err := svc.AccessPrincipal(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	same := func(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

	start := clock.Now().UTC().Truncate(time.Microsecond)
	if a, _ := lastUse(); a != nil {
		t.Fatalf("a new application was used at %v", a)
	}
	// Using its tokens (the first use fills the cache; the second is
	// served from it) marks both credentials.
	clock.Add(2 * service.LastUsedResolution)
	t1 := clock.Now().UTC()
	use(app.AccessToken)
	use(cc.AccessToken)
	if a, c := lastUse(); !same(a, t1) || !same(c, t1) {
		t.Fatalf("after use at %v: application %v, credential %v (grant at %v)", t1, a, c, start)
	}
	// Within the resolution nothing is written; after it, a cached
	// principal's use is recorded too.
	clock.Add(service.LastUsedResolution / 2)
	use(app.AccessToken)
	use(cc.AccessToken)
	if a, c := lastUse(); !same(a, t1) || !same(c, t1) {
		t.Fatalf("within the resolution: application %v, credential %v", a, c)
	}
	clock.Add(service.LastUsedResolution)
	t2 := clock.Now().UTC()
	use(app.AccessToken)
	use(cc.AccessToken)
	if a, c := lastUse(); !same(a, t2) || !same(c, t2) {
		t.Fatalf("after the resolution at %v: application %v, credential %v", t2, a, c)
	}
}
