package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Clients that registered themselves (RFC 7591, SPEC §10.4). They are
// read as applications (gatehouse.App with Registered set): public, owned
// by no account, with the columns an application has and they lack
// empty.

// registeredAsApp selects a registered client in thirdPartyAppColumns'
// shape, for scanThirdPartyApp.
const registeredAsApp = `SELECT id, '', '', name, 'public', client_id, '', '', CAST(NULL AS BIGINT), redirect_uris, scopes, homepage_url, created_at, last_used_at
	FROM registered_clients`

func scanRegistered(sc scanner) (*gatehouse.App, error) {
	a, err := scanThirdPartyApp(sc)
	if err != nil {
		return nil, err
	}
	a.Type, a.Registered = gatehouse.AppPublic, true
	return a, nil
}

// CreateRegisteredClient stores a client that registered itself from
// remoteAddr.
func (t *Tx) CreateRegisteredClient(a *gatehouse.App, remoteAddr string) error {
	_, err := t.exec(`INSERT INTO registered_clients (id, client_id, name, redirect_uris, scopes, homepage_url, remote_addr, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.ClientID, a.Name, redirectsText(a.RedirectURIs), nullScopes(a.Scopes), a.HomepageURL,
		remoteAddr, micros(a.CreatedAt))
	return t.s.conflict(err, "client")
}

// registeredByClientID returns the registered client with clientID, or
// not_found.
func (s *Store) registeredByClientID(ctx context.Context, clientID string) (*gatehouse.App, error) {
	a, err := scanRegistered(s.readRow(ctx, registeredAsApp+` WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("application")
	}
	return a, err
}

// registered returns, inside the transaction, the registered client with
// id or client id, locked until the transaction ends, or not_found.
func (t *Tx) registered(id string) (*gatehouse.App, error) {
	a, err := scanRegistered(t.row(registeredAsApp+` WHERE id = ? OR client_id = ?`+t.forUpdate(), id, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, gatehouse.NotFound("application")
	}
	return a, err
}

// RegisteredUnused is how long a registered client is kept after its last
// use (or its registration, when it was never used): SPEC §10.4's 30 days.
const RegisteredUnused = 30 * 24 * time.Hour
