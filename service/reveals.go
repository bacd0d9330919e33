package service

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/store"
)

// RevealLifetime is how long a stashed secret waits to be shown.
const RevealLifetime = 5 * time.Minute

// Stash keeps a secret to be shown once, later, to the admin UI session
// of p (a session principal), and returns its reference: the reveal's id
// and the key that opens it, to be kept by that browser only. The store
// holds the secret sealed with that key, so neither a copy of the
// database nor the reference alone discloses it.
func (s *Service) Stash(ctx context.Context, p *gatehouse.Principal, secret []byte) (ref string, err error) {
	if p.Method != gatehouse.MethodSession {
		return "", gatehouse.Forbidden("Only an admin UI session can stash a secret")
	}
	key := make([]byte, 32)
	rand.Read(key)
	now := s.now()
	r := &store.Reveal{ID: gatehouse.NewID("rev"), SessionID: p.CredentialID, CreatedAt: now, ExpiresAt: now.Add(RevealLifetime)}
	aead, err := revealCipher(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	r.Sealed = base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, secret, []byte(r.ID+"\x00"+r.SessionID)))
	if err := s.update(ctx, func(tx *store.Tx) error { return tx.CreateReveal(r) }); err != nil {
		return "", err
	}
	return r.ID + "." + base64.RawURLEncoding.EncodeToString(key), nil
}

// Reveal returns the secret stashed under ref for p's session, once: a
// second call, another session, an expired reveal or a wrong key are
// not_found.
func (s *Service) Reveal(ctx context.Context, p *gatehouse.Principal, ref string) ([]byte, error) {
	id, encKey, ok := strings.Cut(ref, ".")
	key, err := base64.RawURLEncoding.DecodeString(encKey)
	if !ok || err != nil || len(key) != 32 || p.Method != gatehouse.MethodSession {
		return nil, gatehouse.NotFound("secret")
	}
	var sealed string
	if err := s.update(ctx, func(tx *store.Tx) (err error) {
		sealed, err = tx.TakeReveal(id, p.CredentialID, s.now())
		return err
	}); err != nil {
		return nil, err
	}
	aead, err := revealCipher(key)
	if err != nil {
		return nil, err
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, gatehouse.NotFound("secret")
	}
	out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(id+"\x00"+p.CredentialID))
	if err != nil {
		return nil, gatehouse.NotFound("secret")
	}
	return out, nil
}

func revealCipher(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
