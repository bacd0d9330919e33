package password_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/gatehouse/gatehouse/password"
)

var fast = password.Params{Memory: 1024, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h := password.New(fast)
	a, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || !strings.HasPrefix(a, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hashes %q %q", a, b)
	}
	ctx := context.Background()
	if err := h.Verify(ctx, "correct horse", a); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(ctx, "wrong horse", a); !errors.Is(err, password.ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := h.Verify(ctx, strings.Repeat("x", password.MaxLen+1), a); !errors.Is(err, password.ErrMismatch) {
		t.Fatalf("too long: %v", err)
	}
	// A hash made with other parameters still verifies.
	other, err := password.New(password.Params{Memory: 2048, Time: 2, Threads: 1}).Hash(context.Background(), "pw 12345")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(ctx, "pw 12345", other); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", "$argon2id$v=19$m=x$salt$key", "$argon2id$v=18$m=1,t=1,p=1$c2FsdA$a2V5"} {
		if err := h.Verify(ctx, "pw", bad); err == nil || errors.Is(err, password.ErrMismatch) {
			t.Fatalf("malformed %q: %v", bad, err)
		}
	}
	if err := h.VerifyDummy(ctx, "anything"); err != nil {
		t.Fatal(err)
	}
}

// TestOnePasswordInAnyNormalForm: a password hashed with an accent as one
// character verifies when typed as a letter and a combining accent, and
// the other way round; a hash made, before passwords were normalised, of
// a password as typed still verifies when typed so again.
func TestOnePasswordInAnyNormalForm(t *testing.T) {
	h := password.New(fast)
	ctx := context.Background()
	const composed, decomposed = "Ang\u00e9lique pass", "Ange\u0301lique pass"
	for _, set := range []string{composed, decomposed} {
		hash, err := h.Hash(ctx, set)
		if err != nil {
			t.Fatal(err)
		}
		for _, typed := range []string{composed, decomposed} {
			if err := h.Verify(ctx, typed, hash); err != nil {
				t.Errorf("set %q, typed %q: %v", set, typed, err)
			}
		}
		if err := h.Verify(ctx, "Angelique pass", hash); !errors.Is(err, password.ErrMismatch) {
			t.Errorf("set %q, typed without the accent: %v", set, err)
		}
	}
	salt := []byte("0123456789abcdef")
	enc := base64.RawStdEncoding
	old := fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, fast.Memory, fast.Time, fast.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(argon2.IDKey([]byte(decomposed), salt, fast.Time, fast.Memory, fast.Threads, 32)))
	if err := h.Verify(ctx, decomposed, old); err != nil {
		t.Errorf("a hash of the password as typed, typed so again: %v", err)
	}
}

// TestNewIsCheap shows that New hashes nothing: parameters that would take
// 4 GiB and minutes per hash cost nothing until a hash is asked for.
func TestNewIsCheap(t *testing.T) {
	start := time.Now()
	password.New(password.Params{Memory: 4 << 20, Time: 100, Threads: 1})
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("New took %v", d)
	}
}

func TestDefaultLimits(t *testing.T) {
	l := password.DefaultLimits(password.DefaultParams)
	if l.Concurrency < 1 || l.Queue < l.Concurrency {
		t.Fatalf("limits %+v", l)
	}
	if int64(l.Concurrency)*int64(password.DefaultParams.Memory)<<10 > password.MemoryBudget {
		t.Fatalf("limits %+v exceed the memory budget", l)
	}
	if l := password.DefaultLimits(password.Params{Memory: 1 << 30, Time: 1, Threads: 1}); l.Concurrency != 1 {
		t.Fatalf("a hash bigger than the budget: %+v", l)
	}
}
