package service_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/service"
)

// TestIntrospectExpBoundedByCredential: introspection's exp is when the
// token stops working — its own expiry, or its client credential's when
// that comes first (the token is refused from then on) — never later.
func TestIntrospectExpBoundedByCredential(t *testing.T) {
	w := newWorld(t)
	ann := w.principal("ann@example.com")
	credExp := time.Now().Add(10 * time.Minute).UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name      string
		expiresAt *time.Time
	}{
		{"credential expiring before the token", &credExp},
		{"credential without expiry", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := w.svc.CreateCredential(w.ctx, ann, service.CredentialInput{Name: tc.name, ExpiresAt: tc.expiresAt})
			if err != nil {
				t.Fatal(err)
			}
			cc, err := w.svc.ClientCredentialsGrant(w.ctx, cred.ClientID, cred.ClientSecret, "", "")
			if err != nil {
				t.Fatal(err)
			}
			p, err := w.svc.AccessPrincipal(w.ctx, cc.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			in, err := w.svc.Introspect(w.ctx, w.op, cc.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			if !in.Active {
				t.Fatalf("introspection %+v", in)
			}
			// The token says when it stops working everywhere: its
			// expires_in, /v1/me's expiry and introspection's exp.
			want := time.Now().Add(time.Hour)
			if tc.expiresAt != nil {
				want = *tc.expiresAt
			}
			if d := p.ExpiresAt.Sub(want); d < -2*time.Second || d > 2*time.Second {
				t.Fatalf("the token expires at %s, want %s", p.ExpiresAt, want)
			}
			if in.Exp != p.ExpiresAt.Unix() {
				t.Fatalf("exp %s, want %s", time.Unix(in.Exp, 0).UTC(), p.ExpiresAt)
			}
			if d := time.Until(want).Seconds() - float64(cc.ExpiresIn); d < -1 || d > 2 {
				t.Fatalf("expires_in %d, want about %.0f", cc.ExpiresIn, time.Until(want).Seconds())
			}
		})
	}
}
