package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/password"
)

var fast = password.Params{Memory: 1024, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h := password.New(fast)
	a, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := h.Hash("correct horse")
	if a == b || !strings.HasPrefix(a, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hashes %q %q", a, b)
	}
	if err := h.Verify("correct horse", a); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify("wrong horse", a); !errors.Is(err, password.ErrMismatch) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := h.Verify(strings.Repeat("x", password.MaxLen+1), a); !errors.Is(err, password.ErrMismatch) {
		t.Fatalf("too long: %v", err)
	}
	// A hash made with other parameters still verifies.
	other, _ := password.New(password.Params{Memory: 2048, Time: 2, Threads: 1}).Hash("pw 12345")
	if err := h.Verify("pw 12345", other); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", "$argon2id$v=19$m=x$salt$key", "$argon2id$v=18$m=1,t=1,p=1$c2FsdA$a2V5"} {
		if err := h.Verify("pw", bad); err == nil || errors.Is(err, password.ErrMismatch) {
			t.Fatalf("malformed %q: %v", bad, err)
		}
	}
	h.VerifyDummy("anything")
}

func TestValidate(t *testing.T) {
	for pw, ok := range map[string]bool{"short": false, "12345678": true, strings.Repeat("x", password.MaxLen): true, strings.Repeat("x", password.MaxLen+1): false} {
		if (password.Validate(pw) == nil) != ok {
			t.Errorf("Validate(len %d) = %v", len(pw), password.Validate(pw))
		}
	}
}
