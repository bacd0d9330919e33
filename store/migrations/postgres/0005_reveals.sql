-- As store/migrations/sqlite/0005_reveals.sql.
CREATE TABLE reveals (
    id         TEXT COLLATE "C" PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX reveals_expires ON reveals (expires_at);
