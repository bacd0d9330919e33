package mfa

import (
	"crypto/rand"
	"strings"
)

// RecoveryCodes is how many recovery codes an enrolment hands out.
const RecoveryCodes = 10

// recoveryAlphabet is Crockford's base32 (no I, L, O, U): 16 symbols of
// it carry 80 bits, too many to guess online or to find from a stored
// SHA-256 digest.
const recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// recoveryLen is the number of symbols of a recovery code.
const recoveryLen = 16

// NewRecoveryCodes returns RecoveryCodes new codes, written in groups of
// four (XXXX-XXXX-XXXX-XXXX).
func NewRecoveryCodes() []string {
	out := make([]string, RecoveryCodes)
	for i := range out {
		b := make([]byte, recoveryLen)
		rand.Read(b)
		var sb strings.Builder
		for j, c := range b {
			if j > 0 && j%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[c&31])
		}
		out[i] = sb.String()
	}
	return out
}

// NormalizeRecoveryCode returns the canonical form of a typed recovery
// code — upper case, without spaces or hyphens, with the letters Crockford
// reads as digits (O as 0, I and L as 1) — or "" when it cannot be one.
// The store keeps the digest of the canonical form.
func NormalizeRecoveryCode(s string) string {
	if len(s) > 64 {
		return ""
	}
	var sb strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return ""
		}
		sb.WriteRune(r)
	}
	if sb.Len() != recoveryLen {
		return ""
	}
	return sb.String()
}
