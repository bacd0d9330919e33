-- User search (GET /v1/users?q=) matches the beginning of the e-mail
-- address or of the name in any case, as a range over these indexes
-- (store/users.go, userFilter). Only adds: a release before this one
-- serves on it unchanged (docs/deploy.md, "Upgrading").
CREATE INDEX users_email_search ON users (account_id, email_key);
CREATE INDEX users_name_search ON users (account_id, LOWER(name));
