-- Roll-up tiers of metric series and check results. Keep in step with
-- ../sqlite/0003_rollups.sql: same tables, same columns, only the types differ.
-- Layout, encoding and the reasons for it: src/store/rollups.rs.

-- Metric roll-ups: one row per series, bucket width and chunk of 64 consecutive buckets.
-- `slots` packs the 64 buckets (min, max, avg as f32 and count as u16, little-endian, 14 bytes
-- each, count 0 = no data); a row is always 896 bytes, written once and then updated in place.
CREATE TABLE sample_rollups (
    series_id BIGINT NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    width_ms BIGINT NOT NULL,                       -- 300000 (5 minutes) or 3600000 (1 hour)
    chunk_ms BIGINT NOT NULL,                       -- start of the first bucket, a multiple of 64 * width_ms
    slots BYTEA NOT NULL,
    PRIMARY KEY (series_id, width_ms, chunk_ms)
);

-- Check-result roll-ups: one row per check and hour.
CREATE TABLE check_rollups (
    check_id BIGINT NOT NULL REFERENCES checks (id) ON DELETE CASCADE,
    width_ms BIGINT NOT NULL,                       -- 3600000
    bucket_ms BIGINT NOT NULL,                      -- start of the bucket, a multiple of width_ms
    total BIGINT NOT NULL,                          -- results in the bucket
    failures BIGINT NOT NULL,                       -- results with ok = false
    latency_n BIGINT NOT NULL,                      -- successful results with a latency
    latency_sum BIGINT NOT NULL,                    -- their latencies, ms
    latency_min BIGINT,
    latency_max BIGINT,
    latency_hist BYTEA NOT NULL,                    -- sparse log-scale histogram of those latencies
    PRIMARY KEY (check_id, width_ms, bucket_ms)
);
