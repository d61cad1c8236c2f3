-- Threshold conditions (disk, memory, swap, load, processes) and the warning digest.
-- Keep in step with ../postgres/0002_conditions_digest.sql.

-- Where each watched condition stands now; survives restarts so nothing is re-sent.
CREATE TABLE conditions (
    key TEXT PRIMARY KEY,                 -- e.g. "disk:/", "swap", "pm2:worker:status"
    level TEXT NOT NULL,                  -- ok | warning | critical
    since_ms INTEGER NOT NULL,
    value REAL,
    updated_ms INTEGER NOT NULL
);

-- Warnings waiting for the next digest: one row per distinct warning per digest period.
CREATE TABLE digest_items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    worst REAL,
    unit TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    digest_alert_id INTEGER REFERENCES alerts (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX digest_items_open ON digest_items (key) WHERE digest_alert_id IS NULL;
