// Package throttle counts password attempts so that guessing stays slow
// (SPEC §3.4, §9.3) without becoming a way to lock a user out from
// elsewhere.
//
// An attempt is reserved — counted — before the password is checked, in one
// atomic step that also decides whether it may go ahead, so that parallel
// guesses cannot slip past the count. A wrong password leaves the
// reservation as a failure; a right one clears the user's failures; an
// attempt that could not be decided (the store or the hasher was
// unavailable) is released as if it never happened.
//
// Three counters decide, each over its own rolling window (see Rules):
// per username and client address, tight; per username across all
// addresses, with a much higher cap (NIST SP 800-63B §5.2.2); and per
// address across all usernames. A user signing in from an address with a
// clean history is therefore not blocked by failures from other addresses
// until the per-username cap is reached.
//
// Memory keeps the counts in one process; Redis shares them between every
// node of a cluster. Both pass the suite in throttletest. Usernames and
// addresses are only ever kept as truncated SHA-256 digests, so the size of
// what a client sends does not matter.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The default rules. One address gets DefaultUserAddrLimit guesses at a
// user per DefaultUserAddrWindow, which is fewer per DefaultUserWindow than
// DefaultUserLimit: locking a user out takes several addresses, and ends
// when they stop (or at once when an admin clears it).
const (
	DefaultUserAddrLimit  = 5
	DefaultUserAddrWindow = 15 * time.Minute
	DefaultUserLimit      = 100
	DefaultUserWindow     = time.Hour
	DefaultAddrLimit      = 50
	DefaultAddrWindow     = 15 * time.Minute
)

// Rule is one counter's limit: at most Limit failed (or undecided)
// attempts within any Window.
type Rule struct {
	Limit  int
	Window time.Duration
}

// Rules are the three counters an attempt must pass.
type Rules struct {
	// UserAddr counts per username and client address.
	UserAddr Rule
	// User counts per username, across every address.
	User Rule
	// Addr counts per client address, across every username.
	Addr Rule
}

// DefaultRules returns the rules built from the Default* constants.
func DefaultRules() Rules {
	return Rules{
		UserAddr: Rule{DefaultUserAddrLimit, DefaultUserAddrWindow},
		User:     Rule{DefaultUserLimit, DefaultUserWindow},
		Addr:     Rule{DefaultAddrLimit, DefaultAddrWindow},
	}
}

// userKeep is how long an entry of a username's log matters: it feeds both
// the per-username and the per-username-and-address counters.
func (r Rules) userKeep() time.Duration { return max(r.User.Window, r.UserAddr.Window) }

// Throttle reserves password attempts. Implementations are safe for
// concurrent use.
//
// username should already be normalised (the store's e-mail key); addr is
// the client address the server decided, counted as its Network. Both may
// be of any size.
type Throttle interface {
	// Reserve counts one attempt before the password is checked. It
	// returns too_many_attempts (a *gatehouse.Error with RetryAfter set to
	// when the attempt would be counted) if any counter is full, and then
	// counts nothing. Any other error means the throttle could not decide;
	// the caller must refuse the attempt (fail closed).
	Reserve(ctx context.Context, username, addr string) (Reservation, error)
	// Succeed records that the reserved attempt had the right password: it
	// clears the username's failures, from every address, and releases the
	// attempt from its address's count.
	Succeed(ctx context.Context, r Reservation) error
	// Release forgets a reserved attempt that was not decided (the
	// password was not checked).
	Release(ctx context.Context, r Reservation) error
	// Clear forgets every failure of username (an admin lifting the
	// throttle). Failures counted against addresses stay.
	Clear(ctx context.Context, username string) error
}

// Reservation is one counted attempt, returned by Reserve. The zero value
// is a reservation of nothing: Succeed and Release ignore it.
type Reservation struct {
	user, addr digest
	id         uint64
}

// digest is the bounded form of a username or an address.
type digest [16]byte

// digestOf returns the first 128 bits of SHA-256 over kind and s: kind
// keeps usernames and addresses apart.
func digestOf(kind byte, s string) digest {
	h := sha256.New()
	h.Write([]byte{kind, 0})
	h.Write([]byte(s))
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}

func userDigest(username string) digest { return digestOf('u', username) }
func addrDigest(addr string) digest     { return digestOf('a', Network(addr)) }

// Network is what an address is counted as (gatehouse.ClientNetwork: an
// IPv4 address itself, an IPv6 one by its /64 outside the ranges that
// embed IPv4 addresses), written out; anything that is not an address is
// kept as it is. Every per-address counter keys on it. A single address
// is written as the address, not as a /32 or /128, so that its counts in
// Redis keep the keys nodes of the previous release use.
func Network(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if p := gatehouse.ClientNetwork(a); p.Bits() != p.Addr().BitLen() {
		return p.String()
	}
	return a.Unmap().WithZone("").String()
}

func (d digest) String() string { return hex.EncodeToString(d[:]) }

// refused returns the too_many_attempts error; wait is when the attempt
// would be counted.
func refused(wait time.Duration) error {
	return &gatehouse.Error{Code: gatehouse.ETooManyAttempts, Message: "Too many failed attempts; try again later", RetryAfter: wait}
}
