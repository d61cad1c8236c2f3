//! Roll-up tiers: how a year of history stays small and charts fast.
//!
//! # Tiers
//! | tier | metric series | check results | kept (`[history]`, default) |
//! |---|---|---|---|
//! | raw | `samples` | `check_results` | `raw` (7 d) |
//! | 5-minute | `sample_rollups`, `width_ms` 300000 | — | `five_minute` (90 d) |
//! | hourly | `sample_rollups`, `width_ms` 3600000 | `check_rollups`, `width_ms` 3600000 (and daily sums, 86400000) | `hourly` (2 y) |
//!
//! A bucket holds min, max, average and count, so a chart drawn from it keeps its spikes and a
//! coarser bucket is computed exactly from finer ones (count-weighted average).
//!
//! # Decisions
//! - **Metric buckets are packed, 64 to a row.** A `sample_rollups` row holds 64 consecutive
//!   buckets of one series (5 h 20 min of 5-minute buckets, 64 h of hourly ones) as a fixed
//!   896-byte blob: per bucket min, max and average as `f32` and the count as `u16`,
//!   little-endian, 14 bytes, count 0 meaning "no data". One row per bucket with three `REAL`s
//!   costs about 54 MiB in SQLite for 90 days of 5-minute buckets of the 42 series of a default
//!   host (measured); packed it is about 18 MiB, which is what lets a year of default history
//!   stay under 50 MiB. The row is written once at full size and then updated in place, so
//!   pages do not fragment. The price: `f32` keeps about 7 significant digits (a 500 GB disk's
//!   free bytes to within 64 KiB), a count above 65535 per bucket saturates (only at more than
//!   18 samples per second), and buckets are read and re-bucketed in Rust rather than in SQL.
//! - **Check results roll up by the hour (no 5-minute tier)**, one row per check and hour: total,
//!   failures, and for successful results the latency count, sum, min, max and a histogram.
//!   A check runs every few seconds to minutes, so a 5-minute tier would be nearly as large as
//!   the raw rows; the raw rows (kept `raw`) serve ranges up to that period exactly. The hours
//!   are also summed per day (same table, `width_ms` 86400000, same retention) so that a
//!   summary over a year merges 365 histograms rather than 8760; charts read the hours,
//!   grouped into points in SQL.
//! - **Latency percentiles are exact within the raw period, approximate beyond.** A range the
//!   raw results still cover is computed from them (nearest rank). Beyond, from the hourly
//!   histograms: log-scale bins four per doubling (bin `i` holds `(2^((i-1)/4), 2^(i/4)]` ms,
//!   bin 0 up to 1 ms), stored sparsely as (bin: u8, count: u32 LE) pairs; a percentile is
//!   interpolated inside its bin (bins are 19 % wide) and clamped to the exact min and max.
//!   Uptime, min, max and average are exact in both cases.
//! - **Incremental, never a rescan.** Each tier has a cursor in `cursors` ([`CURSOR_SAMPLES_5M`],
//!   [`CURSOR_SAMPLES_1H`], [`CURSOR_CHECKS_1H`], [`CURSOR_CHECKS_1D`]): everything before it
//!   is rolled up. A step aggregates only closed buckets in `[cursor, to)` (raw → 5-minute
//!   with `GROUP BY`, 5-minute → hourly; for checks raw → hourly → daily), reading its source
//!   with one primary-key range seek per series or check, and writes them and the new cursor in
//!   one transaction, so a crash repeats at most one step, and repeating is harmless: buckets
//!   are recomputed from their source, never added to. On PostgreSQL a step holds an advisory
//!   lock, so several processes sharing one database never interleave their writes to a chunk.
//! - **Retention never deletes what the next tier has not got yet** (raw is cut at the
//!   5-minute cursor at the latest, 5-minute buckets at the hourly cursor, hourly check buckets
//!   at the daily one), deletes in batches
//!   of bounded size per series or check (each its own short transaction, so the writer is
//!   never held long), and is exact per bucket: a bucket goes once all of it is older than its
//!   period (a packed row that straddles the cutoff has its old buckets emptied).
//! - **Chart queries** aim at [`MAX_POINTS`] points: the target bucket width is the range
//!   divided by 499; the tier read is the coarsest whose bucket is at most half that width
//!   (raw up to 3.5 days, 5-minute up to 41 days, hourly beyond: 1 h, 6 h, 24 h →
//!   raw; 7 d, 30 d → 5-minute; 90 d, 1 y → hourly), unless it does not reach back to the start
//!   of the range while a coarser one does (shorter retentions). The part after the tier's
//!   cursor comes from the finer tiers, so the right edge is always current. Points are
//!   epoch-aligned buckets of a whole number of tier buckets (stable between refreshes): min of
//!   mins, max of maxes, count-weighted average.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Backend, MAX_POINTS, Point, Pool, ResultRow, Store, now_ms, on_reader, on_writer};

pub const FIVE_MINUTES_MS: i64 = 300_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Buckets per `sample_rollups` row.
pub const CHUNK_SLOTS: i64 = 64;
const SLOT_BYTES: usize = 14;
const CHUNK_BYTES: usize = SLOT_BYTES * CHUNK_SLOTS as usize;

/// Raw samples before this are in the 5-minute tier.
pub const CURSOR_SAMPLES_5M: &str = "rollup:samples:5m";
/// 5-minute buckets before this are in the hourly tier.
pub const CURSOR_SAMPLES_1H: &str = "rollup:samples:1h";
/// Check results before this are in the hourly check tier.
pub const CURSOR_CHECKS_1H: &str = "rollup:checks:1h";
/// Hourly check buckets before this are summed into daily ones.
pub const CURSOR_CHECKS_1D: &str = "rollup:checks:1d";

/// Advisory lock key (PostgreSQL) serialising roll-up steps across processes.
const ROLLUP_LOCK_KEY: i64 = 0x6f70_7377_6174_6368;

/// The ranges charts offer, by name.
pub const CHART_RANGES: &[(&str, i64)] = &[
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
    ("30d", 2_592_000_000),
    ("90d", 7_776_000_000),
    ("1y", 31_536_000_000),
];

/// Where a chart's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Raw,
    FiveMinute,
    Hourly,
}

impl Tier {
    /// Bucket width; 0 for raw.
    pub fn width_ms(self) -> i64 {
        match self {
            Tier::Raw => 0,
            Tier::FiveMinute => FIVE_MINUTES_MS,
            Tier::Hourly => HOUR_MS,
        }
    }

    fn coarser(self) -> Option<Tier> {
        match self {
            Tier::Raw => Some(Tier::FiveMinute),
            Tier::FiveMinute => Some(Tier::Hourly),
            Tier::Hourly => None,
        }
    }
}

/// An aggregate over some samples: a roll-up bucket, a raw group or a single sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket (or time of the earliest sample in it).
    pub at_ms: i64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: i64,
}

impl Bucket {
    fn merge(&mut self, o: &Bucket) {
        self.at_ms = self.at_ms.min(o.at_ms);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
    }

    fn avg(&self) -> f64 {
        if self.count > 0 {
            self.sum / self.count as f64
        } else {
            f64::NAN
        }
    }
}

/// Where each tier is rolled up to (exclusive); `None` before the first roll-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollupCursors {
    pub samples_5m: Option<i64>,
    pub samples_1h: Option<i64>,
    pub checks_1h: Option<i64>,
    pub checks_1d: Option<i64>,
}

/// A series over a range, ready to chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesChart {
    /// The tier most of the range was read from.
    pub tier: Tier,
    /// Width of a point.
    pub bucket_ms: i64,
    pub points: Vec<Point>,
}

/// One point of a check chart.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheckPoint {
    pub at_ms: i64,
    pub total: i64,
    pub failures: i64,
    /// Latency of the successful results, ms.
    pub latency_avg: Option<f64>,
    pub latency_min: Option<i64>,
    pub latency_max: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheckChart {
    pub tier: Tier,
    pub bucket_ms: i64,
    pub points: Vec<CheckPoint>,
}

/// Uptime and latency of a check over a range.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheckSummary {
    pub tier: Tier,
    pub total: i64,
    pub failures: i64,
    /// Successful results / all results, in percent; `None` without results.
    pub uptime_pct: Option<f64>,
    /// Latency of the successful results.
    pub latency: LatencySummary,
    /// True when the percentiles come from raw results, false when estimated from histograms.
    pub percentiles_exact: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    pub n: i64,
    pub min: Option<i64>,
    pub avg: Option<f64>,
    pub max: Option<i64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// How often a process restarted in a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartCount {
    /// `pm2` or `systemd`.
    pub kind: String,
    /// `api#0`, `nginx.service`.
    pub process: String,
    pub restarts: i64,
}

/// What retention may delete: everything before each cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetentionCutoffs {
    pub raw_samples_ms: i64,
    pub five_minute_ms: i64,
    pub hourly_ms: i64,
    pub raw_checks_ms: i64,
    pub check_hourly_ms: i64,
    pub check_daily_ms: i64,
}

