package seal

import (
	"strings"
	"testing"
)

// TestSealer: a sealed value hides the secret and opens only under its
// key, purpose and owner; anything altered or malformed does not open.
func TestSealer(t *testing.T) {
	s := New([]byte("server key"), "totp secrets")
	sealed := s.Seal("usr_1", "JBSWY3DPEHPK3PXP")
	if strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatal("the sealed value holds the secret")
	}
	if got, err := s.Open("usr_1", sealed); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open("usr_2", sealed); err != ErrSealed {
		t.Fatalf("another owner opened it: %v", err)
	}
	if _, err := New([]byte("another key"), "totp secrets").Open("usr_1", sealed); err != ErrSealed {
		t.Fatalf("another key opened it: %v", err)
	}
	if _, err := New([]byte("server key"), "webhook secrets").Open("usr_1", sealed); err != ErrSealed {
		t.Fatalf("another purpose opened it: %v", err)
	}
	for _, bad := range []string{"", "v1.", "v1.!!!", "v2." + sealed[3:], sealed[:len(sealed)-2]} {
		if _, err := s.Open("usr_1", bad); err != ErrSealed {
			t.Errorf("Open(%q) = %v", bad, err)
		}
	}
}
