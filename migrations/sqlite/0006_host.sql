-- Every per-host fact carries its host, so that several opswatch instances can one day share
-- a store without colliding: checks, series, conditions, cursors and the store probe get a
-- `host` column, and their unique keys include it. Keep in step with ../postgres/0006_host.sql.
--
-- Existing rows get the host '' ("not claimed yet"); the first opswatch to open the store
-- claims them for its configured `host` (Store::claim_unowned_rows), since SQL cannot know
-- the machine's name.
--
-- SQLite cannot change a UNIQUE constraint in place: each table is rebuilt (create, copy,
-- drop, rename). Store::migrate turns foreign keys off around the migrations so that dropping
-- `checks` and `series` does not cascade into their results and samples; the tables that
-- reference them keep their rows and, after the rename, point at the rebuilt tables.

CREATE TABLE store_probe_new (
    host TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
INSERT INTO store_probe_new (host, at_ms) SELECT '', at_ms FROM store_probe;
DROP TABLE store_probe;
ALTER TABLE store_probe_new RENAME TO store_probe;

CREATE TABLE checks_new (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',          -- up | down | unknown
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_change_ms INTEGER,
    last_error TEXT,
    UNIQUE (host, name)
);
INSERT INTO checks_new (id, host, name, kind, state, consecutive_failures, last_change_ms, last_error)
    SELECT id, '', name, kind, state, consecutive_failures, last_change_ms, last_error FROM checks;
DROP TABLE checks;
ALTER TABLE checks_new RENAME TO checks;

CREATE TABLE series_new (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    UNIQUE (host, name)
);
INSERT INTO series_new (id, host, name) SELECT id, '', name FROM series;
DROP TABLE series;
ALTER TABLE series_new RENAME TO series;

CREATE TABLE conditions_new (
    host TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL,                    -- e.g. "disk:/", "swap", "pm2:worker:status"
    level TEXT NOT NULL,                  -- ok | warning | critical
    since_ms INTEGER NOT NULL,
    value REAL,
    notified INTEGER NOT NULL DEFAULT 1,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (host, key)
);
INSERT INTO conditions_new (host, key, level, since_ms, value, notified, updated_ms)
    SELECT '', key, level, since_ms, value, notified, updated_ms FROM conditions;
DROP TABLE conditions;
ALTER TABLE conditions_new RENAME TO conditions;

CREATE TABLE cursors_new (
    host TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (host, name)
);
INSERT INTO cursors_new (host, name, value, updated_ms) SELECT '', name, value, updated_ms FROM cursors;
DROP TABLE cursors;
ALTER TABLE cursors_new RENAME TO cursors;
