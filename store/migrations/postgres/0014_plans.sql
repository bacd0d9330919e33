-- As store/migrations/sqlite/0014_plans.sql.
CREATE TABLE plans (
    subject_id           TEXT COLLATE "C" PRIMARY KEY,
    account_id           TEXT COLLATE "C" NOT NULL,
    subject_kind         TEXT NOT NULL,
    allowed_ips          TEXT NOT NULL DEFAULT '',
    metadata             TEXT NOT NULL DEFAULT '',
    external_id          TEXT COLLATE "C" NOT NULL DEFAULT '',
    rate_daily           BIGINT,
    rate_burst           BIGINT,
    rate_burst_window    BIGINT,
    quota_limit          BIGINT,
    quota_period         TEXT NOT NULL DEFAULT '',
    updated_at           BIGINT NOT NULL
);
CREATE INDEX plans_account ON plans (account_id, subject_kind);
