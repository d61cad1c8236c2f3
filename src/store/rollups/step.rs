//! The transaction of one roll-up step: what a step reads and writes, on either backend.
//!
//! A step is a value the caller holds ([`RollupStep`]), not a macro: opening it says
//! explicitly when there is nothing to do (`None`), and every error comes back through the
//! caller's own `?`.

use std::collections::HashMap;

use sqlx::{Postgres, QueryBuilder, Sqlite, Transaction};

use super::*;

/// Rows per multi-row upsert. The widest (a check bucket) binds 10 parameters, so a statement
/// binds at most 2 000: far below SQLite's limit (32 766 since 3.32) and PostgreSQL's (65 535),
/// and a default host's step (42 series, a few chunks each) takes one or two statements.
pub(super) const UPSERT_ROWS: usize = 200;

/// The open transaction of a step, on the store's backend.
enum StepTx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Evaluates `$body` with `$c` bound to the step's connection, once per backend (the same
/// text, typed for each). Like `on_writer!` it only picks the backend: no `?` or `return`.
macro_rules! on_step {
    ($step:expr, |$c:ident| $body:expr) => {
        match &mut $step.tx {
            StepTx::Sqlite(tx) => {
                let $c = &mut **tx;
                $body
            }
            StepTx::Postgres(tx) => {
                let $c = &mut **tx;
                $body
            }
        }
    };
}

/// A group of raw samples of one series in one bucket (`SQL_ROLLUP_RAW`).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct RawGroup {
    pub(super) series_id: i64,
    pub(super) at_ms: i64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) sum: f64,
    pub(super) count: i64,
}

/// A packed row of `sample_rollups` (`SQL_ROLLUP_CHUNKS`).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct ChunkRow {
    pub(super) series_id: i64,
    pub(super) chunk_ms: i64,
    pub(super) slots: Vec<u8>,
}

/// One step of one tier: a transaction that moves the tier's cursor to `to_ms` when it
/// finishes. Dropped unfinished (an error), it rolls back and the cursor stays.
pub(super) struct RollupStep {
    tx: StepTx,
    cursor: &'static str,
    to_ms: i64,
}

