-- As store/migrations/sqlite/0012_apps.sql.
CREATE TABLE apps (
    id                     TEXT COLLATE "C" PRIMARY KEY,
    account_id             TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    owner_id               TEXT COLLATE "C" NOT NULL,
    name                   TEXT NOT NULL,
    type                   TEXT NOT NULL,
    client_id              TEXT COLLATE "C" NOT NULL UNIQUE,
    secret_hash            TEXT NOT NULL,
    prev_secret_hash       TEXT NOT NULL DEFAULT '',
    prev_secret_expires_at BIGINT,
    redirect_uris          TEXT NOT NULL,
    scopes                 TEXT,
    homepage_url           TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    last_used_at           BIGINT
);
CREATE INDEX apps_account ON apps (account_id, id);
CREATE INDEX apps_owner ON apps (owner_id, id);

CREATE TABLE app_approvals (
    account_id  TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    app_id      TEXT COLLATE "C" NOT NULL,
    approved_by TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, app_id)
);

CREATE TABLE authorizations (
    id           TEXT COLLATE "C" PRIMARY KEY,
    account_id   TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    app_id       TEXT COLLATE "C" NOT NULL,
    client_id    TEXT COLLATE "C" NOT NULL,
    scopes       TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (user_id, client_id)
);
CREATE INDEX authorizations_account ON authorizations (account_id, id);
CREATE INDEX authorizations_client ON authorizations (client_id);

CREATE TABLE auth_codes (
    id             TEXT COLLATE "C" PRIMARY KEY,
    code_hash      TEXT NOT NULL UNIQUE,
    account_id     TEXT COLLATE "C" NOT NULL REFERENCES accounts (id),
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    client_id      TEXT COLLATE "C" NOT NULL,
    redirect_uri   TEXT NOT NULL,
    challenge      TEXT NOT NULL,
    scopes         TEXT,
    family_id      TEXT COLLATE "C" NOT NULL,
    user_epoch     BIGINT NOT NULL,
    password_epoch BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);
