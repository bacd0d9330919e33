-- As store/migrations/sqlite/0008_user_search.sql; the name is lowercased
-- in the database's locale and ordered byte-wise, as the search compares it.
CREATE INDEX users_email_search ON users (account_id, email_key);
CREATE INDEX users_name_search ON users (account_id, (LOWER(name) COLLATE "C"));
