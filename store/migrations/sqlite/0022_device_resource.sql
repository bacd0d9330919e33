-- The resource (RFC 8707) a device authorization's tokens are bound to,
-- in gatehouse.ResourceKey's form; '' for none. Expand only: a node of the
-- previous release writes '' and binds nothing, as before.
ALTER TABLE device_codes ADD COLUMN resource TEXT NOT NULL DEFAULT '';
