-- Revocation by possession of a third-party application's client secret
-- (SPEC §10.1): the secret is found by its digest, current or previous,
-- as a client credential's is (0009_leaks).
CREATE INDEX apps_secret ON apps (secret_hash);
CREATE INDEX apps_prev_secret ON apps (prev_secret_hash);
