-- Leak response (SPEC §10.1): an API token or client credential whose
-- secret was reported found is kept, revoked for good, with the reason;
-- canary API tokens never authorise. Client secrets are found by their
-- digest, current or rolled-over.
ALTER TABLE api_tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN canary INTEGER NOT NULL DEFAULT 0;
ALTER TABLE client_credentials ADD COLUMN revoked_at INTEGER;
ALTER TABLE client_credentials ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX client_credentials_secret ON client_credentials (secret_hash);
CREATE INDEX client_credentials_prev_secret ON client_credentials (prev_secret_hash);
