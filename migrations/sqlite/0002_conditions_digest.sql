-- Threshold conditions (disk, memory, swap, load, processes) and the warning digest.
-- Keep in step with ../postgres/0002_conditions_digest.sql.

-- Where each watched condition stands now; survives restarts so nothing is re-sent.
CREATE TABLE conditions (
    key TEXT PRIMARY KEY,                 -- e.g. "disk:/", "swap", "pm2:worker:status"
    level TEXT NOT NULL,                  -- ok | warning | critical
    since_ms INTEGER NOT NULL,
    value REAL,
    -- false when the alert of the current level was held back (silence): its RESOLVED is too.
    notified INTEGER NOT NULL DEFAULT 1,
    updated_ms INTEGER NOT NULL
);

-- Warnings waiting for the next digest: one row per distinct warning per digest period.
CREATE TABLE digest_items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    source TEXT NOT NULL,                 -- for silence matching: check or source name
    kind TEXT NOT NULL,                   -- system, pm2, systemd, ...
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

-- Silences made through the API (config silences live in the config file).
CREATE TABLE silences (
    id INTEGER PRIMARY KEY,
    check_name TEXT,                      -- NULL matches any
    kind TEXT,
    severity TEXT,
    starts_ms INTEGER NOT NULL,
    ends_ms INTEGER NOT NULL,
    comment TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX silences_ends ON silences (ends_ms);
