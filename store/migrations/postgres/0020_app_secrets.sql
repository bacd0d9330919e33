-- As store/migrations/sqlite/0020_app_secrets.sql.
CREATE INDEX apps_secret ON apps (secret_hash);
CREATE INDEX apps_prev_secret ON apps (prev_secret_hash);
