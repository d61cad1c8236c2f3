-- Every per-host fact carries its host, so that several opswatch instances can one day share
-- this store without colliding: checks, series, conditions, cursors and the store probe get a
-- `host` column, and their unique keys include it. Keep in step with ../sqlite/0006_host.sql.
--
-- Existing rows get the host '' ("not claimed yet"); the first opswatch to open the store
-- claims them for its configured `host` (Store::claim_unowned_rows), since SQL cannot know
-- the machine's name.

ALTER TABLE store_probe DROP COLUMN id;
ALTER TABLE store_probe ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE store_probe ADD PRIMARY KEY (host);

ALTER TABLE checks ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE checks DROP CONSTRAINT checks_name_key;
ALTER TABLE checks ADD CONSTRAINT checks_host_name_key UNIQUE (host, name);

ALTER TABLE series ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE series DROP CONSTRAINT series_name_key;
ALTER TABLE series ADD CONSTRAINT series_host_name_key UNIQUE (host, name);

ALTER TABLE conditions ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE conditions DROP CONSTRAINT conditions_pkey;
ALTER TABLE conditions ADD PRIMARY KEY (host, key);

ALTER TABLE cursors ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE cursors DROP CONSTRAINT cursors_pkey;
ALTER TABLE cursors ADD PRIMARY KEY (host, name);
