-- The whole Gatehouse schema, as store/migrations/sqlite/0001_init.sql in
-- PostgreSQL types. Times are unix microseconds (UTC) in BIGINT; booleans
-- are integers 0/1, as on SQLite, so the same queries run on both. Ids and
-- other keys that lists compare and order use the "C" collation so that
-- they sort byte-wise, as on SQLite, whatever the database's locale.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    account_id    TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    email         TEXT NOT NULL,
    email_key     TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    roles         TEXT NOT NULL,
    operator      INTEGER NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_account ON users (account_id, id);

CREATE TABLE workspaces (
    id          TEXT COLLATE "C" PRIMARY KEY,
    account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    owner_id    TEXT COLLATE "C" NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX workspaces_account ON workspaces (account_id, id);
CREATE INDEX workspaces_owner ON workspaces (owner_id);

CREATE TABLE workspace_members (
    workspace_id TEXT COLLATE "C" NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user ON workspace_members (user_id);

-- API access applications (SPEC §3.1): at most one per user.
CREATE TABLE api_applications (
    id                    TEXT COLLATE "C" PRIMARY KEY,
    account_id            TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    user_id               TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES users (id),
    client_id             TEXT COLLATE "C" NOT NULL UNIQUE,
    access_token_ttl_days BIGINT NOT NULL,
    created_at            BIGINT NOT NULL
);

-- Developer client credentials (SPEC §3.3).
CREATE TABLE client_credentials (
    id          TEXT COLLATE "C" PRIMARY KEY,
    account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    user_id     TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    name        TEXT NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX client_credentials_user ON client_credentials (user_id, id);

-- Named static API tokens (SPEC §3.2).
CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id, id);

-- Issued OAuth access and refresh tokens.
CREATE TABLE tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    account_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    method     TEXT NOT NULL,
    client_id  TEXT COLLATE "C" NOT NULL,
    family_id  TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_client ON tokens (client_id);
CREATE INDEX tokens_family ON tokens (family_id);

CREATE TABLE audit_log (
    id          TEXT COLLATE "C" PRIMARY KEY,
    account_id  TEXT COLLATE "C" NOT NULL,
    actor_id    TEXT COLLATE "C" NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id   TEXT COLLATE "C" NOT NULL,
    details     TEXT NOT NULL,
    remote_addr TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);