/// What one retention run deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub samples: u64,
    pub sample_chunks: u64,
    /// Packed rows straddling a cutoff whose old buckets were emptied.
    pub sample_chunks_trimmed: u64,
    pub check_results: u64,
    pub check_rollups: u64,
    /// Statements that deleted something, each its own transaction.
    pub batches: u64,
    /// The longest of them, ms: the longest a writer waited because of retention.
    pub longest_batch_ms: u64,
}

/// What one space-reclaiming run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReclaimReport {
    /// SQLite: pages handed back to the file system.
    pub pages_freed: i64,
    /// SQLite: `incremental_vacuum` steps; PostgreSQL: 1 for the `VACUUM`.
    pub steps: u64,
    pub longest_step_ms: u64,
    /// SQLite: free pages left in the file (more than `max_steps` allowed).
    pub free_pages_left: i64,
    /// SQLite: false when the file was not created with incremental auto-vacuum (nothing is
    /// done then).
    pub incremental: bool,
}

// ---------------------------------------------------------------------------------------------
// The hot queries, written once for both dialects.

const SQL_CURSORS: &str = "SELECT name, value FROM cursors WHERE name IN \
     ('rollup:samples:5m', 'rollup:samples:1h', 'rollup:checks:1h', 'rollup:checks:1d')";
const SQL_SET_CURSOR: &str = "INSERT INTO cursors (name, value, updated_ms) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms";
const SQL_GET_CURSOR: &str = "SELECT value FROM cursors WHERE name = $1";

/// Raw → 5-minute: one range seek per series. `CROSS JOIN` makes SQLite loop over the small
/// table and seek the big one by its primary key (an inner join let it scan every sample);
/// PostgreSQL plans it as any inner join.
pub const SQL_ROLLUP_RAW: &str = "SELECT x.series_id, MIN(x.at_ms), MIN(x.value), MAX(x.value), SUM(x.value), COUNT(*) \
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
pub const SQL_ROLLUP_CHECK_DAYS: &str = "SELECT r.check_id, r.bucket_ms, r.total, r.failures, r.latency_n, \
     r.latency_sum, r.latency_min, r.latency_max, r.latency_hist \
     FROM checks c CROSS JOIN check_rollups r \
     WHERE r.check_id = c.id AND r.width_ms = $1 AND r.bucket_ms >= $2 AND r.bucket_ms < $3";
const SQL_GET_CHUNK: &str =
    "SELECT slots FROM sample_rollups WHERE series_id = $1 AND width_ms = $2 AND chunk_ms = $3";
const SQL_PUT_CHUNK: &str = "INSERT INTO sample_rollups (series_id, width_ms, chunk_ms, slots) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (series_id, width_ms, chunk_ms) DO UPDATE SET slots = excluded.slots";
const SQL_PUT_CHECK_ROLLUP: &str = "INSERT INTO check_rollups \
     (check_id, width_ms, bucket_ms, total, failures, latency_n, latency_sum, latency_min, latency_max, latency_hist) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (check_id, width_ms, bucket_ms) DO UPDATE SET total = excluded.total, \
     failures = excluded.failures, latency_n = excluded.latency_n, latency_sum = excluded.latency_sum, \
     latency_min = excluded.latency_min, latency_max = excluded.latency_max, latency_hist = excluded.latency_hist";

/// Chart from raw samples, grouped into epoch-aligned buckets of `$4` ms.
pub const SQL_CHART_RAW: &str = "SELECT MIN(at_ms), MIN(value), MAX(value), SUM(value), COUNT(*) FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY at_ms / $4 ORDER BY 1";
/// A counter's growth inside a raw range (a drop is a reset: the new value counts from zero).
pub const SQL_RAW_COUNTER: &str = "SELECT SUM(CASE WHEN d IS NULL THEN 0.0 WHEN d >= 0 THEN d ELSE value END) \
     FROM (SELECT value, value - LAG(value) OVER (ORDER BY at_ms) AS d FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3) t";
const SQL_RAW_FIRST: &str = "SELECT value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms LIMIT 1";
const SQL_RAW_LAST: &str = "SELECT value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms DESC LIMIT 1";
const SQL_RAW_POINTS: &str = "SELECT at_ms, value FROM samples \
     WHERE series_id = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms";
/// Chart from a tier: the packed rows of one series in a range.
pub const SQL_CHART_CHUNKS: &str = "SELECT chunk_ms, slots FROM sample_rollups \
     WHERE series_id = $1 AND width_ms = $2 AND chunk_ms >= $3 AND chunk_ms < $4 ORDER BY chunk_ms";
const SQL_OLDEST_RAW: &str = "SELECT MIN(at_ms) FROM samples WHERE series_id = $1";
const SQL_OLDEST_CHUNK: &str = "SELECT chunk_ms, slots FROM sample_rollups \
     WHERE series_id = $1 AND width_ms = $2 ORDER BY chunk_ms LIMIT 1";

/// Check chart from raw results.
pub const SQL_CHECK_CHART_RAW: &str = "SELECT MIN(at_ms), COUNT(*), SUM(CASE WHEN ok THEN 0 ELSE 1 END), \
     SUM(CASE WHEN ok AND latency_ms IS NOT NULL THEN 1 ELSE 0 END), \
     CAST(COALESCE(SUM(CASE WHEN ok THEN latency_ms END), 0) AS BIGINT), \
     MIN(CASE WHEN ok THEN latency_ms END), MAX(CASE WHEN ok THEN latency_ms END) \
     FROM check_results WHERE check_id = $1 AND at_ms >= $2 AND at_ms < $3 GROUP BY at_ms / $4 ORDER BY 1";
/// Check summary from raw results (percentiles need every latency).
pub const SQL_CHECK_RAW: &str =
    "SELECT ok, latency_ms FROM check_results WHERE check_id = $1 AND at_ms >= $2 AND at_ms < $3";
/// Check chart from the hourly tier, grouped into points in SQL.
pub const SQL_CHECK_TIER_CHART: &str = "SELECT MIN(bucket_ms), CAST(SUM(total) AS BIGINT), \
     CAST(SUM(failures) AS BIGINT), CAST(SUM(latency_n) AS BIGINT), CAST(SUM(latency_sum) AS BIGINT), \
     MIN(latency_min), MAX(latency_max) FROM check_rollups \
     WHERE check_id = $1 AND width_ms = $2 AND bucket_ms >= $3 AND bucket_ms < $4 \
     GROUP BY bucket_ms / $5 ORDER BY 1";
/// Check summary from the hourly or daily tier.
pub const SQL_CHECK_TIER: &str = "SELECT bucket_ms, total, failures, latency_n, latency_sum, latency_min, latency_max, \
     latency_hist FROM check_rollups WHERE check_id = $1 AND width_ms = $2 AND bucket_ms >= $3 AND bucket_ms < $4 \
     ORDER BY bucket_ms";
const SQL_OLDEST_CHECK_RAW: &str = "SELECT MIN(at_ms) FROM check_results WHERE check_id = $1";
const SQL_OLDEST_CHECK_TIER: &str =
    "SELECT MIN(bucket_ms) FROM check_rollups WHERE check_id = $1 AND width_ms = $2";

/// Retention, one batch: the time of the row after the first `$3` older than `$2` ...
pub const SQL_RETENTION_BOUNDARY: &str = "SELECT at_ms FROM samples WHERE series_id = $1 AND at_ms < $2 \
     ORDER BY at_ms LIMIT 1 OFFSET $3";
/// ... and the delete of the rows before it.
pub const SQL_RETENTION_DELETE: &str = "DELETE FROM samples WHERE series_id = $1 AND at_ms < $2";

// ---------------------------------------------------------------------------------------------
// Packed buckets.

fn chunk_span(width_ms: i64) -> i64 {
    width_ms * CHUNK_SLOTS
}

fn align_down(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}

/// Writes `b` (or "no data") into slot `index` of a chunk blob of [`CHUNK_BYTES`].
fn put_slot(data: &mut [u8], index: usize, b: Option<&Bucket>) {
    let at = index * SLOT_BYTES;
    let out = &mut data[at..at + SLOT_BYTES];
    match b {
        Some(b) if b.count > 0 => {
            out[0..4].copy_from_slice(&(b.min as f32).to_le_bytes());
            out[4..8].copy_from_slice(&(b.max as f32).to_le_bytes());
            out[8..12].copy_from_slice(&(b.avg() as f32).to_le_bytes());
            let count = u16::try_from(b.count).unwrap_or(u16::MAX);
            out[12..14].copy_from_slice(&count.to_le_bytes());
        }
        _ => out.fill(0),
    }
}

fn get_slot(data: &[u8], index: usize, at_ms: i64) -> Option<Bucket> {
    let s = data.get(index * SLOT_BYTES..(index + 1) * SLOT_BYTES)?;
    let count = i64::from(u16::from_le_bytes([s[12], s[13]]));
    if count == 0 {
        return None;
    }
    let f = |i: usize| f64::from(f32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]));
    Some(Bucket {
        at_ms,
        min: f(0),
        max: f(4),
        sum: f(8) * count as f64,
        count,
    })
}

