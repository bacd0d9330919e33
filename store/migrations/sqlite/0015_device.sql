-- Device authorizations (RFC 8628, SPEC §10.4): only the digests of the
-- device code and the user code are kept.
CREATE TABLE device_codes (
    id               TEXT PRIMARY KEY,
    device_hash      TEXT NOT NULL UNIQUE,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    requested        TEXT,
    status           TEXT NOT NULL,
    account_id       TEXT NOT NULL DEFAULT '',
    user_id          TEXT NOT NULL DEFAULT '',
    scopes           TEXT,
    family_id        TEXT NOT NULL DEFAULT '',
    user_epoch       INTEGER NOT NULL DEFAULT 0,
    password_epoch   INTEGER NOT NULL DEFAULT 0,
    interval_seconds INTEGER NOT NULL,
    last_polled_at   INTEGER,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    used_at          INTEGER
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
