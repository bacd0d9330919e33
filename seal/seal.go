// Package seal encrypts the secrets Gatehouse must read back — webhook
// signing secrets, TOTP keys — for the store, with AES-256-GCM under a key
// derived from the server's key for one purpose, each value bound to its
// owner, so that a copy of the database alone does not disclose them.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
)

// ErrSealed is returned by Sealer.Open for a sealed value that does not
// open under the key: sealed under another key, for another owner, or
// altered.
var ErrSealed = errors.New("seal: sealed value does not open under this key")

// sealVersion starts every sealed value, so a later format can be told
// apart.
const sealVersion = "v1."

// Sealer encrypts secrets for the store with AES-256-GCM under a key
// derived from the server's key for one purpose; each value is bound to
// its owner (a user's or an endpoint's id) as associated data, so a sealed
// secret copied to another row does not open. A Sealer is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns the sealer of a server key for purpose (any length; a key
// of at least 32 random bytes is expected). The sealing key is
// HMAC-SHA-256 of the purpose under the server key, so the same key serves
// token digests and every other purpose without two uses meeting.
func New(serverKey []byte, purpose string) *Sealer {
	m := hmac.New(sha256.New, serverKey)
	m.Write([]byte("gatehouse seal v1\x00" + purpose))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &Sealer{aead: aead}
}

// Seal returns secret sealed for owner.
func (s *Sealer) Seal(owner, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return sealVersion + base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), []byte(owner)))
}

// Open returns the secret sealed for owner, or ErrSealed.
func (s *Sealer) Open(owner, sealed string) (string, error) {
	body, ok := strings.CutPrefix(sealed, sealVersion)
	if !ok {
		return "", ErrSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", ErrSealed
	}
	n := s.aead.NonceSize()
	out, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(owner))
	if err != nil {
		return "", ErrSealed
	}
	return string(out), nil
}
