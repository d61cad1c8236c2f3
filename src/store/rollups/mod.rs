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
//!   with one primary-key range seek per series or check (and the packed rows it patches with
//!   one more), and writes them with multi-row upserts of 200 rows and the new cursor in one
//!   transaction (`step.rs`), so a crash repeats at most one step, and repeating is harmless: buckets
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

#[cfg(feature = "bench")]
mod bench;
mod charts;
mod check_stats;
mod codec;
mod histogram;
mod many;
mod retention;
mod sql;
mod step;
mod write;

use std::collections::BTreeMap;

use serde::Serialize;

pub use self::codec::preferred_tier;
use self::codec::*;
use self::histogram::*;
pub(super) use self::many::like_prefix;
pub use self::many::{DayCount, SQL_CHECKS_RAW_POINTS, SQL_PREFIX_CHUNKS, SQL_PREFIX_RAW};
pub use self::sql::*;
use super::{MAX_POINTS, Point, Pool, Store, now_ms, on_reader, on_writer};

pub const FIVE_MINUTES_MS: i64 = 300_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Buckets per `sample_rollups` row.
pub const CHUNK_SLOTS: i64 = 64;
pub(super) const SLOT_BYTES: usize = 14;
pub(super) const CHUNK_BYTES: usize = SLOT_BYTES * CHUNK_SLOTS as usize;

/// Raw samples before this are in the 5-minute tier.
pub const CURSOR_SAMPLES_5M: &str = "rollup:samples:5m";
/// 5-minute buckets before this are in the hourly tier.
pub const CURSOR_SAMPLES_1H: &str = "rollup:samples:1h";
/// Check results before this are in the hourly check tier.
pub const CURSOR_CHECKS_1H: &str = "rollup:checks:1h";
/// Hourly check buckets before this are summed into daily ones.
pub const CURSOR_CHECKS_1D: &str = "rollup:checks:1d";

/// Advisory lock key (PostgreSQL) serialising roll-up steps across processes.
pub(super) const ROLLUP_LOCK_KEY: i64 = 0x6f70_7377_6174_6368;

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

/// The span in ms of the chart range named `name` (`24h`); the error says what to write.
pub fn parse_chart_range(name: &str) -> Result<i64, String> {
    CHART_RANGES
        .iter()
        .find(|(r, _)| *r == name)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| {
            let all: Vec<&str> = CHART_RANGES.iter().map(|(r, _)| *r).collect();
            format!("must be one of {}, not {name:?}", all.join(", "))
        })
}

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
