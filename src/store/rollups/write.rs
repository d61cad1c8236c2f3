//! The roll-up steps: raw → 5-minute → hourly for samples, raw → hourly → daily for checks.

use super::step::RollupStep;
use super::*;

// ---------------------------------------------------------------------------------------------
// Roll-up.

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
        let Some(mut step) = RollupStep::begin(self, CURSOR_SAMPLES_5M, to_ms).await? else {
            return Ok(0);
        };
        let buckets: Vec<(i64, Bucket)> = step
            .raw_groups(from_ms, to_ms, width)
            .await?
            .into_iter()
            .map(|g| {
                let bucket = Bucket {
                    at_ms: align_down(g.at_ms, width),
                    min: g.min,
                    max: g.max,
                    sum: g.sum,
                    count: g.count,
                };
                (g.series_id, bucket)
            })
            .collect();
        let n = buckets.len() as u64;
        step.patch_chunks(width, buckets).await?;
        step.finish(now_ms()).await?;
        Ok(n)
    }

    /// Rolls the 5-minute buckets of `[from, to)` (whole hours, already rolled up from raw) into
    /// the hourly tier and moves its cursor to `to`, in one transaction.
    pub async fn roll_up_samples_hourly(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let (fine, width) = (FIVE_MINUTES_MS, HOUR_MS);
        let Some(mut step) = RollupStep::begin(self, CURSOR_SAMPLES_1H, to_ms).await? else {
            return Ok(0);
        };
        let rows = step
            .chunks(fine, align_down(from_ms, chunk_span(fine)), to_ms)
            .await?;
        let mut hours: BTreeMap<(i64, i64), Bucket> = BTreeMap::new();
        for row in &rows {
            for b in chunk_buckets(row.chunk_ms, fine, &row.slots, from_ms, to_ms) {
                let at_ms = align_down(b.at_ms, width);
                hours
                    .entry((row.series_id, at_ms))
                    .and_modify(|h| h.merge(&b))
                    .or_insert(Bucket { at_ms, ..b });
            }
        }
        let n = hours.len() as u64;
        let buckets = hours.into_iter().map(|((s, _), b)| (s, b)).collect();
        step.patch_chunks(width, buckets).await?;
        step.finish(now_ms()).await?;
        Ok(n)
    }

    /// Rolls the check results of `[from, to)` (whole hours) into the hourly check tier and
    /// moves its cursor to `to`, in one transaction.
    pub async fn roll_up_checks_hourly(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<u64> {
        let width = HOUR_MS;
        let Some(mut step) = RollupStep::begin(self, CURSOR_CHECKS_1H, to_ms).await? else {
            return Ok(0);
        };
        let mut hours: BTreeMap<(i64, i64), (CheckAgg, Histogram)> = BTreeMap::new();
        for (check, at, ok, latency) in step.check_results(from_ms, to_ms).await? {
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
        step.put_check_rollups(width, hours).await?;
        step.finish(now_ms()).await?;
        Ok(n)
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
        let Some(mut step) = RollupStep::begin(self, CURSOR_CHECKS_1D, to_ms).await? else {
            return Ok(0);
        };
        let mut days: BTreeMap<(i64, i64), (CheckAgg, Histogram)> = BTreeMap::new();
        for row in step.check_hours(from_ms, to_ms).await? {
            let at_ms = align_down(row.bucket.agg.at_ms, DAY_MS);
            let (agg, hist) = days.entry((row.check_id, at_ms)).or_insert_with(|| {
                (
                    CheckAgg {
                        at_ms,
                        ..CheckAgg::default()
                    },
                    Histogram::default(),
                )
            });
            // The day's start stays: merging keeps the earlier `at_ms`.
            agg.merge(&row.bucket.agg);
            hist.add_encoded(&row.bucket.latency_hist);
        }
        let n = days.len() as u64;
        step.put_check_rollups(DAY_MS, days).await?;
        step.finish(now_ms()).await?;
        Ok(n)
    }
}
