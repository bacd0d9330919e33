-- An API token rolled from another keeps its budgets (the account's
-- per-token limit, its plan's rate limit and quota): line_id is the first
-- token of its line of rolls, '' for a token rolled from none, and its
-- budgets count under it (gatehouse.APIToken.Line). Expand only: a node of
-- the previous release writes '' and counts a rolled token apart.
ALTER TABLE api_tokens ADD COLUMN line_id TEXT NOT NULL DEFAULT '';
