-- Command-line tools and agents (SPEC §10.4): clients that registered
-- themselves (RFC 7591), owned by no account and removed after 30 days
-- unused; the resource (RFC 8707) an authorization code and a token are
-- bound to, '' for none.
CREATE TABLE registered_clients (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    scopes       TEXT,
    homepage_url TEXT NOT NULL DEFAULT '',
    remote_addr  TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX registered_clients_used ON registered_clients (last_used_at, created_at);

ALTER TABLE tokens ADD COLUMN resource TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN resource TEXT NOT NULL DEFAULT '';
