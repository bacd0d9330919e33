-- The revocation log: what each revoking transaction revoked (subjects,
-- space-separated, such as "u:<user id>"), under the change counter's value
-- it committed, so that a node drops only the cached look-ups that rest on
-- what changed. A counter value without an entry (a release that kept no
-- log, a change by hand) tells readers that anything may have changed.
CREATE TABLE revocation_log (
    n          INTEGER PRIMARY KEY,
    subjects   TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX revocation_log_created ON revocation_log (created_at);
