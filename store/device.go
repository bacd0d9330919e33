package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Device authorizations (RFC 8628, SPEC §10.4).

const deviceColumns = `id, device_hash, user_code_hash, client_id, requested, status, account_id, user_id, scopes, family_id,
	user_epoch, password_epoch, interval_seconds, last_polled_at, created_at, expires_at, used_at, resource`

func scanDevice(sc scanner) (*gatehouse.DeviceCode, error) {
	var (
		d                        gatehouse.DeviceCode
		requested, scopes        sql.NullString
		interval, created, expir int64
		polled, used             sql.NullInt64
	)
	if err := sc.Scan(&d.ID, &d.DeviceHash, &d.UserCodeHash, &d.ClientID, &requested, &d.Status, &d.AccountID, &d.UserID, &scopes,
		&d.FamilyID, &d.UserEpoch, &d.PasswordEpoch, &interval, &polled, &created, &expir, &used, &d.Resource); err != nil {
		return nil, err
	}
	d.Requested, d.Scopes = fromNullScopes(requested), fromNullScopes(scopes)
	d.Interval = time.Duration(interval) * time.Second
	d.LastPolledAt, d.CreatedAt, d.ExpiresAt, d.UsedAt = fromNullMicros(polled), fromMicros(created), fromMicros(expir), fromNullMicros(used)
	return &d, nil
}

// CreateDeviceCode stores a device authorization (its digests); a digest
// already taken is a conflict.
func (t *Tx) CreateDeviceCode(d *gatehouse.DeviceCode) error {
	_, err := t.exec(`INSERT INTO device_codes (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.DeviceHash, d.UserCodeHash, d.ClientID, nullScopes(d.Requested), d.Status, d.AccountID, d.UserID, nullScopes(d.Scopes),
		d.FamilyID, d.UserEpoch, d.PasswordEpoch, int64(d.Interval/time.Second), nullMicros(d.LastPolledAt), micros(d.CreatedAt),
		micros(d.ExpiresAt), nullMicros(d.UsedAt), d.Resource)
	return t.s.conflict(err, "device code")
}

// DeviceByUserCode returns the device authorization whose user code has
// digest hash, or not_found.
func (s *Store) DeviceByUserCode(ctx context.Context, hash string) (*gatehouse.DeviceCode, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	d, err := scanDevice(s.readRow(ctx, `SELECT `+deviceColumns+` FROM device_codes WHERE user_code_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("device code")
	}
	return d, err
}

// DeviceByHash returns the device authorization whose device code has
// digest hash, locked until the transaction ends, or not_found.
func (t *Tx) DeviceByHash(hash string) (*gatehouse.DeviceCode, error) {
	d, err := scanDevice(t.row(`SELECT `+deviceColumns+` FROM device_codes WHERE device_hash = ?`+t.forUpdate(), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("device code")
	}
	return d, err
}

// DecideDevice records a user's decision on a pending, unexpired device
// authorization: won is true for exactly one of any number of concurrent
// callers, so that a user code is used once.
func (t *Tx) DecideDevice(d *gatehouse.DeviceCode, now time.Time) (won bool, err error) {
	res, err := t.exec(`UPDATE device_codes SET status = ?, account_id = ?, user_id = ?, scopes = ?, family_id = ?, user_epoch = ?,
		password_epoch = ? WHERE id = ? AND status = ? AND expires_at > ?`, d.Status, d.AccountID, d.UserID, nullScopes(d.Scopes),
		d.FamilyID, d.UserEpoch, d.PasswordEpoch, d.ID, gatehouse.DevicePending, micros(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// PollDevice records a poll of a device authorization at at, with the
// interval it is held to from then on.
func (t *Tx) PollDevice(id string, interval time.Duration, at time.Time) error {
	_, err := t.exec(`UPDATE device_codes SET interval_seconds = ?, last_polled_at = ? WHERE id = ?`, int64(interval/time.Second), micros(at), id)
	return err
}

// UseDevice marks an approved device authorization used at at, if it was
// not: won is true for exactly one of any number of concurrent callers.
func (t *Tx) UseDevice(id string, at time.Time) (won bool, err error) {
	res, err := t.exec(`UPDATE device_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, micros(at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
