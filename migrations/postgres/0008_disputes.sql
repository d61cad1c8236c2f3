-- Disputes of the app, from its database (SQL source) or posted to the API (HTTP source).
-- One row per dispute id whatever the source, so the same dispute never alerts twice.
-- Keep in step with ../sqlite/0008_disputes.sql.
CREATE TABLE disputes (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,                           -- sql | http (the first that saw it)
    fields TEXT NOT NULL,                           -- JSON object of the row or posted body
    created_ms BIGINT NOT NULL,
    alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL
);
CREATE INDEX disputes_by_time ON disputes (created_ms DESC);
