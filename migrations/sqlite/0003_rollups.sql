-- Roll-up tiers of metric series and check results. Keep in step with
-- ../postgres/0003_rollups.sql: same tables, same columns, only the types differ.
-- Layout, encoding and the reasons for it: src/store/rollups.rs.

-- Metric roll-ups: one row per series, bucket width and chunk of 64 consecutive buckets.
-- `slots` packs the 64 buckets (min, max, avg as f32 and count as u16, little-endian, 14 bytes
-- each, count 0 = no data); a row is always 896 bytes, written once and then updated in place.
-- (One row per bucket would take about 54 MiB for 90 days of 5-minute buckets of 42 series;
-- packed it is about 18 MiB.)
CREATE TABLE sample_rollups (
    series_id INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    width_ms INTEGER NOT NULL,                      -- 300000 (5 minutes) or 3600000 (1 hour)
    chunk_ms INTEGER NOT NULL,                      -- start of the first bucket, a multiple of 64 * width_ms
    slots BLOB NOT NULL,
    PRIMARY KEY (series_id, width_ms, chunk_ms)
) WITHOUT ROWID;

-- Check-result roll-ups: one row per check and hour.
CREATE TABLE check_rollups (
    check_id INTEGER NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    width_ms INTEGER NOT NULL,                      -- 3600000
    bucket_ms INTEGER NOT NULL,                     -- start of the bucket, a multiple of width_ms
    total INTEGER NOT NULL,                         -- results in the bucket
    failures INTEGER NOT NULL,                      -- results with ok = false
    latency_n INTEGER NOT NULL,                     -- successful results with a latency
    latency_sum INTEGER NOT NULL,                   -- their latencies, ms
    latency_min INTEGER,
    latency_max INTEGER,
    latency_hist BLOB NOT NULL,                     -- sparse log-scale histogram of those latencies
    PRIMARY KEY (check_id, width_ms, bucket_ms)
) WITHOUT ROWID;
