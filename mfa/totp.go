package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The TOTP parameters of SPEC §10.6: every authenticator app's defaults.
const (
	// Digits is the length of a code.
	Digits = 6
	// Period is the length of one time step.
	Period = 30 * time.Second
	// Skew is how many steps either side of the current one are accepted.
	Skew = 1
	// SecretBytes is the length of a new secret: 160 bits, the length of
	// an HMAC-SHA-1 output, as RFC 4226 §4 recommends.
	SecretBytes = 20
)

// b32 is the alphabet of TOTP secrets: RFC 4648 base32 without padding,
// as otpauth URIs carry them.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random secret, base32-encoded (32 characters).
func NewSecret() string {
	b := make([]byte, SecretBytes)
	rand.Read(b)
	return b32.EncodeToString(b)
}

// Step returns the time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code returns the code of secret (base32) at step, or "" when secret is
// not base32.
func Code(secret string, step int64) string {
	key, err := b32.DecodeString(strings.ToUpper(secret))
	if err != nil {
		return ""
	}
	return code(key, step)
}

func code(key []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	s := strconv.FormatUint(uint64(v%1_000_000), 10)
	return strings.Repeat("0", Digits-len(s)) + s
}

// Match returns the step, within Skew of now's, whose code is the given
// code, and whether there is one. The code is compared in constant time
// at every step; a code of the wrong shape matches nothing. Match says
// nothing of whether the step was used before: the caller accepts a step
// only once, and never one older than the last accepted.
func Match(secret, given string, now time.Time) (int64, bool) {
	given = NormalizeCode(given)
	key, err := b32.DecodeString(strings.ToUpper(secret))
	if err != nil || len(given) != Digits {
		return 0, false
	}
	cur := Step(now)
	found, matched := int64(0), 0
	for s := cur - Skew; s <= cur+Skew; s++ {
		if subtle.ConstantTimeCompare([]byte(code(key, s)), []byte(given)) == 1 && matched == 0 {
			found, matched = s, 1
		}
	}
	return found, matched == 1
}

// NormalizeCode drops the spaces and hyphens people type inside a code.
func NormalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// URI returns the otpauth URI of a secret, which authenticator apps read
// from a QR code: the issuer and the account name label it.
func URI(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", strconv.Itoa(Digits))
	v.Set("period", strconv.Itoa(int(Period/time.Second)))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + v.Encode()
}
