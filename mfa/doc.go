// Package mfa holds the second factors of console sign-in (SPEC §10.6):
// TOTP codes (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step
// either side accepted), one-time recovery codes, and the sealing of TOTP
// secrets under the server's key. It keeps no state: which step was used
// last, which recovery codes are spent and who enrolled what live in the
// store, decided by the rules in service/. Standard library only.
package mfa
