//! Code only the benchmarks use (`--features bench`): bulk imports for the year generator
//! and the query plans of the hot queries.

use super::*;
use crate::store::Backend;
use crate::store::{IMPORT_ROWS, ResultRow};

// ---------------------------------------------------------------------------------------------
// Bulk import: used only by the benchmark's year generator (`examples/history_year.rs`).

impl Store {
    /// Writes many `(series_id, at_ms, value)` samples, several hundred per statement: the
    /// year generator's bulk load, through the same statement the daemon uses.
    pub async fn import_samples(&self, rows: &[(i64, i64, f64)]) -> anyhow::Result<()> {
        self.insert_samples(rows).await
    }

    /// Writes many results of one check in one transaction, without touching its state. Only
    /// the benchmark's year generator calls it; the daemon uses `record_check_outcome`.
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
                RETENTION_SAMPLES.boundary,
                vec![series_id, now_ms - 7 * day, 5000],
            ),
            (
                "retention: batch delete",
                RETENTION_SAMPLES.delete,
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
