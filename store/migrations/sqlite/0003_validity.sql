-- Validity by parent (docs/design.md, "Revocation"): a token or session
-- carries the epochs of its user at issuance and works only while they are
-- unchanged; disabling a user advances epoch, changing a password advances
-- password_epoch. A revoked refresh family is a row here, so tokens a
-- concurrent rotation inserts into it are dead too. Accounts can be
-- suspended.
ALTER TABLE users ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN password_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE tokens ADD COLUMN user_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN password_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN password_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE revoked_families (
    family_id  TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);

-- The audit log names the credential a change was made with (API token,
-- client credential, API access application, session or password token)
-- as well as the user it acted as.
ALTER TABLE audit_log ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
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
