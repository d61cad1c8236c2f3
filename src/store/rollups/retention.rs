//! Retention: deleting what each tier no longer keeps, and giving the space back.

use super::*;

// ---------------------------------------------------------------------------------------------
// Retention.

/// A table retention trims, per owner (series or check).
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
        t: &RetentionSql,
        width_ms: Option<i64>,
        owners: &[i64],
        before_ms: i64,
        batch: i64,
    ) -> anyhow::Result<(u64, u64, u64)> {
        debug_assert_eq!(t.by_width, width_ms.is_some());
        let (mut rows, mut statements, mut longest) = (0u64, 0u64, 0u64);
        for &owner in owners {
            loop {
                let boundary: Option<i64> = on_reader!(self, |pool| {
                    let q = sqlx::query_scalar(t.boundary)
                        .bind(owner)
                        .bind(before_ms)
                        .bind(batch);
                    match width_ms {
                        Some(w) => q.bind(w),
                        None => q,
                    }
                    .fetch_optional(pool)
                    .await
                })?;
                let upper = boundary.unwrap_or(before_ms);
                let started = std::time::Instant::now();
                let deleted = on_writer!(self, |pool| {
                    let q = sqlx::query(t.delete).bind(owner).bind(upper);
                    match width_ms {
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

        let done = self
            .delete_in_batches(&RETENTION_SAMPLES, None, &series, cut.raw_samples_ms, batch)
            .await?;
        let n = tally(&mut report, done);
        report.samples = n;

        for (width, cutoff) in [
            (FIVE_MINUTES_MS, cut.five_minute_ms),
            (HOUR_MS, cut.hourly_ms),
        ] {
            // Whole rows whose last bucket ended before the cutoff.
            let before = cutoff.saturating_sub(chunk_span(width)).saturating_add(1);
            let done = self
                .delete_in_batches(
                    &RETENTION_SAMPLE_ROLLUPS,
                    Some(width),
                    &series,
                    before,
                    (batch / 64).max(1),
                )
                .await?;
            let n = tally(&mut report, done);
            report.sample_chunks += n;
            report.sample_chunks_trimmed += self.trim_straddling_chunks(width, cutoff).await?;
        }

        let done = self
            .delete_in_batches(
                &RETENTION_CHECK_RESULTS,
                None,
                &checks,
                cut.raw_checks_ms,
                batch,
            )
            .await?;
        let n = tally(&mut report, done);
        report.check_results = n;

        for (width, cutoff) in [(HOUR_MS, cut.check_hourly_ms), (DAY_MS, cut.check_daily_ms)] {
            let before = cutoff.saturating_sub(width).saturating_add(1);
            let done = self
                .delete_in_batches(
                    &RETENTION_CHECK_ROLLUPS,
                    Some(width),
                    &checks,
                    before,
                    batch,
                )
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
