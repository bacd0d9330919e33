-- Signed webhooks (SPEC §10.2, docs/webhooks.md). An endpoint keeps its
-- signing secret sealed under the server key, and the secret it replaced
-- until the overlap of a roll ends. An event is written in the same
-- transaction as the change it reports, with one delivery per matching
-- endpoint (the outbox); a node claims a due delivery by leasing it until
-- lease_until, so that one node makes each attempt.
CREATE TABLE webhook_endpoints (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts (id),
    url               TEXT NOT NULL,
    events            TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    enabled           INTEGER NOT NULL DEFAULT 1,
    disabled_reason   TEXT NOT NULL DEFAULT '',
    secret_sealed     TEXT NOT NULL,
    prev_sealed       TEXT NOT NULL DEFAULT '',
    prev_expires_at   INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id, id);
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_events_created ON webhook_events (created_at);
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    type            TEXT NOT NULL,
    attempt         INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    response_status INTEGER NOT NULL DEFAULT 0,
    duration_ms     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    lease_holder    TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
-- A time-driven notice (credential.expiring and credential.expired per
-- credential, stage and expiry; signin.throttled per user and quarter
-- hour) is sent once: its row, written with the event, says that some node
-- sent it.
CREATE TABLE webhook_notices (
    credential_id TEXT NOT NULL,
    stage         TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (credential_id, stage, expires_at)
);
CREATE INDEX webhook_notices_created ON webhook_notices (created_at);
