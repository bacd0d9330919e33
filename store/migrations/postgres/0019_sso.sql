-- As store/migrations/sqlite/0019_sso.sql.
CREATE TABLE sso_configs (
    account_id    TEXT COLLATE "C" PRIMARY KEY REFERENCES accounts (id),
    issuer        TEXT NOT NULL,
    client_id     TEXT COLLATE "C" NOT NULL,
    sealed_secret TEXT NOT NULL DEFAULT '',
    domains       TEXT NOT NULL DEFAULT '[]',
    required      INTEGER NOT NULL DEFAULT 0,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE sso_logins (
    id          TEXT COLLATE "C" PRIMARY KEY,
    state_hash  TEXT COLLATE "C" NOT NULL UNIQUE,
    cookie_hash TEXT COLLATE "C" NOT NULL,
    account_id  TEXT COLLATE "C" NOT NULL,
    client_addr TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);
