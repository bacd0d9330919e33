-- Third-party applications (SPEC §10.3): registered applications, their
-- approval by other accounts, users' authorizations, and authorization
-- codes (only their digests).
CREATE TABLE apps (
    id                     TEXT PRIMARY KEY,
    account_id             TEXT NOT NULL REFERENCES accounts (id),
    owner_id               TEXT NOT NULL,
    name                   TEXT NOT NULL,
    type                   TEXT NOT NULL,
    client_id              TEXT NOT NULL UNIQUE,
    secret_hash            TEXT NOT NULL,
    prev_secret_hash       TEXT NOT NULL DEFAULT '',
    prev_secret_expires_at INTEGER,
    redirect_uris          TEXT NOT NULL,
    scopes                 TEXT,
    homepage_url           TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    last_used_at           INTEGER
);
CREATE INDEX apps_account ON apps (account_id, id);
CREATE INDEX apps_owner ON apps (owner_id, id);

CREATE TABLE app_approvals (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    app_id      TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, app_id)
);

CREATE TABLE authorizations (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    app_id       TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    scopes       TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (user_id, client_id)
);
CREATE INDEX authorizations_account ON authorizations (account_id, id);
CREATE INDEX authorizations_client ON authorizations (client_id);

CREATE TABLE auth_codes (
    id             TEXT PRIMARY KEY,
    code_hash      TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    user_id        TEXT NOT NULL REFERENCES users (id),
    client_id      TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    challenge      TEXT NOT NULL,
    scopes         TEXT,
    family_id      TEXT NOT NULL,
    user_epoch     INTEGER NOT NULL,
    password_epoch INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
