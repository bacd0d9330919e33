-- Usage by who a request was made as and the credential it came through,
-- with refused requests counted apart from served ones. user_id is ''
-- for an API token acting as nobody; credential is "<method>:<id>" (the
-- API token's id, the client id of a client credential or API access
-- application, nothing for the password grant).
CREATE TABLE usage_counts (
    account_id   TEXT COLLATE "C" NOT NULL,
    day          TEXT COLLATE "C" NOT NULL,
    user_id      TEXT COLLATE "C" NOT NULL,
    credential   TEXT COLLATE "C" NOT NULL,
    served       BIGINT NOT NULL DEFAULT 0,
    unauthorized BIGINT NOT NULL DEFAULT 0,
    forbidden    BIGINT NOT NULL DEFAULT 0,
    limited      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, day, user_id, credential)
);
-- Earlier counts knew only the budget a request was charged to: a user's
-- keep their user with no known credential, an API token's its token.
INSERT INTO usage_counts (account_id, day, user_id, credential, served)
    SELECT account_id, day, substr(principal, 6), '', count FROM usage_daily WHERE principal LIKE 'user:%';
INSERT INTO usage_counts (account_id, day, user_id, credential, served)
    SELECT account_id, day, '', 'api_token:' || substr(principal, 10), count FROM usage_daily WHERE principal LIKE 'apitoken:%';
DROP TABLE usage_daily;
