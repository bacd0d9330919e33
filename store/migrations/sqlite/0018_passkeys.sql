-- Passkeys (WebAuthn credentials) of console sign-in (SPEC §10.6).
--
-- passkeys: one row per credential. credential_id is the base64url of the
-- authenticator's raw credential id, unique across users; credential is
-- the library's record of it as JSON (public key, flags, AAGUID: nothing
-- secret); sign_count the last signature counter accepted.
CREATE TABLE passkeys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id),
    credential_id TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- Ceremonies waiting for the browser's answer: the library's session
-- data (the challenge) by id; a row is deleted by the answer that uses
-- it, so a challenge is answered once, and it expires at expires_at.
-- user_id is empty for a password-less sign-in; sign_in_id names the
-- pending sign-in a second-factor challenge belongs to.
CREATE TABLE passkey_challenges (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL DEFAULT '',
    sign_in_id TEXT NOT NULL DEFAULT '',
    session    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
