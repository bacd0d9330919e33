-- As store/migrations/sqlite/0023_rolled_to.sql.
ALTER TABLE api_tokens ADD COLUMN rolled_to TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN rolled_to TEXT COLLATE "C" NOT NULL DEFAULT '';
