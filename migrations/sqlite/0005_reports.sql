-- Reports (daily summary, weekly health, monthly security, database health, vacuum): the
-- gathered value as JSON and the rendered text, so the dashboard and the API show exactly what
-- was sent. `occurrence_ms` is the schedule occurrence a report was made for (NULL when run by
-- hand), unique per kind and host, so one occurrence never makes two reports.
-- Keep in step with ../postgres/0005_reports.sql.
CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    occurrence_ms INTEGER,
    summary TEXT NOT NULL,
    body TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX reports_by_time ON reports (created_ms DESC);
CREATE UNIQUE INDEX reports_one_per_occurrence ON reports (kind, host, occurrence_ms)
    WHERE occurrence_ms IS NOT NULL;