/// The non-empty buckets of a chunk whose start lies in `[from, to)`.
fn chunk_buckets(
    chunk_ms: i64,
    width_ms: i64,
    data: &[u8],
    from: i64,
    to: i64,
) -> impl Iterator<Item = Bucket> + '_ {
    (0..CHUNK_SLOTS as usize).filter_map(move |i| {
        let at = chunk_ms + i as i64 * width_ms;
        if at < from || at >= to {
            return None;
        }
        get_slot(data, i, at)
    })
}

/// Groups `(series, bucket)` pairs by the chunk they fall in.
fn by_chunk(width_ms: i64, buckets: Vec<(i64, Bucket)>) -> BTreeMap<(i64, i64), Vec<Bucket>> {
    let mut out: BTreeMap<(i64, i64), Vec<Bucket>> = BTreeMap::new();
    for (series, b) in buckets {
        out.entry((series, align_down(b.at_ms, chunk_span(width_ms))))
            .or_default()
            .push(b);
    }
    out
}

fn patch_chunk(
    existing: Option<Vec<u8>>,
    chunk_ms: i64,
    width_ms: i64,
    buckets: &[Bucket],
) -> Vec<u8> {
    let mut data = existing.unwrap_or_default();
    data.resize(CHUNK_BYTES, 0);
    for b in buckets {
        let index = ((b.at_ms - chunk_ms) / width_ms) as usize;
        put_slot(&mut data, index, Some(b));
    }
    data
}

/// Merges time-ordered buckets into epoch-aligned points `width_ms` wide.
fn rebucket(buckets: impl IntoIterator<Item = Bucket>, width_ms: i64) -> Vec<Point> {
    let mut out: Vec<(i64, Bucket)> = Vec::new();
    for b in buckets {
        let key = b.at_ms.div_euclid(width_ms);
        match out.last_mut() {
            Some((k, acc)) if *k == key => acc.merge(&b),
            _ => out.push((key, b)),
        }
    }
    out.into_iter()
        .map(|(_, b)| Point {
            at_ms: b.at_ms,
            avg: b.avg(),
            min: b.min,
            max: b.max,
            count: b.count,
        })
        .collect()
}

/// Target width of a point over `span_ms`, so that there are at most [`MAX_POINTS`].
fn target_width(span_ms: i64) -> i64 {
    (span_ms.max(1) + MAX_POINTS - 2) / (MAX_POINTS - 1)
}

/// The coarsest tier whose buckets are at most half a point wide.
pub fn preferred_tier(span_ms: i64) -> Tier {
    let target = target_width(span_ms);
    if 2 * HOUR_MS <= target {
        Tier::Hourly
    } else if 2 * FIVE_MINUTES_MS <= target {
        Tier::FiveMinute
    } else {
        Tier::Raw
    }
}

/// Point width over `span_ms` read from `tier`: a whole number of its buckets.
fn point_width(span_ms: i64, tier: Tier) -> i64 {
    let target = target_width(span_ms);
    match tier.width_ms() {
        0 => target,
        w => (target + w - 1) / w * w,
    }
}

/// Increase of a counter over time-ordered buckets; a drop is a reset (counted from zero).
/// Exact on raw samples; on roll-ups a reset inside one bucket counts its level before the
/// reset as restarts.
#[derive(Debug, Default)]
struct CounterWalk {
    total: f64,
    prev_max: Option<f64>,
}

impl CounterWalk {
    fn bucket(&mut self, min: f64, max: f64) {
        if let Some(p) = self.prev_max {
            self.total += if min >= p { min - p } else { min };
        }
        self.total += max - min;
        self.prev_max = Some(max);
    }
}

#[cfg(test)]
fn counter_increase_of(buckets: &[Bucket]) -> f64 {
    let mut walk = CounterWalk::default();
    for b in buckets {
        walk.bucket(b.min, b.max);
    }
    walk.total
}

// ---------------------------------------------------------------------------------------------
// Latency histograms.

const HIST_BINS: usize = 96;

fn hist_bin(latency_ms: i64) -> usize {
    if latency_ms <= 1 {
        return 0;
    }
    let bin = ((latency_ms as f64).log2() * 4.0).ceil();
    (bin as usize).min(HIST_BINS - 1)
}

fn bin_bounds(bin: usize) -> (f64, f64) {
    if bin == 0 {
        (0.0, 1.0)
    } else {
        (
            2f64.powf((bin as f64 - 1.0) / 4.0),
            2f64.powf(bin as f64 / 4.0),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Histogram([u64; HIST_BINS]);

impl Default for Histogram {
    fn default() -> Self {
        Self([0; HIST_BINS])
    }
}

impl Histogram {
    fn add(&mut self, latency_ms: i64) {
        self.0[hist_bin(latency_ms)] += 1;
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &n) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(i as u8);
                out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
            }
        }
        out
    }

    fn add_encoded(&mut self, data: &[u8]) {
        for pair in data.chunks_exact(5) {
            let bin = usize::from(pair[0]).min(HIST_BINS - 1);
            self.0[bin] += u64::from(u32::from_le_bytes([pair[1], pair[2], pair[3], pair[4]]));
        }
    }

    /// Estimated `p`-quantile (0..1, nearest rank), clamped to `[min, max]`.
    fn quantile(&self, p: f64, min: f64, max: f64) -> Option<f64> {
        let n: u64 = self.0.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p * n as f64).ceil() as u64).clamp(1, n);
        let mut below = 0;
        for (bin, &c) in self.0.iter().enumerate() {
            if c > 0 && below + c >= rank {
                let (lo, hi) = bin_bounds(bin);
                let within = (rank - below) as f64 / c as f64;
                return Some((lo + (hi - lo) * within).clamp(min, max));
            }
            below += c;
        }
        Some(max)
    }
}

fn exact_quantile(sorted: &[i64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1] as f64)
}

/// A check roll-up bucket (or a group of raw results) being built or merged.
#[derive(Debug, Clone, Default)]
struct CheckAgg {
    at_ms: i64,
    total: i64,
    failures: i64,
    latency_n: i64,
    latency_sum: i64,
    latency_min: Option<i64>,
    latency_max: Option<i64>,
}

impl CheckAgg {
    fn add_result(&mut self, ok: bool, latency_ms: Option<i64>) {
        self.total += 1;
        if !ok {
            self.failures += 1;
        } else if let Some(l) = latency_ms {
            self.latency_n += 1;
            self.latency_sum += l;
            self.latency_min = Some(self.latency_min.map_or(l, |m| m.min(l)));
            self.latency_max = Some(self.latency_max.map_or(l, |m| m.max(l)));
        }
    }

