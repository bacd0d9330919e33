-- What replaced an API token or a client credential by a roll: rolled_to is
-- the replacement's id, '' for none. A roll of one already replaced is
-- refused (conflict), so a retried roll, or a credential revoked for good
-- rolled again, makes no second replacement (a client credential rolled in
-- place keeps its row and is never marked). Expand only: a node of the
-- previous release writes '' and refuses nothing.
ALTER TABLE api_tokens ADD COLUMN rolled_to TEXT NOT NULL DEFAULT '';
ALTER TABLE client_credentials ADD COLUMN rolled_to TEXT NOT NULL DEFAULT '';
