-- Quota counts (SPEC §10.5): the requests a quota's budget admitted in one
-- period, written with the usage counts, so that a single node's restart
-- does not start its periods again from nothing. budget is the rate
-- limiter's key of the quota ("quota:<subject id>"), period its name
-- ("2026-12" or "2026-12-04", UTC).
CREATE TABLE quota_counts (
    account_id TEXT NOT NULL,
    budget     TEXT NOT NULL,
    period     TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, budget, period)
);
