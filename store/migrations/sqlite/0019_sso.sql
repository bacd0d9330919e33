-- OpenID Connect single sign-on per account (SPEC §10.6).
--
-- sso_configs: an account's provider. The client secret is sealed under
-- the server key (never in clear); domains is a JSON array of the e-mail
-- domains a signed-in address may have; required turns password sign-in
-- off for the account's users (the operator aside).
CREATE TABLE sso_configs (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (id),
    issuer        TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    sealed_secret TEXT NOT NULL DEFAULT '',
    domains       TEXT NOT NULL DEFAULT '[]',
    required      INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
);

-- Sign-ins sent to the provider and not yet back: the state sent with
-- the authorization request and the browser's cookie, both by digest.
-- The PKCE verifier and the nonce derive from the cookie, so nothing
-- here completes a sign-in without the browser. A row is taken (deleted)
-- once, by the first callback that names its state.
CREATE TABLE sso_logins (
    id          TEXT PRIMARY KEY,
    state_hash  TEXT NOT NULL UNIQUE,
    cookie_hash TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
