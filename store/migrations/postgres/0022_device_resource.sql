-- As store/migrations/sqlite/0022_device_resource.sql.
ALTER TABLE device_codes ADD COLUMN resource TEXT COLLATE "C" NOT NULL DEFAULT '';
