-- Reports: see ../sqlite/0005_reports.sql (keep in step).
CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    occurrence_ms BIGINT,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX reports_by_time ON reports (created_ms DESC);
CREATE UNIQUE INDEX reports_one_per_occurrence ON reports (kind, host, occurrence_ms)
    WHERE occurrence_ms IS NOT NULL;
