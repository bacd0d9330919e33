-- As store/migrations/sqlite/0016_registration.sql.
CREATE TABLE registered_clients (
    id            TEXT COLLATE "C" PRIMARY KEY,
    client_id     TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes        TEXT,
    homepage_url  TEXT NOT NULL DEFAULT '',
    remote_addr   TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX registered_clients_used ON registered_clients (last_used_at, created_at);

ALTER TABLE tokens ADD COLUMN resource TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN resource TEXT COLLATE "C" NOT NULL DEFAULT '';
