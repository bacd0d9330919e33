// Package password hashes and verifies human passwords with argon2id
// (golang.org/x/crypto/argon2), in the PHC string format. Verification is
// constant-time, and VerifyDummy lets callers spend the same time for users
// who do not exist.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams follow the OWASP recommendation for argon2id
// (19 MiB, 2 iterations, 1 thread).
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MaxLen bounds the password length accepted, so that hashing cost stays
	// bounded for any input.
	MaxLen = 1024
	// MinLen is the shortest password accepted when one is set.
	MinLen = 8
)

// ErrMismatch is returned by Verify when the password does not match.
var ErrMismatch = errors.New("password mismatch")

// Hasher hashes and verifies passwords with fixed parameters. The zero value
// is not usable; use New. It is safe for concurrent use.
type Hasher struct {
	params Params
	dummy  string
}

// New returns a Hasher using p.
func New(p Params) *Hasher {
	h := &Hasher{params: p}
	h.dummy, _ = h.Hash("gatehouse-dummy-password")
	return h
}

// Hash returns the PHC-formatted argon2id hash of pw.
func (h *Hasher) Hash(pw string) (string, error) {
	if len(pw) > MaxLen {
		return "", fmt.Errorf("password longer than %d bytes", MaxLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify checks pw against a hash made by Hash (with any parameters). It
// returns ErrMismatch when the password is wrong and another error when the
// hash is malformed.
func (h *Hasher) Verify(pw, encoded string) error {
	if len(pw) > MaxLen {
		// Spend the usual time, then fail.
		_ = h.Verify("", h.dummy)
		return ErrMismatch
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("malformed password hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("unsupported argon2 version")
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return errors.New("malformed argon2 parameters")
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return errors.New("malformed salt")
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return errors.New("malformed key")
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// VerifyDummy spends the time of one Verify against a fixed hash and
// reports nothing; callers use it for users that do not exist or have no
// password, so that every failure takes about the same time.
func (h *Hasher) VerifyDummy(pw string) {
	_ = h.Verify(pw, h.dummy)
}

// Validate returns an error if pw is not acceptable as a new password.
func Validate(pw string) error {
	switch {
	case len(pw) < MinLen:
		return fmt.Errorf("password must be at least %d characters", MinLen)
	case len(pw) > MaxLen:
		return fmt.Errorf("password must be at most %d bytes", MaxLen)
	}
	return nil
}
