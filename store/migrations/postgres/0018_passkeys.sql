-- As store/migrations/sqlite/0018_passkeys.sql.
CREATE TABLE passkeys (
    id            TEXT COLLATE "C" PRIMARY KEY,
    account_id    TEXT COLLATE "C" NOT NULL,
    user_id       TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    credential_id TEXT COLLATE "C" NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    credential    TEXT NOT NULL,
    sign_count    BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

CREATE TABLE passkey_challenges (
    id         TEXT COLLATE "C" PRIMARY KEY,
    purpose    TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL DEFAULT '',
    sign_in_id TEXT COLLATE "C" NOT NULL DEFAULT '',
    session    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX passkey_challenges_expires ON passkey_challenges (expires_at);
