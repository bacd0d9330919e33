-- Second factors of console sign-in (SPEC §10.6).
--
-- mfa_totp: a user's TOTP secret, sealed under the server key (never in
-- clear); confirmed_at is NULL until the user proved a code, and
-- last_step is the last time step whose code was accepted: a code is
-- accepted only for a later step, in one conditional UPDATE.
CREATE TABLE mfa_totp (
    user_id      TEXT PRIMARY KEY REFERENCES users (id),
    sealed       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0
);

-- Recovery codes, by the digest of their canonical form; used_at is set
-- once, by a conditional UPDATE.
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id),
    code_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- Sign-ins waiting for their second factor: the password was right, the
-- browser holds the cookie whose digest is token_hash, and a session is
-- made only when a code completes it (once: the row is deleted).
CREATE TABLE sign_ins (
    id             TEXT PRIMARY KEY,
    token_hash     TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id),
    client_addr    TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    user_epoch     INTEGER NOT NULL,
    password_epoch INTEGER NOT NULL
);
CREATE INDEX sign_ins_expires ON sign_ins (expires_at);

-- Where a session was begun, for the list of sessions.
ALTER TABLE sessions ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
