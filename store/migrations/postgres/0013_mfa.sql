-- As store/migrations/sqlite/0013_mfa.sql.
CREATE TABLE mfa_totp (
    user_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id),
    sealed       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    code_hash  TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE sign_ins (
    id             TEXT COLLATE "C" PRIMARY KEY,
    token_hash     TEXT COLLATE "C" NOT NULL UNIQUE,
    account_id     TEXT COLLATE "C" NOT NULL,
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    client_addr    TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    user_epoch     BIGINT NOT NULL,
    password_epoch BIGINT NOT NULL
);
CREATE INDEX sign_ins_expires ON sign_ins (expires_at);

ALTER TABLE sessions ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
