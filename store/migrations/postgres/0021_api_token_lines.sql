-- As store/migrations/sqlite/0021_api_token_lines.sql.
ALTER TABLE api_tokens ADD COLUMN line_id TEXT COLLATE "C" NOT NULL DEFAULT '';
