-- Admin UI sessions and per-day usage counts.
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE usage_daily (
    account_id TEXT NOT NULL,
    principal  TEXT NOT NULL,
    day        TEXT NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal, day)
);
