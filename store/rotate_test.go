package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// TestRotateExactlyOnce hammers the refresh compare-and-swap on both
// dialects: of 50 concurrent rotations of one token exactly one wins and
// stores its successor; a generation change is seen by revocations only.
func TestRotateExactlyOnce(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			acc := &gatehouse.Account{ID: gatehouse.NewID("acc"), Name: "a", Settings: gatehouse.DefaultSettings(), CreatedAt: now}
			u := &gatehouse.User{ID: gatehouse.NewID("usr"), AccountID: acc.ID, Email: "a@example.com", Status: gatehouse.StatusActive,
				Roles: gatehouse.Roles{gatehouse.RoleAdmin}, CreatedAt: now, UpdatedAt: now}
			if err := s.CreateAccount(ctx, acc, u, &gatehouse.AuditEntry{ID: gatehouse.NewID("aud"), AccountID: acc.ID, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			tok := func(hash string) *gatehouse.Token {
				return &gatehouse.Token{ID: gatehouse.NewID("tok"), AccountID: acc.ID, UserID: u.ID, Kind: gatehouse.KindRefresh, Hash: hash,
					Method: gatehouse.MethodAPIAccess, ClientID: "gci_x", FamilyID: "fam", ExpiresAt: now.Add(time.Hour), CreatedAt: now}
			}
			cur := tok("h0")
			if err := s.CreateTokens(ctx, cur); err != nil {
				t.Fatal(err)
			}
			gen := s.Generation()
			for round := 1; round <= 10; round++ {
				var (
					wg   sync.WaitGroup
					wins atomic.Int32
					next []*gatehouse.Token
					mu   sync.Mutex
				)
				for i := 0; i < 50; i++ {
					n := tok(gatehouse.NewID("h"))
					wg.Add(1)
					go func() {
						defer wg.Done()
						won, err := s.RotateRefreshToken(ctx, cur.ID, now, n)
						if err != nil {
							t.Error(err)
						}
						if won {
							wins.Add(1)
							mu.Lock()
							next = append(next, n)
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if wins.Load() != 1 {
					t.Fatalf("round %d: %d winners", round, wins.Load())
				}
				got, _, err := s.TokenByHash(ctx, next[0].Hash)
				if err != nil || got.ID != next[0].ID {
					t.Fatalf("successor not stored: %v", err)
				}
				old, _, _ := s.TokenByHash(ctx, cur.Hash)
				if old.UsedAt == nil {
					t.Fatal("used token not marked")
				}
				cur = next[0]
			}
			if s.Generation() != gen {
				t.Fatal("rotations advanced the generation")
			}
			if err := s.RevokeTokenFamily(ctx, "fam", now); err != nil || s.Generation() == gen {
				t.Fatalf("revoking the family: %v, generation %d", err, s.Generation())
			}
			if got, _, _ := s.TokenByHash(ctx, cur.Hash); got.RevokedAt == nil {
				t.Fatal("family not revoked")
			}
		})
	}
}
