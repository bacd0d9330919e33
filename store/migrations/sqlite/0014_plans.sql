-- Plans (SPEC §10.5): what is set on one credential (an API token, a
-- client credential, an API access application) or one user beyond its
-- kind's own columns — the client addresses it may be used from, its
-- metadata and external id, its own rate limit and quota. subject_id is
-- the credential's id (an API access application's client id) or the
-- user's id; a row with every field empty is the same as no row.
CREATE TABLE plans (
    subject_id           TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL,
    subject_kind         TEXT NOT NULL,
    allowed_ips          TEXT NOT NULL DEFAULT '',
    metadata             TEXT NOT NULL DEFAULT '',
    external_id          TEXT NOT NULL DEFAULT '',
    rate_daily           INTEGER,
    rate_burst           INTEGER,
    rate_burst_window    INTEGER,
    quota_limit          INTEGER,
    quota_period         TEXT NOT NULL DEFAULT '',
    updated_at           INTEGER NOT NULL
);
CREATE INDEX plans_account ON plans (account_id, subject_kind);
