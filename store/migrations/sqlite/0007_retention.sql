-- Retry-safe refresh rotation (docs/api-access.md): the rotation that uses
-- a refresh token records who made it and the successor pair it answered,
-- sealed with a key derived from the used refresh token itself, so only a
-- holder of that token can open it and the database alone reveals nothing.
-- A row is kept for the refresh grace period only (then pruned).
CREATE TABLE refresh_retries (
    token_id     TEXT PRIMARY KEY,
    client_addr  TEXT NOT NULL,
    successor_id TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX refresh_retries_created ON refresh_retries (created_at);

-- Continuous pruning (docs/deploy.md, "What is kept and for how long"):
-- indexes for the deletions, and a row-based lease so that one node of a
-- cluster prunes at a time.
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_used ON tokens (used_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX audit_log_created ON audit_log (created_at);
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
