-- As store/migrations/sqlite/0010_revocation_log.sql.
CREATE TABLE revocation_log (
    n          BIGINT PRIMARY KEY,
    subjects   TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX revocation_log_created ON revocation_log (created_at);
