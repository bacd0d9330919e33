// Package password hashes and verifies human passwords with argon2id
// (golang.org/x/crypto/argon2), in the PHC string format. Verification is
// constant-time, and VerifyDummy lets callers spend the same time for users
// who do not exist.
//
// Each hash holds Params.Memory of memory while it runs, so a Hasher runs
// only a few at once (Limits, sized to the machine) with a short queue, and
// refuses the rest at once with ErrBusy: the memory in use stays bounded
// however many attempts arrive together.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/tracing"
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
)

// ErrMismatch is returned by Verify when the password does not match.
var ErrMismatch = errors.New("password mismatch")

// ErrBusy is returned, before any hashing, when as many hashes are running
// and waiting as the Hasher's Limits allow. It is a temporarily_unavailable
// gatehouse error with a Retry-After, so callers may return it as it is.
var ErrBusy error = &gatehouse.Error{Code: gatehouse.EUnavailable,
	Message: "Too many password checks at once; try again shortly", RetryAfter: time.Second}

// Limits bound the password work a Hasher does at once.
type Limits struct {
	// Concurrency is how many hashes run at once.
	Concurrency int
	// Queue is how many more may wait for one of those; any beyond are
	// refused at once with ErrBusy.
	Queue int
}

// MemoryBudget caps the argon2 memory DefaultLimits lets run at once, on
// machines with many cores.
const MemoryBudget = 256 << 20

// DefaultLimits returns limits sized to the machine for parameters p: one
// hash per GOMAXPROCS but one, so that a storm of sign-ins leaves a core to
// everything else (at least one; at most as many as fit in MemoryBudget),
// and a queue of four times as many, so that a waiting request waits for
// about four hashes at most.
func DefaultLimits(p Params) Limits {
	c := runtime.GOMAXPROCS(0) - 1
	if p.Memory > 0 {
		c = min(c, int(MemoryBudget/(int64(p.Memory)<<10)))
	}
	c = max(c, 1)
	return Limits{Concurrency: c, Queue: 4 * c}
}

// Hasher hashes and verifies passwords with fixed parameters, under its
// Limits. The zero value is not usable; use New. It is safe for concurrent
// use.
type Hasher struct {
	params Params
	limits Limits
	// admit holds a token for every hash running or waiting, run one for
	// every hash running.
	admit, run chan struct{}

	dummyOnce sync.Once
	dummy     string
}

// Option configures New.
type Option func(*Hasher)

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option { return func(h *Hasher) { h.limits = l } }

// New returns a Hasher using p. It does no hashing.
func New(p Params, opts ...Option) *Hasher {
	h := &Hasher{params: p, limits: DefaultLimits(p)}
	for _, o := range opts {
		o(h)
	}
	h.limits.Concurrency = max(h.limits.Concurrency, 1)
	h.limits.Queue = max(h.limits.Queue, 0)
	h.admit = make(chan struct{}, h.limits.Concurrency+h.limits.Queue)
	h.run = make(chan struct{}, h.limits.Concurrency)
	return h
}

// Limits returns the Hasher's limits.
func (h *Hasher) Limits() Limits { return h.limits }

// Busy reports whether a hash asked for now would be refused with ErrBusy.
// Callers use it to refuse early, before other work; the limits are
// enforced by Hash and Verify whatever it said.
func (h *Hasher) Busy() bool { return len(h.admit) == cap(h.admit) }

// acquire waits for a turn to hash. It returns ErrBusy at once when the
// queue is full, and ctx's error if ctx ends while waiting; otherwise the
// caller must call the returned function when done.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	select {
	case h.admit <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	select {
	case h.run <- struct{}{}:
		return func() { <-h.run; <-h.admit }, nil
	case <-ctx.Done():
		<-h.admit
		return nil, ctx.Err()
	}
}

// Hash returns the PHC-formatted argon2id hash of pw. It is for
// authenticated, rate-limited callers (setting a password), so it is never
// refused for the queue: it waits for a running turn — the concurrency
// limit, and so the memory bound, still holds — until ctx ends.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	pw = norm.NFC.String(pw)
	if len(pw) > MaxLen {
		return "", fmt.Errorf("password longer than %d bytes", MaxLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	_, span := tracing.Start(ctx, "password.Hash")
	defer span.End()
	select {
	case h.run <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	release := func() { <-h.run }
	key := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, keyLen)
	release()
	return encode(h.params, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Verify checks pw against a hash made by Hash (with any parameters). It
// returns ErrMismatch when the password is wrong, ErrBusy (before hashing)
// when too many checks are running and waiting, ctx's error if ctx ends
// while it waits, and another error when the hash is malformed.
//
// Hash hashes a password's Unicode normal form C, so that one password
// typed on two keyboards — an "é" as one character or as "e" and a
// combining accent — is one password; Verify checks that form, then, when
// pw is written otherwise, pw as written, which a hash made before
// passwords were normalised may hold. Both are checked whatever the
// first gives, so that the time spent says nothing.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) error {
	forms := [2]string{norm.NFC.String(pw), pw}
	n := 1
	if forms[1] != forms[0] {
		n = 2
	}
	if len(forms[0]) > MaxLen || len(pw) > MaxLen {
		// Spend the usual time, then fail.
		if err := h.VerifyDummy(ctx, ""); err != nil {
			return err
		}
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
	_, span := tracing.Start(ctx, "password.Verify")
	defer span.End()
	// One turn for both forms: ErrBusy comes before any hashing.
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	match := 0
	for _, form := range forms[:n] {
		got := argon2.IDKey([]byte(form), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
		match |= subtle.ConstantTimeCompare(got, want)
	}
	release()
	if match != 1 {
		return ErrMismatch
	}
	return nil
}

// VerifyDummy spends the time of one Verify, under the same limits, and
// reports only ErrBusy or ctx's error; callers use it for users that do
// not exist or have no password, so that every failure takes about the
// same time.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	err := h.Verify(ctx, pw, h.dummyHash())
	if errors.Is(err, ErrBusy) || (err != nil && ctx.Err() != nil) {
		return err
	}
	return nil
}

// dummyHash returns a hash with the Hasher's parameters that no password
// matches: a random salt and a random key, made on first use without
// hashing anything.
func (h *Hasher) dummyHash() string {
	h.dummyOnce.Do(func() {
		b := make([]byte, saltLen+keyLen)
		_, _ = rand.Read(b)
		h.dummy = encode(h.params, b[:saltLen], b[saltLen:])
	})
	return h.dummy
}
