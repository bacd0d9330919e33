package store

import (
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Reveal is a secret waiting to be shown once to one admin UI session.
// Sealed is the secret encrypted with a key the store never sees.
type Reveal struct {
	ID        string
	SessionID string
	Sealed    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CreateReveal stores a reveal, and deletes the reveals that expired
// before it was made.
func (t *Tx) CreateReveal(r *Reveal) error {
	if _, err := t.exec(`DELETE FROM reveals WHERE expires_at <= ?`, micros(r.CreatedAt)); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO reveals (id, session_id, sealed, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		r.ID, r.SessionID, r.Sealed, micros(r.CreatedAt), micros(r.ExpiresAt))
	return err
}

// TakeReveal returns the sealed secret of the session's reveal with id
// and deletes it, so that it can be taken once; not_found when there is
// none — already taken, expired at now, or another session's.
func (t *Tx) TakeReveal(id, sessionID string, now time.Time) (string, error) {
	var sealed string
	var expires int64
	err := t.row(`SELECT sealed, expires_at FROM reveals WHERE id = ? AND session_id = ?`+t.forUpdate(), id, sessionID).Scan(&sealed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", gatehouse.NotFound("secret")
	}
	if err != nil {
		return "", err
	}
	if _, err := t.exec(`DELETE FROM reveals WHERE id = ?`, id); err != nil {
		return "", err
	}
	if !now.Before(fromMicros(expires)) {
		return "", gatehouse.NotFound("secret")
	}
	return sealed, nil
}
