//! Keeps history small: the roll-up job (every [`ROLLUP_EVERY`], cheap and incremental) and
//! the retention job (on `[history] retention_schedule`: roll up what is pending, delete what
//! is older than its period, give SQLite's free pages back).
//!
//! Tiers, encodings and the query side are described in `store/rollups.rs`. Here: when and how
//! much. Both jobs write in short transactions (a roll-up step, a batch of deletes, a vacuum
//! step) and let other writers in between, so a check result or the health probe waits
//! milliseconds behind them, never seconds: SQLite writer contention cannot turn into a false
//! DOWN or an unhealthy `/health`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::HistoryConfig;
use crate::daemon::state::AppState;
use crate::store::Store;
use crate::store::rollups::{
    DAY_MS, FIVE_MINUTES_MS, HOUR_MS, ReclaimReport, RetentionCutoffs, RetentionReport,
};

/// How often the roll-up job runs.
pub const ROLLUP_EVERY: Duration = Duration::from_secs(300);
/// A roll-up run still going after this long is abandoned (its finished steps are kept).
pub const ROLLUP_TIMEOUT: Duration = Duration::from_secs(240);
/// A retention run still going after this long is abandoned (what it deleted stays deleted).
pub const RETENTION_TIMEOUT: Duration = Duration::from_secs(600);

/// A sample is written at most this long after its timestamp (a slow PM2 poll): a 5-minute
/// bucket is rolled up once it ended this long ago.
const SAMPLE_GRACE_MS: i64 = 120_000;
/// The same for check results (a probe's timeout).
const CHECK_GRACE_MS: i64 = 300_000;
/// Most raw time one roll-up transaction aggregates when catching up (after an upgrade or a
/// stop): about 15 000 samples of a default host.
const STEP_5M_MS: i64 = 6 * HOUR_MS;
/// Most time one hourly roll-up transaction aggregates.
const STEP_1H_MS: i64 = 24 * HOUR_MS;
/// Most time one daily check roll-up transaction sums.
const STEP_1D_MS: i64 = 30 * DAY_MS;
/// Rows per delete statement.
pub const RETENTION_BATCH_ROWS: i64 = 5_000;
/// Pages per `incremental_vacuum` step (4 KiB each).
const VACUUM_PAGES_PER_STEP: i64 = 256;
/// At most this many vacuum steps per run (1 GiB); the rest waits for the next run.
const VACUUM_MAX_STEPS: u64 = 4_096;

/// What one roll-up run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollupReport {
    pub buckets_5m: u64,
    pub buckets_1h: u64,
    pub check_buckets_1h: u64,
    pub check_buckets_1d: u64,
    /// Transactions.
    pub steps: u64,
    /// The longest of them, ms: the longest a writer waited because of the roll-up.
    pub longest_step_ms: u64,
    pub elapsed_ms: u64,
}

/// What one retention run did.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionRun {
    pub rollup: RollupReport,
    pub cutoffs: RetentionCutoffs,
    pub deleted: RetentionReport,
    pub reclaimed: ReclaimReport,
    pub elapsed_ms: u64,
}

