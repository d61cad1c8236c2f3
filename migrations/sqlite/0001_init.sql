-- opswatch store, SQLite dialect. Keep in step with ../postgres/0001_init.sql: same tables,
-- same columns, only the types differ. Timestamps are INTEGER unix epoch milliseconds (UTC).

-- Written by the health probe every few seconds: proves the store takes writes.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at_ms INTEGER NOT NULL
);

-- One row per configured check; its current state survives restarts.
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',          -- up | down | unknown
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    consecutive_successes INTEGER NOT NULL DEFAULT 0,
    last_result_ms INTEGER,
    last_change_ms INTEGER,
    last_error TEXT
);

-- Every check result (time series). Raw rows are kept for the raw retention period.
CREATE TABLE check_results (
    check_id INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    ok INTEGER NOT NULL,                            -- boolean
    latency_ms INTEGER,
    status_code INTEGER,
    error_kind TEXT,
    error TEXT,
    cert_expires_ms INTEGER,
    PRIMARY KEY (check_id, at_ms)
) WITHOUT ROWID;

-- Metric series (disk per mount, memory, load, per-process cpu/memory, ...).
CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE samples (
    series_id INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (series_id, at_ms)
) WITHOUT ROWID;

-- A check that is DOWN has exactly one open incident (resolved_ms IS NULL).
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    check_id INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    opened_ms INTEGER NOT NULL,
    resolved_ms INTEGER,
    cause TEXT NOT NULL,
    last_reminded_ms INTEGER,
    reminders INTEGER NOT NULL DEFAULT 0,
    -- false when the opening alert was held back (silence, flap damping): its RESOLVED is then held too.
    notified INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (check_id) WHERE resolved_ms IS NULL;
CREATE INDEX incidents_opened ON incidents (check_id, opened_ms);

-- The alert log: every alert ever raised, sent or not.
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    -- idempotency key: the same event can never become two alerts (e.g. "incident:7:open").
    dedup_key TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    severity TEXT NOT NULL,                         -- critical | warning | info | resolved
    source TEXT NOT NULL,                           -- check or job name
    kind TEXT NOT NULL,                             -- http, system, pm2, digest, report, test, ...
    title TEXT NOT NULL,
    value TEXT,
    threshold TEXT,
    hint TEXT,
    body TEXT,
    incident_id INTEGER REFERENCES incidents (id) ON DELETE SET NULL,
    silenced INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX alerts_created ON alerts (created_ms);

-- The outbox: one row per alert and channel, deleted never; state moves pending -> sent.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',          -- pending | sent | held
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER,
    last_error TEXT,
    sent_ms INTEGER,
    UNIQUE (alert_id, channel)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);

-- Delivery health per channel (401, blocked, chat not found keep alerts queued and show here).
CREATE TABLE channels (
    name TEXT PRIMARY KEY,
    healthy INTEGER NOT NULL DEFAULT 1,
    last_error TEXT,
    updated_ms INTEGER NOT NULL,
    -- Telegram group upgraded to a supergroup: the new chat id, followed from then on.
    chat_id_override TEXT
);

-- Named positions that must survive restarts (dispute cursor, last digest, ...).
CREATE TABLE cursors (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
