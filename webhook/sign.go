package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every endpoint secret, as Standard Webhooks writes
// them: "whsec_" and the base64 of the key's bytes.
const SecretPrefix = "whsec_"

// secretBytes is the length of a new secret's key: 256 bits.
const secretBytes = 32

// NewSecret returns a new random endpoint secret, "whsec_…".
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretKey returns the HMAC key of secret: the bytes its base64 after
// "whsec_" encodes.
func SecretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook: a secret starts with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook: a secret's key is base64")
	}
	return key, nil
}

// Sign returns one Standard Webhooks signature, "v1,<base64 HMAC-SHA256>",
// of body sent as message id at ts under key.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Signatures returns the webhook-signature header's value: one signature
// per key, space-separated (two while a rolled secret's overlap lasts).
func Signatures(keys [][]byte, id string, ts time.Time, body []byte) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = Sign(k, id, ts, body)
	}
	return strings.Join(parts, " ")
}

// Verify reports whether header (a webhook-signature value) holds a
// signature of body sent as id at ts under key. It is what a receiver
// does, kept here for the tests and the documentation's example.
func Verify(key []byte, header, id string, ts time.Time, body []byte) bool {
	want := Sign(key, id, ts, body)
	for _, sig := range strings.Fields(header) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}
