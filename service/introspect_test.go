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
			want := p.ExpiresAt.Unix()
			if tc.expiresAt != nil {
				if !tc.expiresAt.Before(p.ExpiresAt) {
					t.Fatalf("credential expiry %s is not before the token's %s", tc.expiresAt, p.ExpiresAt)
				}
				want = tc.expiresAt.Unix()
			}
			if in.Exp != want {
				t.Fatalf("exp %s, want %s", time.Unix(in.Exp, 0).UTC(), time.Unix(want, 0).UTC())
			}
		})
	}
}
