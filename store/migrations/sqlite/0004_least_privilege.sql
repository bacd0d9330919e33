-- Least-privilege credentials (SPEC §9.1). scopes is a space-separated set;
-- NULL means unrestricted. expires_at is NULL for never. created_by is the
-- API token a credential was minted through ('' for none): deleting that
-- token deletes what it minted. A rolled client secret keeps working as
-- prev_secret_hash until prev_secret_expires_at.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE api_tokens ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';

ALTER TABLE client_credentials ADD COLUMN scopes TEXT;
ALTER TABLE client_credentials ADD COLUMN expires_at INTEGER;
ALTER TABLE client_credentials ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE client_credentials ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN last_used_at INTEGER;
ALTER TABLE client_credentials ADD COLUMN prev_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN prev_secret_expires_at INTEGER;

ALTER TABLE api_applications ADD COLUMN scopes TEXT;
ALTER TABLE api_applications ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_applications ADD COLUMN last_used_at INTEGER;

ALTER TABLE tokens ADD COLUMN scopes TEXT;

CREATE INDEX api_tokens_created_by ON api_tokens (created_by);
CREATE INDEX client_credentials_created_by ON client_credentials (created_by);
CREATE INDEX api_applications_created_by ON api_applications (created_by);
