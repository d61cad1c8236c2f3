//! The roll-up, chart, check and retention SQL, written once for both dialects.

// ---------------------------------------------------------------------------------------------
// The hot queries, written once for both dialects.

// The roll-up cursors are store-wide, not a host's: one roll-up pass covers the series and
// checks of every host, so they are kept under the host '' (see migrations/*/0006_host.sql).
pub(super) const SQL_CURSORS: &str = "SELECT name, value FROM cursors WHERE host = '' AND name IN \
     ('rollup:samples:5m', 'rollup:samples:1h', 'rollup:checks:1h', 'rollup:checks:1d')";
pub(super) const SQL_SET_CURSOR: &str = "INSERT INTO cursors (host, name, value, updated_ms) \
     VALUES ('', $1, $2, $3) ON CONFLICT (host, name) DO UPDATE SET value = excluded.value, \
     updated_ms = excluded.updated_ms";
pub(super) const SQL_GET_CURSOR: &str = "SELECT value FROM cursors WHERE host = '' AND name = $1";

/// Raw → 5-minute: one range seek per series. `CROSS JOIN` makes SQLite loop over the small
/// table and seek the big one by its primary key (an inner join let it scan every sample);
/// PostgreSQL plans it as any inner join.
pub const SQL_ROLLUP_RAW: &str = "SELECT x.series_id, MIN(x.at_ms) AS at_ms, MIN(x.value) AS min, \
     MAX(x.value) AS max, SUM(x.value) AS sum, COUNT(*) AS count \
     FROM series s CROSS JOIN samples x \
     WHERE x.series_id = s.id AND x.at_ms >= $1 AND x.at_ms < $2 GROUP BY x.series_id, x.at_ms / $3";
/// 5-minute → hourly: the packed rows overlapping the step, one range seek per series.
pub const SQL_ROLLUP_CHUNKS: &str = "SELECT r.series_id, r.chunk_ms, r.slots \
     FROM series s CROSS JOIN sample_rollups r \
     WHERE r.series_id = s.id AND r.width_ms = $1 AND r.chunk_ms >= $2 AND r.chunk_ms < $3";
/// Raw check results → hourly, one range seek per check.
pub const SQL_ROLLUP_CHECKS: &str = "SELECT r.check_id, r.at_ms, r.ok, r.latency_ms \
     FROM checks c CROSS JOIN check_results r \
     WHERE r.check_id = c.id AND r.at_ms >= $1 AND r.at_ms < $2";
/// Hourly check buckets → daily, one range seek per check.
pub const SQL_ROLLUP_CHECK_DAYS: &str = "SELECT r.check_id, r.bucket_ms AS at_ms, r.total, r.failures, r.latency_n, \
     r.latency_sum, r.latency_min, r.latency_max, r.latency_hist \
     FROM checks c CROSS JOIN check_rollups r \
     WHERE r.check_id = c.id AND r.width_ms = $1 AND r.bucket_ms >= $2 AND r.bucket_ms < $3";
pub(super) const SQL_PUT_CHUNK: &str = "INSERT INTO sample_rollups (series_id, width_ms, chunk_ms, slots) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (series_id, width_ms, chunk_ms) DO UPDATE SET slots = excluded.slots";
/// A roll-up step's packed rows, written with one multi-row upsert per batch: the head, then
/// `VALUES (series_id, width_ms, chunk_ms, slots), …` for the batch, then the tail.
pub(super) const SQL_PUT_CHUNKS_HEAD: &str =
    "INSERT INTO sample_rollups (series_id, width_ms, chunk_ms, slots) ";
pub(super) const SQL_PUT_CHUNKS_TAIL: &str =
    " ON CONFLICT (series_id, width_ms, chunk_ms) DO UPDATE SET slots = excluded.slots";
/// The same for check buckets.
pub(super) const SQL_PUT_CHECK_ROLLUPS_HEAD: &str = "INSERT INTO check_rollups \
     (check_id, width_ms, bucket_ms, total, failures, latency_n, latency_sum, latency_min, latency_max, latency_hist) ";
pub(super) const SQL_PUT_CHECK_ROLLUPS_TAIL: &str = " ON CONFLICT (check_id, width_ms, bucket_ms) DO UPDATE SET total = excluded.total, \
     failures = excluded.failures, latency_n = excluded.latency_n, latency_sum = excluded.latency_sum, \
     latency_min = excluded.latency_min, latency_max = excluded.latency_max, latency_hist = excluded.latency_hist";

/// Chart from raw samples, grouped into epoch-aligned buckets of `$4` ms.
pub const SQL_CHART_RAW: &str = "SELECT MIN(at_ms), MIN(value), MAX(value), SUM(value), COUNT(*) FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY at_ms / $4 ORDER BY 1";
/// A counter's growth inside a raw range (a drop is a reset: the new value counts from zero).
pub const SQL_RAW_COUNTER: &str = "SELECT SUM(CASE WHEN d IS NULL THEN 0.0 WHEN d >= 0 THEN d ELSE value END) \
     FROM (SELECT value, value - LAG(value) OVER (ORDER BY at_ms) AS d FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3) t";
