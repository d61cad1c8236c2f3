-- Scheduled jobs and what the reports remember between runs.
-- Keep in step with ../postgres/0009_jobs_reports_state.sql.

-- One row per job run: start, end, outcome (running | ok | failed | timeout | panic |
-- skipped | interrupted) and the error. Old rows are pruned, the latest per job is kept.
CREATE TABLE job_runs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    job TEXT NOT NULL,
    occurrence_ms INTEGER,              -- the cron occurrence it ran for; NULL for intervals
    started_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX job_runs_by_job ON job_runs (host, job, id);
CREATE INDEX job_runs_by_time ON job_runs (started_ms);

-- The last cron occurrence each job fired for (or, for a new job, the moment it was first
-- scheduled): a run missed while opswatch was down is caught up once, never twice.
CREATE TABLE job_schedule (
    host TEXT NOT NULL,
    job TEXT NOT NULL,
    last_occurrence_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (host, job)
);

-- Where the weekly log scan stopped for each watched log: the file it stopped in (device,
-- inode, and a hash of its first head_len bytes, which still matches once logrotate has
-- renamed or compressed it) and the byte offset in its (decompressed) content.
CREATE TABLE log_offsets (
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    offset_bytes INTEGER NOT NULL,
    head_hash INTEGER NOT NULL,
    head_len INTEGER NOT NULL,
    scanned_ms INTEGER NOT NULL,
    PRIMARY KEY (host, path)
);

-- Values a report has seen before (SSH login sources, listening ports), so new ones stand out.
CREATE TABLE known_values (
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY (host, kind, value)
);
