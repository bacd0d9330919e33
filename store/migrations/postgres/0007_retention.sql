-- As store/migrations/sqlite/0007_retention.sql.
CREATE TABLE refresh_retries (
    token_id     TEXT COLLATE "C" PRIMARY KEY,
    client_addr  TEXT NOT NULL,
    successor_id TEXT COLLATE "C" NOT NULL,
    sealed       TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX refresh_retries_created ON refresh_retries (created_at);

CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_used ON tokens (used_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX audit_log_created ON audit_log (created_at);
CREATE TABLE leases (
    name       TEXT COLLATE "C" PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
