-- As store/migrations/sqlite/0004_least_privilege.sql.
ALTER TABLE api_tokens ADD COLUMN scopes TEXT;
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE api_tokens ADD COLUMN created_by TEXT COLLATE "C" NOT NULL DEFAULT '';

ALTER TABLE client_credentials ADD COLUMN scopes TEXT;
ALTER TABLE client_credentials ADD COLUMN expires_at BIGINT;
ALTER TABLE client_credentials ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE client_credentials ADD COLUMN created_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN last_used_at BIGINT;
ALTER TABLE client_credentials ADD COLUMN prev_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN prev_secret_expires_at BIGINT;

ALTER TABLE api_applications ADD COLUMN scopes TEXT;
ALTER TABLE api_applications ADD COLUMN created_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE api_applications ADD COLUMN last_used_at BIGINT;

ALTER TABLE tokens ADD COLUMN scopes TEXT;

CREATE INDEX api_tokens_created_by ON api_tokens (created_by);
CREATE INDEX client_credentials_created_by ON client_credentials (created_by);
CREATE INDEX api_applications_created_by ON api_applications (created_by);
