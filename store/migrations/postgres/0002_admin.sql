-- Admin UI sessions and per-day usage counts.
CREATE TABLE sessions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE usage_daily (
    account_id TEXT COLLATE "C" NOT NULL,
    principal  TEXT COLLATE "C" NOT NULL,
    day        TEXT COLLATE "C" NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (account_id, principal, day)
);