    fn merge(&mut self, o: &CheckAgg) {
        self.at_ms = self.at_ms.min(o.at_ms);
        self.total += o.total;
        self.failures += o.failures;
        self.latency_n += o.latency_n;
        self.latency_sum += o.latency_sum;
        self.latency_min = match (self.latency_min, o.latency_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.latency_max = match (self.latency_max, o.latency_max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    fn point(&self) -> CheckPoint {
        CheckPoint {
            at_ms: self.at_ms,
            total: self.total,
            failures: self.failures,
            latency_avg: (self.latency_n > 0)
                .then(|| self.latency_sum as f64 / self.latency_n as f64),
            latency_min: self.latency_min,
            latency_max: self.latency_max,
        }
    }
}

type CheckTierRow = (i64, i64, i64, i64, i64, Option<i64>, Option<i64>, Vec<u8>);
type CheckRawRow = (i64, i64, i64, i64, i64, Option<i64>, Option<i64>);
/// A check id and an hourly row, as the daily roll-up reads them.
type CheckDayRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Vec<u8>,
);

fn check_agg_of(row: &CheckTierRow) -> CheckAgg {
    CheckAgg {
        at_ms: row.0,
        total: row.1,
        failures: row.2,
        latency_n: row.3,
        latency_sum: row.4,
        latency_min: row.5,
        latency_max: row.6,
    }
}

fn check_agg_of_raw(row: &CheckRawRow) -> CheckAgg {
    CheckAgg {
        at_ms: row.0,
        total: row.1,
        failures: row.2,
        latency_n: row.3,
        latency_sum: row.4,
        latency_min: row.5,
        latency_max: row.6,
    }
}

fn parse_cursor(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Roll-up.

/// Opens the transaction of one roll-up step of the tier whose cursor is `$cursor`, binding it
/// to `$tx`: on PostgreSQL it first takes the roll-up lock, so several instances never roll
/// up the same range twice. When the cursor already reached `$to_ms` (another instance, or
/// the other job, got there first) the step commits and returns `Ok(0)` from the caller.
macro_rules! begin_rollup_step {
    ($pool:expr, $tx:ident, $pg:expr, $cursor:expr, $to_ms:expr) => {
        let mut $tx = $pool.begin().await?;
        if $pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut *$tx)
                .await?;
        }
        let cursor: Option<String> = sqlx::query_scalar(SQL_GET_CURSOR)
            .bind($cursor)
            .fetch_optional(&mut *$tx)
            .await?;
        if cursor
            .as_deref()
            .and_then(parse_cursor)
            .is_some_and(|c| c >= $to_ms)
        {
            $tx.commit().await?;
            return Ok(0);
        }
    };
}

/// Moves the tier's cursor to `$to_ms` and commits the step's transaction.
macro_rules! finish_rollup_step {
    ($tx:ident, $cursor:expr, $to_ms:expr, $now:expr) => {
        sqlx::query(SQL_SET_CURSOR)
            .bind($cursor)
            .bind($to_ms.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
    };
}

/// Merges `$buckets` (series id, bucket) into the packed chunks of tier `$width`.
macro_rules! patch_chunks {
    ($tx:ident, $width:expr, $buckets:expr) => {
        for ((series, chunk_ms), buckets) in by_chunk($width, $buckets) {
            let existing: Option<Vec<u8>> = sqlx::query_scalar(SQL_GET_CHUNK)
                .bind(series)
                .bind($width)
                .bind(chunk_ms)
                .fetch_optional(&mut *$tx)
                .await?;
            let data = patch_chunk(existing, chunk_ms, $width, &buckets);
            sqlx::query(SQL_PUT_CHUNK)
                .bind(series)
                .bind($width)
                .bind(chunk_ms)
                .bind(data)
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// Writes the check buckets of `$buckets` ((check id, bucket start) → aggregate, histogram)
/// into tier `$width`.
macro_rules! put_check_rollups {
    ($tx:ident, $width:expr, $buckets:expr) => {
        for ((check, at_ms), (agg, hist)) in $buckets {
            sqlx::query(SQL_PUT_CHECK_ROLLUP)
                .bind(check)
                .bind($width)
                .bind(at_ms)
                .bind(agg.total)
                .bind(agg.failures)
                .bind(agg.latency_n)
                .bind(agg.latency_sum)
                .bind(agg.latency_min)
                .bind(agg.latency_max)
                .bind(hist.encode())
                .execute(&mut *$tx)
                .await?;
        }
    };
}

impl Store {
    /// Where each tier is rolled up to.
    pub async fn rollup_cursors(&self) -> anyhow::Result<RollupCursors> {
        let rows: Vec<(String, String)> = on_reader!(self, |pool| sqlx::query_as(SQL_CURSORS)
            .fetch_all(pool)
            .await)?;
        let mut c = RollupCursors::default();
        for (name, value) in rows {
            let v = parse_cursor(&value);
            match name.as_str() {
                CURSOR_SAMPLES_5M => c.samples_5m = v,
                CURSOR_SAMPLES_1H => c.samples_1h = v,
                CURSOR_CHECKS_1H => c.checks_1h = v,
                CURSOR_CHECKS_1D => c.checks_1d = v,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The earliest raw sample of any series (where a first roll-up starts).
    pub async fn oldest_raw_sample_ms(&self) -> anyhow::Result<Option<i64>> {
        // One index seek per series instead of a scan of every sample.
        Ok(on_reader!(self, |pool| {
            sqlx::query_scalar(
            "SELECT MIN((SELECT MIN(x.at_ms) FROM samples x WHERE x.series_id = s.id)) FROM series s"
        )
        .fetch_one(pool)
        .await
        })?)
    }

    /// The earliest raw result of any check.
    pub async fn oldest_raw_check_result_ms(&self) -> anyhow::Result<Option<i64>> {
        Ok(on_reader!(self, |pool| {
            sqlx::query_scalar(
            "SELECT MIN((SELECT MIN(r.at_ms) FROM check_results r WHERE r.check_id = c.id)) FROM checks c"
        )
        .fetch_one(pool)
        .await
        })?)
    }

    /// Rolls the raw samples of `[from, to)` (whole 5-minute buckets) into the 5-minute tier and
    /// moves its cursor to `to`, in one transaction. Returns the buckets written.
    pub async fn roll_up_samples_5m(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let width = FIVE_MINUTES_MS;
        let pg = self.backend() == Backend::Postgres;
        let now = now_ms();
        let written = on_writer!(self, |pool| {
            begin_rollup_step!(pool, tx, pg, CURSOR_SAMPLES_5M, to_ms);
            let rows: Vec<(i64, i64, f64, f64, f64, i64)> = sqlx::query_as(SQL_ROLLUP_RAW)
                .bind(from_ms)
                .bind(to_ms)
                .bind(width)
                .fetch_all(&mut *tx)
                .await?;
            let buckets = rows
                .into_iter()
                .map(|(series, at, min, max, sum, count)| {
                    let at_ms = align_down(at, width);
                    (
                        series,
                        Bucket {
                            at_ms,
                            min,
                            max,
                            sum,
                            count,
                        },
                    )
                })
                .collect::<Vec<_>>();
            let n = buckets.len() as u64;
            patch_chunks!(tx, width, buckets);
            finish_rollup_step!(tx, CURSOR_SAMPLES_5M, to_ms, now);
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(written)
    }

    /// Rolls the 5-minute buckets of `[from, to)` (whole hours, already rolled up from raw) into
    /// the hourly tier and moves its cursor to `to`, in one transaction.
    pub async fn roll_up_samples_hourly(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let (fine, width) = (FIVE_MINUTES_MS, HOUR_MS);
        let pg = self.backend() == Backend::Postgres;
        let now = now_ms();
        let written = on_writer!(self, |pool| {
            begin_rollup_step!(pool, tx, pg, CURSOR_SAMPLES_1H, to_ms);
            let rows: Vec<(i64, i64, Vec<u8>)> = sqlx::query_as(SQL_ROLLUP_CHUNKS)
                .bind(fine)
                .bind(align_down(from_ms, chunk_span(fine)))
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
            let mut hours: BTreeMap<(i64, i64), Bucket> = BTreeMap::new();
            for (series, chunk_ms, data) in &rows {
                for b in chunk_buckets(*chunk_ms, fine, data, from_ms, to_ms) {
                    let at_ms = align_down(b.at_ms, width);
                    hours
                        .entry((*series, at_ms))
                        .and_modify(|h| h.merge(&b))
                        .or_insert(Bucket { at_ms, ..b });
                }
            }
            let n = hours.len() as u64;
            let buckets = hours.into_iter().map(|((s, _), b)| (s, b)).collect();
            patch_chunks!(tx, width, buckets);
            finish_rollup_step!(tx, CURSOR_SAMPLES_1H, to_ms, now);
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(written)
    }

    /// Rolls the check results of `[from, to)` (whole hours) into the hourly check tier and
    /// moves its cursor to `to`, in one transaction.
    pub async fn roll_up_checks_hourly(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let width = HOUR_MS;
        let pg = self.backend() == Backend::Postgres;
        let now = now_ms();
        let written = on_writer!(self, |pool| {
            begin_rollup_step!(pool, tx, pg, CURSOR_CHECKS_1H, to_ms);
            let rows: Vec<(i64, i64, bool, Option<i64>)> = sqlx::query_as(SQL_ROLLUP_CHECKS)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
            let mut hours: BTreeMap<(i64, i64), (CheckAgg, Histogram)> = BTreeMap::new();
            for (check, at, ok, latency) in rows {
                let at_ms = align_down(at, width);
                let (agg, hist) = hours.entry((check, at_ms)).or_insert_with(|| {
                    (
                        CheckAgg {
                            at_ms,
                            ..CheckAgg::default()
                        },
                        Histogram::default(),
                    )
                });
                agg.add_result(ok, latency);
                if let (true, Some(l)) = (ok, latency) {
                    hist.add(l);
                }
            }
            let n = hours.len() as u64;
            put_check_rollups!(tx, width, hours);
            finish_rollup_step!(tx, CURSOR_CHECKS_1H, to_ms, now);
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(written)
    }
}

impl Store {
    /// The earliest hourly check bucket (where a first daily roll-up starts).
    pub async fn oldest_check_rollup_ms(&self) -> anyhow::Result<Option<i64>> {
        Ok(on_reader!(self, |pool| sqlx::query_scalar(
            "SELECT MIN((SELECT MIN(r.bucket_ms) FROM check_rollups r \
             WHERE r.check_id = c.id AND r.width_ms = $1)) FROM checks c"
        )
        .bind(HOUR_MS)
        .fetch_one(pool)
        .await)?)
    }

    /// Sums the hourly check buckets of `[from, to)` (whole days) into daily ones (what long
    /// summaries read: 365 rows a year instead of 8760) and moves their cursor to `to`.
    pub async fn roll_up_checks_daily(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let pg = self.backend() == Backend::Postgres;
        let now = now_ms();
        let written = on_writer!(self, |pool| {
            begin_rollup_step!(pool, tx, pg, CURSOR_CHECKS_1D, to_ms);
            let rows: Vec<(i64, CheckTierRow)> = sqlx::query_as(SQL_ROLLUP_CHECK_DAYS)
                .bind(HOUR_MS)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r: CheckDayRow| (r.0, (r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8)))
                .collect();
            let mut days: BTreeMap<(i64, i64), (CheckAgg, Histogram)> = BTreeMap::new();
            for (check, row) in &rows {
                let at_ms = align_down(row.0, DAY_MS);
                let (agg, hist) = days.entry((*check, at_ms)).or_insert_with(|| {
                    (
                        CheckAgg {
                            at_ms,
                            ..CheckAgg::default()
                        },
                        Histogram::default(),
                    )
                });
                agg.merge(&CheckAgg {
                    at_ms,
                    ..check_agg_of(row)
                });
                hist.add_encoded(&row.7);
            }
            let n = days.len() as u64;
            put_check_rollups!(tx, DAY_MS, days);
            finish_rollup_step!(tx, CURSOR_CHECKS_1D, to_ms, now);
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(written)
    }
}

// ---------------------------------------------------------------------------------------------
// Chart queries.

impl Store {
    /// `name` over `[since, until)` as at most [`MAX_POINTS`] points, from the tier that suits
    /// the range (see the module doc).
    pub async fn chart_series(
        &self,
        name: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<SeriesChart> {
        let span = (until_ms - since_ms).max(1);
        let Some(id) = self.find_series(name).await? else {
            return Ok(SeriesChart {
                tier: Tier::Raw,
                bucket_ms: point_width(span, Tier::Raw),
                points: Vec::new(),
            });
        };
        let tier = self
            .covering_tier(id, preferred_tier(span), since_ms)
            .await?;
        let width = point_width(span, tier);
        let buckets = self
            .series_buckets(id, tier, since_ms, until_ms, Some(width))
            .await?;
        Ok(SeriesChart {
            tier,
            bucket_ms: width,
            points: rebucket(buckets, width),
        })
    }

    /// How much counter series `name` grew over `[since, until)` (resets count from zero);
    /// `None` without samples.
    pub async fn counter_increase(
        &self,
        name: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Option<f64>> {
        let Some(id) = self.find_series(name).await? else {
            return Ok(None);
        };
        let tier = self
            .covering_tier(id, preferred_tier(until_ms - since_ms), since_ms)
            .await?;
        let mut walk = CounterWalk::default();
        for (t, from, to) in self.segments(tier, since_ms, until_ms).await? {
            if t != Tier::Raw {
                for b in self.tier_buckets(id, t, from, to).await? {
                    walk.bucket(b.min, b.max);
                }
                continue;
            }
            // Raw: the increase inside the segment is summed in SQL; only its ends come back.
            let (within, first, last): (Option<f64>, Option<f64>, Option<f64>) =
                on_reader!(self, |pool| {
                    let within = sqlx::query_scalar(SQL_RAW_COUNTER)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_one(pool)
                        .await?;
                    let first = sqlx::query_scalar(SQL_RAW_FIRST)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_optional(pool)
                        .await?;
                    let last = sqlx::query_scalar(SQL_RAW_LAST)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_optional(pool)
                        .await?;
                    Ok::<_, sqlx::Error>((within, first, last))
                })?;
            if let (Some(first), Some(last)) = (first, last) {
                walk.bucket(first, first);
                walk.total += within.unwrap_or(0.0);
                walk.prev_max = Some(last);
            }
        }
        Ok(walk.prev_max.is_some().then_some(walk.total))
    }

    /// Restarts per PM2 process and systemd unit over `[since, until)`, from their stored
    /// restart counters.
    pub async fn restart_counts(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<RestartCount>> {
        let mut out = Vec::new();
        for (kind, prefix) in [("pm2", "pm2.restarts:"), ("systemd", "systemd.restarts:")] {
            for name in self.list_series(prefix).await? {
                if let Some(n) = self.counter_increase(&name, since_ms, until_ms).await? {
                    out.push(RestartCount {
                        kind: kind.to_owned(),
                        process: name[prefix.len()..].to_owned(),
                        restarts: n.round() as i64,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `preferred`, or a coarser tier when `preferred` does not reach back to `since` and the
    /// coarser one holds at least a whole bucket from before `preferred`'s oldest data.
    async fn covering_tier(&self, id: i64, preferred: Tier, since_ms: i64) -> anyhow::Result<Tier> {
        let mut tier = preferred;
        let mut oldest = self.series_oldest(id, tier).await?;
        while oldest.is_none_or(|o| o > since_ms) {
            let Some(coarser) = tier.coarser() else { break };
            let there = self.series_oldest(id, coarser).await?;
            match (there, oldest) {
                (Some(t), Some(o)) if t + coarser.width_ms() <= o => {}
                (Some(_), None) => {}
                _ => break,
            }
            (tier, oldest) = (coarser, there);
        }
        Ok(tier)
    }

    /// The stored buckets of series `name` in one tier, `[since, until)`, oldest first (raw:
    /// one per sample), without stitching or re-bucketing: for tests and diagnostics.
    pub async fn tier_contents(
        &self,
        name: &str,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<Bucket>> {
        let Some(id) = self.find_series(name).await? else {
            return Ok(Vec::new());
        };
        match tier {
            Tier::Raw => self.raw_buckets(id, since_ms, until_ms, None).await,
            t => self.tier_buckets(id, t, since_ms, until_ms).await,
        }
    }

    async fn series_oldest(&self, id: i64, tier: Tier) -> anyhow::Result<Option<i64>> {
        if tier == Tier::Raw {
            return Ok(on_reader!(self, |pool| sqlx::query_scalar(SQL_OLDEST_RAW)
                .bind(id)
                .fetch_one(pool)
                .await)?);
        }
        let width = tier.width_ms();
        let row: Option<(i64, Vec<u8>)> =
            on_reader!(self, |pool| sqlx::query_as(SQL_OLDEST_CHUNK)
                .bind(id)
                .bind(width)
                .fetch_optional(pool)
                .await)?;
        Ok(row.and_then(|(chunk_ms, data)| {
            chunk_buckets(chunk_ms, width, &data, i64::MIN, i64::MAX)
                .next()
                .map(|b| b.at_ms)
        }))
    }

    /// The buckets of series `id` in `[since, until)`, oldest first: from `tier` up to its
    /// cursor, then from the finer tiers up to theirs, then raw (grouped in SQL into
    /// `raw_group_ms` buckets when given, else one bucket per sample).
    async fn series_buckets(
        &self,
        id: i64,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
        raw_group_ms: Option<i64>,
    ) -> anyhow::Result<Vec<Bucket>> {
        let mut out = Vec::new();
        for (t, from, to) in self.segments(tier, since_ms, until_ms).await? {
            match t {
                Tier::Raw => out.extend(self.raw_buckets(id, from, to, raw_group_ms).await?),
                t => out.extend(self.tier_buckets(id, t, from, to).await?),
            }
        }
        Ok(out)
    }

    /// `[since, until)` split by source, oldest first: `tier` up to its cursor, the finer
    /// tiers up to theirs, raw for the rest.
    async fn segments(
        &self,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<(Tier, i64, i64)>> {
        let cursors = if tier == Tier::Raw {
            RollupCursors::default()
        } else {
            self.rollup_cursors().await?
        };
        let mut sources = Vec::new();
        if tier == Tier::Hourly {
            sources.push((Tier::Hourly, cursors.samples_1h));
        }
        if tier != Tier::Raw {
            sources.push((Tier::FiveMinute, cursors.samples_5m));
        }
        let mut out = Vec::new();
        let mut from = since_ms;
        for (t, cursor) in sources {
            let Some(to) = cursor.map(|c| c.min(until_ms)) else {
                continue;
            };
            if to > from {
                out.push((t, from, to));
                from = to;
            }
        }
        if from < until_ms {
            out.push((Tier::Raw, from, until_ms));
        }
        Ok(out)
    }

    async fn tier_buckets(
        &self,
        id: i64,
        tier: Tier,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<Bucket>> {
        let width = tier.width_ms();
        let rows: Vec<(i64, Vec<u8>)> = on_reader!(self, |pool| sqlx::query_as(SQL_CHART_CHUNKS)
            .bind(id)
            .bind(width)
            .bind(align_down(from, chunk_span(width)))
            .bind(to)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .iter()
            .flat_map(|(chunk_ms, data)| chunk_buckets(*chunk_ms, width, data, from, to))
            .collect())
    }

    async fn raw_buckets(
        &self,
        id: i64,
        from: i64,
        to: i64,
        group_ms: Option<i64>,
    ) -> anyhow::Result<Vec<Bucket>> {
        Ok(match group_ms {
            Some(w) => {
                let rows: Vec<(i64, f64, f64, f64, i64)> =
                    on_reader!(self, |pool| sqlx::query_as(SQL_CHART_RAW)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .bind(w.max(1))
                        .fetch_all(pool)
                        .await)?;
                rows.into_iter()
                    .map(|(at_ms, min, max, sum, count)| Bucket {
                        at_ms,
                        min,
                        max,
                        sum,
                        count,
                    })
                    .collect()
            }
            None => {
                let rows: Vec<(i64, f64)> =
                    on_reader!(self, |pool| sqlx::query_as(SQL_RAW_POINTS)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_all(pool)
                        .await)?;
                rows.into_iter()
                    .map(|(at_ms, v)| Bucket {
                        at_ms,
                        min: v,
                        max: v,
                        sum: v,
                        count: 1,
                    })
                    .collect()
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Check queries.

impl Store {
    /// Raw when the raw results cover `since` (or the tier holds nothing older), else hourly.
    async fn check_tier(&self, check_id: i64, since_ms: i64) -> anyhow::Result<Tier> {
        let raw: Option<i64> = on_reader!(self, |pool| sqlx::query_scalar(SQL_OLDEST_CHECK_RAW)
            .bind(check_id)
            .fetch_one(pool)
            .await)?;
        if raw.is_some_and(|r| r <= since_ms) {
            return Ok(Tier::Raw);
        }
        let tier: Option<i64> = on_reader!(self, |pool| sqlx::query_scalar(SQL_OLDEST_CHECK_TIER)
            .bind(check_id)
            .bind(HOUR_MS)
            .fetch_one(pool)
            .await)?;
        Ok(match (tier, raw) {
            (Some(t), Some(r)) if t + HOUR_MS <= r => Tier::Hourly,
            (Some(_), None) => Tier::Hourly,
            _ => Tier::Raw,
        })
    }

    async fn check_rows(
        &self,
        check_id: i64,
        width_ms: i64,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<CheckTierRow>> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_TIER)
            .bind(check_id)
            .bind(width_ms)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await)?)
    }

    /// Check `check_id` over `[since, until)` as at most [`MAX_POINTS`] points.
    pub async fn check_chart(
        &self,
        check_id: i64,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<CheckChart> {
        let span = (until_ms - since_ms).max(1);
        let tier = self.check_tier(check_id, since_ms).await?;
        let width = point_width(span, tier);
        let mut aggs: Vec<CheckAgg> = Vec::new();
        let mut raw_from = since_ms;
        let cursor = match tier {
            Tier::Raw => None,
            _ => self.rollup_cursors().await?.checks_1h,
        };
        if let Some(cursor) = cursor {
            let to = cursor.clamp(since_ms, until_ms);
            let rows: Vec<CheckRawRow> =
                on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_TIER_CHART)
                    .bind(check_id)
                    .bind(HOUR_MS)
                    .bind(since_ms)
                    .bind(to)
                    .bind(width)
                    .fetch_all(pool)
                    .await)?;
            aggs.extend(rows.iter().map(check_agg_of_raw));
            raw_from = to;
        }
        if raw_from < until_ms {
            let raw: Vec<CheckRawRow> =
                on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_CHART_RAW)
                    .bind(check_id)
                    .bind(raw_from)
                    .bind(until_ms)
                    .bind(width)
                    .fetch_all(pool)
                    .await)?;
            aggs.extend(raw.iter().map(check_agg_of_raw));
        }
        let mut merged: Vec<(i64, CheckAgg)> = Vec::new();
        for a in aggs {
            let key = a.at_ms.div_euclid(width);
            match merged.last_mut() {
                Some((k, acc)) if *k == key => acc.merge(&a),
                _ => merged.push((key, a)),
            }
        }
        Ok(CheckChart {
            tier,
            bucket_ms: width,
            points: merged.iter().map(|(_, a)| a.point()).collect(),
        })
    }

    /// Uptime and latency of check `check_id` over `[since, until)`.
    pub async fn check_summary(
        &self,
        check_id: i64,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<CheckSummary> {
        let tier = self.check_tier(check_id, since_ms).await?;
        // Hourly buckets up to the hourly cursor, whole days in between from the daily sums.
        let mut rows = Vec::new();
        let mut raw_from = since_ms;
        let cursors = match tier {
            Tier::Raw => RollupCursors::default(),
            _ => self.rollup_cursors().await?,
        };
        if let Some(c1h) = cursors.checks_1h {
            let to = c1h.clamp(since_ms, until_ms);
            let day_from = align_down(since_ms + DAY_MS - 1, DAY_MS);
            let day_to = cursors
                .checks_1d
                .map_or(day_from, |c| c.min(align_down(to, DAY_MS)));
            if day_from < day_to {
                rows.extend(
                    self.check_rows(check_id, HOUR_MS, since_ms, day_from)
                        .await?,
                );
                rows.extend(self.check_rows(check_id, DAY_MS, day_from, day_to).await?);
                rows.extend(self.check_rows(check_id, HOUR_MS, day_to, to).await?);
            } else {
                rows.extend(self.check_rows(check_id, HOUR_MS, since_ms, to).await?);
            }
            raw_from = to;
        }
        let mut agg = CheckAgg::default();
        let mut hist = Histogram::default();
        for row in &rows {
            agg.merge(&check_agg_of(row));
            hist.add_encoded(&row.7);
        }
        let mut latencies = Vec::new();
        if raw_from < until_ms {
            let raw: Vec<(bool, Option<i64>)> =
                on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_RAW)
                    .bind(check_id)
                    .bind(raw_from)
                    .bind(until_ms)
                    .fetch_all(pool)
                    .await)?;
            for (ok, latency) in raw {
                agg.add_result(ok, latency);
                if let (true, Some(l)) = (ok, latency) {
                    latencies.push(l);
                }
            }
        }
        let exact = rows.is_empty();
        if exact {
            latencies.sort_unstable();
        } else {
            for &l in &latencies {
                hist.add(l);
            }
        }
        let (min, max) = (agg.latency_min, agg.latency_max);
        let quantile = |p: f64| -> Option<f64> {
            if exact {
                exact_quantile(&latencies, p)
            } else {
                hist.quantile(p, min? as f64, max? as f64)
            }
        };
        let latency = LatencySummary {
            n: agg.latency_n,
            min,
            avg: (agg.latency_n > 0).then(|| agg.latency_sum as f64 / agg.latency_n as f64),
            max,
            p50: quantile(0.50),
            p95: quantile(0.95),
            p99: quantile(0.99),
        };
        Ok(CheckSummary {
            tier,
            total: agg.total,
            failures: agg.failures,
            uptime_pct: (agg.total > 0)
                .then(|| 100.0 * (agg.total - agg.failures) as f64 / agg.total as f64),
            latency,
            percentiles_exact: exact,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Retention.

/// A table retention trims, per owner (series or check).
struct Trimmed {
    table: &'static str,
    owner: &'static str,
    time: &'static str,
    width_ms: Option<i64>,
}

impl Store {
    async fn owner_ids(&self, sql: &str) -> anyhow::Result<Vec<i64>> {
        Ok(on_reader!(self, |pool| sqlx::query_scalar(sql)
            .fetch_all(pool)
            .await)?)
    }

    /// Deletes the rows of `t` with time before `before_ms`, per owner, `batch` rows per
    /// statement. Returns (rows, statements, longest statement ms).
    async fn delete_in_batches(
        &self,
        t: &Trimmed,
        owners: &[i64],
        before_ms: i64,
        batch: i64,
    ) -> anyhow::Result<(u64, u64, u64)> {
        let width_filter = if t.width_ms.is_some() {
            " AND width_ms = $4"
        } else {
            ""
        };
        let boundary_sql = format!(
            "SELECT {time} FROM {table} WHERE {owner} = $1 AND {time} < $2{width_filter} \
             ORDER BY {time} LIMIT 1 OFFSET $3",
            time = t.time,
            table = t.table,
            owner = t.owner,
        );
        let width_filter = if t.width_ms.is_some() {
            " AND width_ms = $3"
        } else {
            ""
        };
        let delete_sql = format!(
            "DELETE FROM {table} WHERE {owner} = $1 AND {time} < $2{width_filter}",
            time = t.time,
            table = t.table,
            owner = t.owner,
        );
        let (mut rows, mut statements, mut longest) = (0u64, 0u64, 0u64);
        for &owner in owners {
            loop {
                let boundary: Option<i64> = on_reader!(self, |pool| {
                    let q = sqlx::query_scalar(&boundary_sql)
                        .bind(owner)
                        .bind(before_ms)
                        .bind(batch);
                    match t.width_ms {
                        Some(w) => q.bind(w),
                        None => q,
                    }
                    .fetch_optional(pool)
                    .await
                })?;
                let upper = boundary.unwrap_or(before_ms);
                let started = std::time::Instant::now();
                let deleted = on_writer!(self, |pool| {
                    let q = sqlx::query(&delete_sql).bind(owner).bind(upper);
                    match t.width_ms {
                        Some(w) => q.bind(w),
                        None => q,
                    }
                    .execute(pool)
                    .await
                    .map(|r| r.rows_affected())
                })?;
                if deleted > 0 {
                    rows += deleted;
                    statements += 1;
                    longest = longest.max(started.elapsed().as_millis() as u64);
                }
                // Let whoever queued behind this statement (a check result, the health probe)
                // have the writer before the next batch.
                tokio::task::yield_now().await;
                if boundary.is_none() {
                    break;
                }
            }
        }
        Ok((rows, statements, longest))
    }

    /// Empties the buckets of the packed rows straddling `cutoff` that ended before it;
    /// returns the rows changed.
    async fn trim_straddling_chunks(&self, width_ms: i64, cutoff_ms: i64) -> anyhow::Result<u64> {
        if cutoff_ms <= 0 {
            // Nothing may go yet (no cursor), or a cutoff before 1970.
            return Ok(0);
        }
        let chunk_ms = align_down(cutoff_ms, chunk_span(width_ms));
        let old_slots = ((cutoff_ms - chunk_ms) / width_ms) as usize;
        if old_slots == 0 {
            return Ok(0);
        }
        let changed = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
                "SELECT series_id, slots FROM sample_rollups WHERE width_ms = $1 AND chunk_ms = $2 \
                 AND series_id IN (SELECT id FROM series)",
            )
            .bind(width_ms)
            .bind(chunk_ms)
            .fetch_all(&mut *tx)
            .await?;
            let mut changed = 0u64;
            for (series, mut data) in rows {
                data.resize(CHUNK_BYTES, 0);
                if (0..old_slots).all(|i| get_slot(&data, i, 0).is_none()) {
                    continue;
                }
                for i in 0..old_slots {
                    put_slot(&mut data, i, None);
                }
                changed += 1;
                if (0..CHUNK_SLOTS as usize).all(|i| get_slot(&data, i, 0).is_none()) {
                    sqlx::query(
                        "DELETE FROM sample_rollups WHERE series_id = $1 AND width_ms = $2 AND chunk_ms = $3",
                    )
                    .bind(series)
                    .bind(width_ms)
                    .bind(chunk_ms)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(SQL_PUT_CHUNK)
                        .bind(series)
                        .bind(width_ms)
                        .bind(chunk_ms)
                        .bind(data)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed)
        })?;
        Ok(changed)
    }

    /// Deletes what is older than each cutoff, `batch_rows` rows per statement, each statement
    /// its own transaction.
    pub async fn enforce_retention(
        &self,
        cut: &RetentionCutoffs,
        batch_rows: i64,
    ) -> anyhow::Result<RetentionReport> {
        let batch = batch_rows.max(1);
        let series = self.owner_ids("SELECT id FROM series ORDER BY id").await?;
        let checks = self.owner_ids("SELECT id FROM checks ORDER BY id").await?;
        let mut report = RetentionReport::default();
        fn tally(r: &mut RetentionReport, (rows, statements, longest): (u64, u64, u64)) -> u64 {
            r.batches += statements;
            r.longest_batch_ms = r.longest_batch_ms.max(longest);
            rows
        }

        let samples = Trimmed {
            table: "samples",
            owner: "series_id",
            time: "at_ms",
            width_ms: None,
        };
        let done = self
            .delete_in_batches(&samples, &series, cut.raw_samples_ms, batch)
            .await?;
        let n = tally(&mut report, done);
        report.samples = n;

        for (width, cutoff) in [
            (FIVE_MINUTES_MS, cut.five_minute_ms),
            (HOUR_MS, cut.hourly_ms),
        ] {
            let chunks = Trimmed {
                table: "sample_rollups",
                owner: "series_id",
                time: "chunk_ms",
                width_ms: Some(width),
            };
            // Whole rows whose last bucket ended before the cutoff.
            let before = cutoff.saturating_sub(chunk_span(width)).saturating_add(1);
            let done = self
                .delete_in_batches(&chunks, &series, before, (batch / 64).max(1))
                .await?;
            let n = tally(&mut report, done);
            report.sample_chunks += n;
            report.sample_chunks_trimmed += self.trim_straddling_chunks(width, cutoff).await?;
        }

        let results = Trimmed {
            table: "check_results",
            owner: "check_id",
            time: "at_ms",
            width_ms: None,
        };
        let done = self
            .delete_in_batches(&results, &checks, cut.raw_checks_ms, batch)
            .await?;
        let n = tally(&mut report, done);
        report.check_results = n;

        for (width, cutoff) in [(HOUR_MS, cut.check_hourly_ms), (DAY_MS, cut.check_daily_ms)] {
            let rollups = Trimmed {
                table: "check_rollups",
                owner: "check_id",
                time: "bucket_ms",
                width_ms: Some(width),
            };
            let before = cutoff.saturating_sub(width).saturating_add(1);
            let done = self
                .delete_in_batches(&rollups, &checks, before, batch)
                .await?;
            let n = tally(&mut report, done);
            report.check_rollups += n;
        }
        Ok(report)
    }

    /// SQLite: hands free pages back to the file system, `pages_per_step` at a time (each step
    /// a short write), at most `max_steps` steps; then a passive checkpoint so the file
    /// shrinks. PostgreSQL: a plain `VACUUM (ANALYZE)` of the history tables, so the space of
    /// the rows just deleted (and of the packed rows' old versions) is reused at once rather
    /// than whenever autovacuum gets to it, and the planner knows the tables' sizes. A plain
    /// `VACUUM` takes no lock that blocks reads or writes; `VACUUM FULL` is never run.
    pub async fn reclaim_space(
        &self,
        pages_per_step: i64,
        max_steps: u64,
    ) -> anyhow::Result<ReclaimReport> {
        let mut report = ReclaimReport::default();
        if let Pool::Postgres(pool) = &self.pool {
            let started = std::time::Instant::now();
            // Simple protocol: VACUUM may not run inside a transaction, implicit or not.
            // `series` and `checks` too: they change too little for autoanalyze ever to look at
            // them, and without their row counts the planner scans every sample in a roll-up
            // instead of seeking each series.
            sqlx::raw_sql(
                "VACUUM (ANALYZE) series, checks, samples, sample_rollups, check_results, check_rollups",
            )
                .execute(pool)
                .await?;
            report.steps = 1;
            report.longest_step_ms = started.elapsed().as_millis() as u64;
            return Ok(report);
        }
        let mode: i64 = on_writer!(self, |pool| sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(pool)
            .await)?;
        report.incremental = mode == 2;
        let free_pages = || async {
            on_writer!(self, |pool| sqlx::query_scalar::<_, i64>(
                "PRAGMA freelist_count"
            )
            .fetch_one(pool)
            .await)
        };
        let before = free_pages().await?;
        report.free_pages_left = before;
        if !report.incremental || before == 0 {
            return Ok(report);
        }
        let step_sql = format!("PRAGMA incremental_vacuum({})", pages_per_step.max(1));
        while report.steps < max_steps {
            let started = std::time::Instant::now();
            on_writer!(self, |pool| sqlx::query(&step_sql)
                .execute(pool)
                .await
                .map(|_| ()))?;
            report.steps += 1;
            report.longest_step_ms = report
                .longest_step_ms
                .max(started.elapsed().as_millis() as u64);
            tokio::task::yield_now().await;
            report.free_pages_left = free_pages().await?;
            if report.free_pages_left == 0 {
                break;
            }
        }
        report.pages_freed = before - report.free_pages_left;
        on_writer!(self, |pool| sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(report)
    }
}

// ---------------------------------------------------------------------------------------------
// Bulk import (the benchmark's year generator; imports from other tools).

const IMPORT_ROWS: usize = 500;

impl Store {
    /// Writes many `(series_id, at_ms, value)` samples in one transaction, several hundred per
    /// statement. For imports and the benchmark generator; the daemon uses `record_samples`.
    pub async fn import_samples(&self, rows: &[(i64, i64, f64)]) -> anyhow::Result<()> {
        let sql = |n: usize| {
            let values: Vec<String> = (0..n)
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect();
            format!(
                "INSERT INTO samples (series_id, at_ms, value) VALUES {} \
                 ON CONFLICT (series_id, at_ms) DO UPDATE SET value = excluded.value",
                values.join(", ")
            )
        };
        // One statement is atomic by itself: a host sample (a few dozen rows) needs no
        // transaction around it, which saves two round trips to SQLite's worker thread.
        if rows.is_empty() {
            return Ok(());
        }
        if rows.len() <= IMPORT_ROWS {
            let text = sql(rows.len());
            on_writer!(self, |pool| {
                let mut q = sqlx::query(&text);
                for (series, at, value) in rows {
                    q = q.bind(*series).bind(*at).bind(*value);
                }
                q.execute(pool).await.map(|_| ())
            })?;
            return Ok(());
        }
        let full = sql(IMPORT_ROWS);
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for part in rows.chunks(IMPORT_ROWS) {
                let text = if part.len() == IMPORT_ROWS {
                    full.clone()
                } else {
                    sql(part.len())
                };
                let mut q = sqlx::query(&text);
                for (series, at, value) in part {
                    q = q.bind(*series).bind(*at).bind(*value);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// Writes many results of one check in one transaction, without touching its state. For
    /// imports and the benchmark generator; the daemon uses `record_check_outcome`.
    pub async fn import_check_results(
        &self,
        check_id: i64,
        rows: &[ResultRow],
    ) -> anyhow::Result<()> {
        const COLS: usize = 8;
        let sql = |n: usize| {
            let values: Vec<String> = (0..n)
                .map(|i| {
                    let p: Vec<String> = (1..=COLS).map(|c| format!("${}", COLS * i + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO check_results \
                 (check_id, at_ms, ok, latency_ms, status_code, error_kind, error, cert_expires_ms) \
                 VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            )
        };
        let full = sql(IMPORT_ROWS);
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            for part in rows.chunks(IMPORT_ROWS) {
                let text = if part.len() == IMPORT_ROWS {
                    full.clone()
                } else {
                    sql(part.len())
                };
                let mut q = sqlx::query(&text);
                for r in part {
                    q = q
                        .bind(check_id)
                        .bind(r.at_ms)
                        .bind(r.ok)
                        .bind(r.latency_ms)
                        .bind(r.status_code)
                        .bind(r.error_kind.clone())
                        .bind(r.error.clone())
                        .bind(r.cert_expires_ms);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await
        })?;
        Ok(())
    }

    /// The plans of the hot queries (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL `EXPLAIN`), for
    /// BENCHMARKS.md and for diagnosing a slow store.
    pub async fn explain_hot_queries(
        &self,
        series_id: i64,
        check_id: i64,
        now_ms: i64,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        let day = 86_400_000;
        let year = 365 * day;
        // (name, sql, binds); every bind is an i64.
        let queries: Vec<(&'static str, &'static str, Vec<i64>)> = vec![
            (
                "chart, raw (24 h)",
                SQL_CHART_RAW,
                vec![series_id, now_ms - day, now_ms, 173_000],
            ),
            (
                "chart, tier (1 y)",
                SQL_CHART_CHUNKS,
                vec![series_id, HOUR_MS, now_ms - year, now_ms],
            ),
            (
                "restart counter, raw (24 h)",
                SQL_RAW_COUNTER,
                vec![series_id, now_ms - day, now_ms],
            ),
            (
                "oldest raw sample of a series",
                SQL_OLDEST_RAW,
                vec![series_id],
            ),
            (
                "roll-up raw -> 5 min",
                SQL_ROLLUP_RAW,
                vec![now_ms - FIVE_MINUTES_MS, now_ms, FIVE_MINUTES_MS],
            ),
            (
                "roll-up 5 min -> hourly",
                SQL_ROLLUP_CHUNKS,
                vec![FIVE_MINUTES_MS, now_ms - 2 * HOUR_MS, now_ms],
            ),
            (
                "roll-up checks -> hourly",
                SQL_ROLLUP_CHECKS,
                vec![now_ms - HOUR_MS, now_ms],
            ),
            (
                "check chart, raw (7 d)",
                SQL_CHECK_CHART_RAW,
                vec![check_id, now_ms - 7 * day, now_ms, 1_212_000],
            ),
            (
                "check summary, raw (7 d)",
                SQL_CHECK_RAW,
                vec![check_id, now_ms - 7 * day, now_ms],
            ),
            (
                "check chart, hourly (1 y)",
                SQL_CHECK_TIER_CHART,
                vec![check_id, HOUR_MS, now_ms - year, now_ms, 64_800_000],
            ),
            (
                "check summary, daily (1 y)",
                SQL_CHECK_TIER,
                vec![check_id, DAY_MS, now_ms - year, now_ms],
            ),
            (
                "roll-up checks hourly -> daily",
                SQL_ROLLUP_CHECK_DAYS,
                vec![HOUR_MS, now_ms - DAY_MS, now_ms],
            ),
            (
                "retention: batch boundary",
                SQL_RETENTION_BOUNDARY,
                vec![series_id, now_ms - 7 * day, 5000],
            ),
            (
                "retention: batch delete",
                SQL_RETENTION_DELETE,
                vec![series_id, now_ms - 7 * day],
            ),
        ];
        let mut out = Vec::new();
        for (name, sql, binds) in queries {
            let plan = match self.backend() {
                Backend::Sqlite => {
                    let text = format!("EXPLAIN QUERY PLAN {sql}");
                    let rows: Vec<(i64, i64, i64, String)> = on_reader!(self, |pool| {
                        let mut q = sqlx::query_as(&text);
                        for b in &binds {
                            q = q.bind(*b);
                        }
                        q.fetch_all(pool).await
                    })?;
                    // Indent by depth: a row's parent is an earlier row's id.
                    let mut depth: BTreeMap<i64, usize> = BTreeMap::new();
                    let mut lines = Vec::new();
                    for (id, parent, _, detail) in rows {
                        let d = depth.get(&parent).map_or(0, |d| d + 1);
                        depth.insert(id, d);
                        lines.push(format!("{}{detail}", "  ".repeat(d)));
                    }
                    lines.join("\n")
                }
                Backend::Postgres => {
                    let text = format!("EXPLAIN {sql}");
                    let rows: Vec<String> = on_reader!(self, |pool| {
                        let mut q = sqlx::query_scalar(&text);
                        for b in &binds {
                            q = q.bind(*b);
                        }
                        q.fetch_all(pool).await
                    })?;
                    rows.join("\n")
                }
            };
            out.push((name, plan));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(at_ms: i64, v: f64) -> Bucket {
        Bucket {
            at_ms,
            min: v,
            max: v,
            sum: v,
            count: 1,
        }
    }

    #[test]
    fn slots_round_trip_and_empty_slots_read_as_none() {
        let mut data = vec![0u8; CHUNK_BYTES];
        let bucket = Bucket {
            at_ms: 0,
            min: 1.5,
            max: 9.25,
            sum: 20.0,
            count: 4,
        };
        put_slot(&mut data, 3, Some(&bucket));
        assert_eq!(get_slot(&data, 2, 0), None);
        let back = get_slot(&data, 3, 900_000).unwrap();
        assert_eq!(
            (back.min, back.max, back.sum, back.count),
            (1.5, 9.25, 20.0, 4)
        );
        assert_eq!(back.at_ms, 900_000);
        put_slot(&mut data, 3, None);
        assert_eq!(get_slot(&data, 3, 0), None);
    }

    #[test]
    fn tiers_follow_the_range() {
        let day = 86_400_000;
        let tiers: Vec<Tier> = CHART_RANGES
            .iter()
            .map(|(_, ms)| preferred_tier(*ms))
            .collect();
        use Tier::*;
        assert_eq!(
            tiers,
            [Raw, Raw, Raw, FiveMinute, FiveMinute, Hourly, Hourly]
        );
        for (_, span) in CHART_RANGES {
            let tier = preferred_tier(*span);
            let w = point_width(*span, tier);
            assert_eq!(w % tier.width_ms().max(1), 0);
            // Unaligned ranges touch at most one more bucket than the span holds.
            assert!((span + w - 1) / w < MAX_POINTS, "{span}: {w}");
        }
        assert_eq!(point_width(30 * day, Tier::FiveMinute), 90 * 60_000);
    }

    #[test]
    fn rebucketing_keeps_spikes_and_weights_the_average() {
        let points = rebucket(
            [
                b(0, 1.0),
                Bucket {
                    at_ms: 10,
                    min: 0.5,
                    max: 100.0,
                    sum: 9.0,
                    count: 3,
                },
                b(20, 2.0),
            ],
            20,
        );
        assert_eq!(points.len(), 2);
        assert_eq!(
            (points[0].min, points[0].max, points[0].count),
            (0.5, 100.0, 4)
        );
        assert_eq!(points[0].avg, 2.5);
        assert_eq!(points[1].at_ms, 20);
    }

    #[test]
    fn counters_count_growth_and_resets() {
        let raw: Vec<Bucket> = [3.0, 3.0, 5.0, 0.0, 2.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| b(i as i64, *v))
            .collect();
        assert_eq!(counter_increase_of(&raw), 2.0 + 0.0 + 2.0);
        let rolled = [
            Bucket {
                at_ms: 0,
                min: 3.0,
                max: 5.0,
                sum: 0.0,
                count: 3,
            },
            Bucket {
                at_ms: 1,
                min: 7.0,
                max: 7.0,
                sum: 0.0,
                count: 3,
            },
        ];
        assert_eq!(counter_increase_of(&rolled), 4.0);
    }

    #[test]
    fn histogram_percentiles_stay_within_a_bin() {
        let mut h = Histogram::default();
        let mut values: Vec<i64> = (1..=1000).map(|i| 20 + (i * i) % 700).collect();
        for v in &values {
            h.add(*v);
        }
        let mut back = Histogram::default();
        back.add_encoded(&h.encode());
        assert_eq!(back, h);
        values.sort_unstable();
        for p in [0.5, 0.95, 0.99] {
            let exact = exact_quantile(&values, p).unwrap();
            let est = h.quantile(p, 20.0, 719.0).unwrap();
            assert!((est - exact).abs() / exact < 0.19, "p{p}: {est} vs {exact}");
        }
        assert_eq!(hist_bin(0), 0);
        assert_eq!(hist_bin(2), 4);
        let (lo, hi) = bin_bounds(hist_bin(100));
        assert!(lo < 100.0 && 100.0 <= hi);
    }
}
