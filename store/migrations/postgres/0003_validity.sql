-- As store/migrations/sqlite/0003_validity.sql.
ALTER TABLE users ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE tokens ADD COLUMN user_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN password_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN password_epoch BIGINT NOT NULL DEFAULT 0;

CREATE TABLE revoked_families (
    family_id  TEXT COLLATE "C" PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);

-- The audit log names the credential a change was made with (API token,
-- client credential, API access application, session or password token)
-- as well as the user it acted as.
ALTER TABLE audit_log ADD COLUMN credential_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN credential TEXT NOT NULL DEFAULT '';

-- A counter of committed revoking changes, advanced in the same
-- transaction: every node reads it now and then, so that a change made
-- outside any node (gatehouse recover, a script on the database) still
-- empties their caches.
CREATE TABLE changes (
    name TEXT PRIMARY KEY,
    n    BIGINT NOT NULL
);
INSERT INTO changes (name, n) VALUES ('revoking', 0);