pub(super) const SQL_RAW_FIRST: &str = "SELECT value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms LIMIT 1";
pub(super) const SQL_RAW_LAST: &str = "SELECT value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms DESC LIMIT 1";
pub(super) const SQL_RAW_POINTS: &str = "SELECT at_ms, value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms";
/// Chart from a tier: the packed rows of one series in a range.
pub const SQL_CHART_CHUNKS: &str = "SELECT chunk_ms, slots FROM sample_rollups \
     WHERE series_id = $1 AND width_ms = $2 AND chunk_ms >= $3 AND chunk_ms < $4 ORDER BY chunk_ms";
pub(super) const SQL_OLDEST_RAW: &str = "SELECT MIN(at_ms) FROM samples WHERE series_id = $1";
pub(super) const SQL_OLDEST_CHUNK: &str = "SELECT chunk_ms, slots FROM sample_rollups \
     WHERE series_id = $1 AND width_ms = $2 ORDER BY chunk_ms LIMIT 1";

/// Check chart from raw results.
pub const SQL_CHECK_CHART_RAW: &str = "SELECT MIN(at_ms) AS at_ms, COUNT(*) AS total, \
     SUM(CASE WHEN ok THEN 0 ELSE 1 END) AS failures, \
     SUM(CASE WHEN ok AND latency_ms IS NOT NULL THEN 1 ELSE 0 END) AS latency_n, \
     CAST(COALESCE(SUM(CASE WHEN ok THEN latency_ms END), 0) AS BIGINT) AS latency_sum, \
     MIN(CASE WHEN ok THEN latency_ms END) AS latency_min, \
     MAX(CASE WHEN ok THEN latency_ms END) AS latency_max \
     FROM check_results WHERE check_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY at_ms / $4 ORDER BY 1";
/// Check summary from raw results (percentiles need every latency).
pub const SQL_CHECK_RAW: &str =
    "SELECT ok, latency_ms FROM check_results WHERE check_id = $1 AND at_ms >= $2 AND at_ms < $3";
/// Check chart from the hourly tier, grouped into points in SQL.
pub const SQL_CHECK_TIER_CHART: &str = "SELECT MIN(bucket_ms) AS at_ms, CAST(SUM(total) AS BIGINT) AS total, \
     CAST(SUM(failures) AS BIGINT) AS failures, CAST(SUM(latency_n) AS BIGINT) AS latency_n, \
     CAST(SUM(latency_sum) AS BIGINT) AS latency_sum, MIN(latency_min) AS latency_min, \
     MAX(latency_max) AS latency_max FROM check_rollups \
     WHERE check_id = $1 AND width_ms = $2 AND bucket_ms >= $3 AND bucket_ms < $4 \
     GROUP BY bucket_ms / $5 ORDER BY 1";
/// Check summary from the hourly or daily tier.
pub const SQL_CHECK_TIER: &str = "SELECT bucket_ms AS at_ms, total, failures, latency_n, latency_sum, latency_min, latency_max, \
     latency_hist FROM check_rollups WHERE check_id = $1 AND width_ms = $2 AND bucket_ms >= $3 AND bucket_ms < $4 \
     ORDER BY bucket_ms";
pub(super) const SQL_OLDEST_CHECK_RAW: &str =
    "SELECT MIN(at_ms) FROM check_results WHERE check_id = $1";
pub(super) const SQL_OLDEST_CHECK_TIER: &str =
    "SELECT MIN(bucket_ms) FROM check_rollups WHERE check_id = $1 AND width_ms = $2";

/// Retention of one table, in batches per owner (series or check): `boundary` is the time of
/// the row after the first `$3` older than `$2` (`$4`: the tier's width, where the table holds
/// several), `delete` removes the rows of owner `$1` before `$2` (`$3`: the width). These are
/// the statements retention runs and the benchmark explains.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSql {
    pub boundary: &'static str,
    pub delete: &'static str,
    /// Whether the statements take the tier's width (`$4` and `$3`).
    pub by_width: bool,
}

pub const RETENTION_SAMPLES: RetentionSql = RetentionSql {
    boundary: "SELECT at_ms FROM samples WHERE series_id = $1 AND at_ms < $2 \
               ORDER BY at_ms LIMIT 1 OFFSET $3",
    delete: "DELETE FROM samples WHERE series_id = $1 AND at_ms < $2",
    by_width: false,
};

pub const RETENTION_SAMPLE_ROLLUPS: RetentionSql = RetentionSql {
    boundary: "SELECT chunk_ms FROM sample_rollups WHERE series_id = $1 AND chunk_ms < $2 \
               AND width_ms = $4 ORDER BY chunk_ms LIMIT 1 OFFSET $3",
    delete: "DELETE FROM sample_rollups WHERE series_id = $1 AND chunk_ms < $2 AND width_ms = $3",
    by_width: true,
};

pub const RETENTION_CHECK_RESULTS: RetentionSql = RetentionSql {
    boundary: "SELECT at_ms FROM check_results WHERE check_id = $1 AND at_ms < $2 \
               ORDER BY at_ms LIMIT 1 OFFSET $3",
    delete: "DELETE FROM check_results WHERE check_id = $1 AND at_ms < $2",
    by_width: false,
};

pub const RETENTION_CHECK_ROLLUPS: RetentionSql = RetentionSql {
    boundary: "SELECT bucket_ms FROM check_rollups WHERE check_id = $1 AND bucket_ms < $2 \
               AND width_ms = $4 ORDER BY bucket_ms LIMIT 1 OFFSET $3",
    delete: "DELETE FROM check_rollups WHERE check_id = $1 AND bucket_ms < $2 AND width_ms = $3",
    by_width: true,
};
