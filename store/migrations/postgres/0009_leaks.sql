-- As store/migrations/sqlite/0008_leaks.sql.
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_credentials ADD COLUMN revoked_at BIGINT;
ALTER TABLE client_credentials ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX client_credentials_secret ON client_credentials (secret_hash);
CREATE INDEX client_credentials_prev_secret ON client_credentials (prev_secret_hash);
