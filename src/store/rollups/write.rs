//! The roll-up steps: raw → 5-minute → hourly for samples, raw → hourly → daily for checks.

use super::*;

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
            let rows: Vec<CheckDayRow> = sqlx::query_as(SQL_ROLLUP_CHECK_DAYS)
                .bind(HOUR_MS)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&mut *tx)
                .await?;
            let mut days: BTreeMap<(i64, i64), (CheckAgg, Histogram)> = BTreeMap::new();
            for row in &rows {
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
            put_check_rollups!(tx, DAY_MS, days);
            finish_rollup_step!(tx, CURSOR_CHECKS_1D, to_ms, now);
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(written)
    }
}
