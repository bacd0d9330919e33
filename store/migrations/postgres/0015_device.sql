-- As store/migrations/sqlite/0015_device.sql.
CREATE TABLE device_codes (
    id               TEXT COLLATE "C" PRIMARY KEY,
    device_hash      TEXT NOT NULL UNIQUE,
    user_code_hash   TEXT NOT NULL UNIQUE,
    client_id        TEXT COLLATE "C" NOT NULL,
    requested        TEXT,
    status           TEXT NOT NULL,
    account_id       TEXT COLLATE "C" NOT NULL DEFAULT '',
    user_id          TEXT COLLATE "C" NOT NULL DEFAULT '',
    scopes           TEXT,
    family_id        TEXT COLLATE "C" NOT NULL DEFAULT '',
    user_epoch       BIGINT NOT NULL DEFAULT 0,
    password_epoch   BIGINT NOT NULL DEFAULT 0,
    interval_seconds BIGINT NOT NULL,
    last_polled_at   BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
