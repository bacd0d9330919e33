-- Secrets waiting to be shown once in the admin UI, bound to the session
-- that made them. sealed is the secret encrypted with a key only that
-- browser holds (in a cookie), so the database alone reveals nothing; the
-- row is deleted when it is shown, or soon after expires_at.
CREATE TABLE reveals (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX reveals_expires ON reveals (expires_at);