impl RollupStep {
    /// Opens the step of the tier whose cursor is `cursor` up to `to_ms`: on PostgreSQL it
    /// first takes the roll-up lock, so several instances never roll up the same range twice.
    /// `None` when the cursor already reached `to_ms` (another instance, or the other job, got
    /// there first): the transaction is closed and there is nothing to do.
    pub(super) async fn begin(
        store: &Store,
        cursor: &'static str,
        to_ms: i64,
    ) -> Result<Option<Self>, sqlx::Error> {
        let tx = match &store.pool {
            Pool::Sqlite { writer, .. } => StepTx::Sqlite(writer.begin().await?),
            Pool::Postgres(pool) => StepTx::Postgres(pool.begin().await?),
        };
        let mut step = RollupStep { tx, cursor, to_ms };
        if let StepTx::Postgres(tx) = &mut step.tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK_KEY)
                .execute(&mut **tx)
                .await?;
        }
        let current: Option<String> = on_step!(step, |c| sqlx::query_scalar(SQL_GET_CURSOR)
            .bind(cursor)
            .fetch_optional(c)
            .await)?;
        if current
            .as_deref()
            .and_then(parse_cursor)
            .is_some_and(|c| c >= to_ms)
        {
            step.commit().await?;
            return Ok(None);
        }
        Ok(Some(step))
    }

    /// Moves the tier's cursor to the step's end and commits everything the step wrote.
    pub(super) async fn finish(mut self, now_ms: i64) -> Result<(), sqlx::Error> {
        let (cursor, to) = (self.cursor, self.to_ms.to_string());
        on_step!(self, |c| sqlx::query(SQL_SET_CURSOR)
            .bind(cursor)
            .bind(&to)
            .bind(now_ms)
            .execute(c)
            .await
            .map(|_| ()))?;
        self.commit().await
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self.tx {
            StepTx::Sqlite(tx) => tx.commit().await,
            StepTx::Postgres(tx) => tx.commit().await,
        }
    }

    /// The raw samples of `[from, to)` grouped per series into buckets `width_ms` wide.
    pub(super) async fn raw_groups(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        width_ms: i64,
    ) -> Result<Vec<RawGroup>, sqlx::Error> {
        on_step!(self, |c| sqlx::query_as(SQL_ROLLUP_RAW)
            .bind(from_ms)
            .bind(to_ms)
            .bind(width_ms)
            .fetch_all(c)
            .await)
    }

    /// The packed rows of tier `width_ms` whose chunk starts in `[from, to)`, every series.
    pub(super) async fn chunks(
        &mut self,
        width_ms: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<ChunkRow>, sqlx::Error> {
        on_step!(self, |c| sqlx::query_as(SQL_ROLLUP_CHUNKS)
            .bind(width_ms)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(c)
            .await)
    }

    /// The raw check results of `[from, to)`: check id, time, ok, latency.
    pub(super) async fn check_results(
        &mut self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, i64, bool, Option<i64>)>, sqlx::Error> {
        on_step!(self, |c| sqlx::query_as(SQL_ROLLUP_CHECKS)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(c)
            .await)
    }

    /// The hourly check buckets of `[from, to)`, every check.
    pub(super) async fn check_hours(
        &mut self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<CheckDayRow>, sqlx::Error> {
        on_step!(self, |c| sqlx::query_as(SQL_ROLLUP_CHECK_DAYS)
            .bind(HOUR_MS)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(c)
            .await)
    }

    /// Merges `buckets` (series id, bucket) into the packed chunks of tier `width_ms`: the
    /// chunks they fall in are read with one range query and written back with multi-row
    /// upserts of [`UPSERT_ROWS`].
    pub(super) async fn patch_chunks(
        &mut self,
        width_ms: i64,
        buckets: Vec<(i64, Bucket)>,
    ) -> Result<(), sqlx::Error> {
        let groups = by_chunk(width_ms, buckets);
        let starts = groups.keys().map(|&(_, chunk_ms)| chunk_ms);
        let (Some(first), Some(last)) = (starts.clone().min(), starts.max()) else {
            return Ok(());
        };
        // A step spans hours, so this reads a few chunks per series, not the tier.
        let mut existing: HashMap<(i64, i64), Vec<u8>> = self
            .chunks(width_ms, first, last + 1)
            .await?
            .into_iter()
            .map(|row| ((row.series_id, row.chunk_ms), row.slots))
            .collect();
        let rows: Vec<(i64, i64, Vec<u8>)> = groups
            .into_iter()
            .map(|((series, chunk_ms), buckets)| {
                let old = existing.remove(&(series, chunk_ms));
                (
                    series,
                    chunk_ms,
                    patch_chunk(old, chunk_ms, width_ms, &buckets),
                )
            })
            .collect();
        for batch in rows.chunks(UPSERT_ROWS) {
            on_step!(self, |c| {
                let mut q = QueryBuilder::new(SQL_PUT_CHUNKS_HEAD);
                q.push_values(batch, |mut row, (series, chunk_ms, data)| {
                    row.push_bind(*series)
                        .push_bind(width_ms)
                        .push_bind(*chunk_ms)
                        .push_bind(data.as_slice());
                });
                q.push(SQL_PUT_CHUNKS_TAIL);
                q.build().execute(c).await.map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Writes the check buckets of `buckets` ((check id, bucket start) → aggregate,
    /// histogram) into tier `width_ms`, with multi-row upserts of [`UPSERT_ROWS`].
    pub(super) async fn put_check_rollups(
        &mut self,
        width_ms: i64,
        buckets: BTreeMap<(i64, i64), (CheckAgg, Histogram)>,
    ) -> Result<(), sqlx::Error> {
        let rows: Vec<(i64, i64, CheckAgg, Vec<u8>)> = buckets
            .into_iter()
            .map(|((check, at_ms), (agg, hist))| (check, at_ms, agg, hist.encode()))
            .collect();
        for batch in rows.chunks(UPSERT_ROWS) {
            on_step!(self, |c| {
                let mut q = QueryBuilder::new(SQL_PUT_CHECK_ROLLUPS_HEAD);
                q.push_values(batch, |mut row, (check, at_ms, agg, hist)| {
                    row.push_bind(*check)
                        .push_bind(width_ms)
                        .push_bind(*at_ms)
                        .push_bind(agg.total)
                        .push_bind(agg.failures)
                        .push_bind(agg.latency_n)
                        .push_bind(agg.latency_sum)
                        .push_bind(agg.latency_min)
                        .push_bind(agg.latency_max)
                        .push_bind(hist.as_slice());
                });
                q.push(SQL_PUT_CHECK_ROLLUPS_TAIL);
                q.build().execute(c).await.map(|_| ())
            })?;
        }
        Ok(())
    }
}