/// Rolls up every closed bucket not rolled up yet, as of `now_ms`.
pub async fn roll_up(store: &Store, now_ms: i64) -> anyhow::Result<RollupReport> {
    static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    // The roll-up job and the retention job may both roll up; one at a time in a process.
    let _one = RUNNING.lock().await;
    let started = Instant::now();
    let mut report = RollupReport::default();
    let cursors = store.rollup_cursors().await?;

    // Raw → 5-minute.
    let closed = align_down(now_ms - SAMPLE_GRACE_MS, FIVE_MINUTES_MS);
    let start = match cursors.samples_5m {
        Some(c) => Some(c),
        None => store
            .oldest_raw_sample_ms()
            .await?
            .map(|t| align_down(t, FIVE_MINUTES_MS)),
    };
    let mut c5m = cursors.samples_5m;
    if let Some(from) = start {
        report.buckets_5m += in_steps(&mut report, from, closed, STEP_5M_MS, |from, to| {
            store.roll_up_samples_5m(from, to)
        })
        .await?;
        if from < closed {
            c5m = Some(closed);
        }
    }

    // 5-minute → hourly, up to the last whole hour the 5-minute tier has.
    if let Some(c5m) = c5m {
        let closed = align_down(c5m, HOUR_MS);
        let from = match cursors.samples_1h {
            Some(c) => c,
            None => store
                .oldest_raw_sample_ms()
                .await?
                .map_or(closed, |t| align_down(t, HOUR_MS)),
        };
        report.buckets_1h += in_steps(&mut report, from, closed, STEP_1H_MS, |from, to| {
            store.roll_up_samples_hourly(from, to)
        })
        .await?;
    }

    // Check results → hourly.
    let closed = align_down(now_ms - CHECK_GRACE_MS, HOUR_MS);
    let start = match cursors.checks_1h {
        Some(c) => Some(c),
        None => store
            .oldest_raw_check_result_ms()
            .await?
            .map(|t| align_down(t, HOUR_MS)),
    };
    let mut c1h = cursors.checks_1h;
    if let Some(from) = start {
        report.check_buckets_1h += in_steps(&mut report, from, closed, STEP_1H_MS, |from, to| {
            store.roll_up_checks_hourly(from, to)
        })
        .await?;
        if from < closed {
            c1h = Some(closed);
        }
    }

    // Hourly check buckets → daily sums, up to the last whole day the hourly tier has.
    if let Some(c1h) = c1h {
        let closed = align_down(c1h, DAY_MS);
        let from = match cursors.checks_1d {
            Some(c) => c,
            None => store
                .oldest_check_rollup_ms()
                .await?
                .map_or(closed, |t| align_down(t, DAY_MS)),
        };
        report.check_buckets_1d += in_steps(&mut report, from, closed, STEP_1D_MS, |from, to| {
            store.roll_up_checks_daily(from, to)
        })
        .await?;
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Runs `step` over `[from, closed)` in slices of at most `width`, yielding between slices so
/// a long catch-up never hogs a worker; counts the slices in `report`. Returns the buckets the
/// steps wrote.
async fn in_steps<F, Fut>(
    report: &mut RollupReport,
    mut from: i64,
    closed: i64,
    width: i64,
    mut step: F,
) -> anyhow::Result<u64>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mut written = 0;
    while from < closed {
        let to = (from + width).min(closed);
        let started = Instant::now();
        written += step(from, to).await?;
        report.longest_step_ms = report
            .longest_step_ms
            .max(started.elapsed().as_millis() as u64);
        report.steps += 1;
        from = to;
        tokio::task::yield_now().await;
    }
    Ok(written)
}

/// What retention may delete as of `now_ms`: what is older than its period, but never what
/// the next tier has not got yet.
pub async fn cutoffs(
    store: &Store,
    cfg: &HistoryConfig,
    now_ms: i64,
) -> anyhow::Result<RetentionCutoffs> {
    let c = store.rollup_cursors().await?;
    let not_after = |cursor: Option<i64>, t: i64| cursor.map_or(i64::MIN, |c| c.min(t));
    Ok(RetentionCutoffs {
        raw_samples_ms: not_after(c.samples_5m, now_ms - cfg.raw.as_millis_i64()),
        five_minute_ms: not_after(c.samples_1h, now_ms - cfg.five_minute.as_millis_i64()),
        hourly_ms: now_ms - cfg.hourly.as_millis_i64(),
        raw_checks_ms: not_after(c.checks_1h, now_ms - cfg.raw.as_millis_i64()),
        check_hourly_ms: not_after(c.checks_1d, now_ms - cfg.hourly.as_millis_i64()),
        check_daily_ms: now_ms - cfg.hourly.as_millis_i64(),
    })
}

/// The daily run: roll up what is pending, delete what is past its period, give space back.
pub async fn enforce_retention(
    store: &Store,
    cfg: &HistoryConfig,
    now_ms: i64,
) -> anyhow::Result<RetentionRun> {
    let started = Instant::now();
    let rollup = roll_up(store, now_ms).await?;
    let cutoffs = cutoffs(store, cfg, now_ms).await?;
    let deleted = store
        .enforce_retention(&cutoffs, RETENTION_BATCH_ROWS)
        .await?;
    let reclaimed = store
        .reclaim_space(VACUUM_PAGES_PER_STEP, VACUUM_MAX_STEPS)
        .await?;
    Ok(RetentionRun {
        rollup,
        cutoffs,
        deleted,
        reclaimed,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The scheduled roll-up job.
pub async fn roll_up_job(app: AppState) -> anyhow::Result<()> {
    let r = roll_up(&app.store, app.clock.now_ms()).await?;
    tracing::debug!(
        buckets_5m = r.buckets_5m,
        buckets_1h = r.buckets_1h,
        check_buckets_1h = r.check_buckets_1h,
        steps = r.steps,
        elapsed_ms = r.elapsed_ms,
        "history rolled up"
    );
    Ok(())
}

/// The scheduled retention job.
pub async fn retention_job(app: AppState) -> anyhow::Result<()> {
    let r = enforce_retention(&app.store, &app.config.history, app.clock.now_ms()).await?;
    tracing::info!(
        samples = r.deleted.samples,
        sample_chunks = r.deleted.sample_chunks,
        check_results = r.deleted.check_results,
        check_rollups = r.deleted.check_rollups,
        longest_batch_ms = r.deleted.longest_batch_ms,
        pages_freed = r.reclaimed.pages_freed,
        elapsed_ms = r.elapsed_ms,
        "history retention done"
    );
    Ok(())
}

fn align_down(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width
}
