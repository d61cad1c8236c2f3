//! Metric series: named time series of numbers (disk per mount, memory, load, per-process
//! CPU and memory), written a batch per sample and read back for charts and rules.

use serde::Serialize;

use super::{Store, on_reader, on_writer};

/// Chart queries return at most about this many points; longer ranges are bucketed with
/// min and max kept, so a spike stays visible.
pub const MAX_POINTS: i64 = 500;

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Point {
    /// Time of the earliest sample or roll-up bucket in the point, unix ms.
    pub at_ms: i64,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    /// Samples in the bucket.
    pub count: i64,
}

/// Rows per multi-row INSERT: well under both dialects' bind-parameter limits (3 per row).
pub(crate) const IMPORT_ROWS: usize = 500;

impl Store {
    /// The id of series `name`, created on first use; ids are cached for the process.
    pub async fn series_id(&self, name: &str) -> anyhow::Result<i64> {
        if let Some(id) = self
            .series_cache
            .lock()
            .ok()
            .and_then(|c| c.get(name).copied())
        {
            return Ok(id);
        }
        let id: i64 = on_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO series (host, name) VALUES ($1, $2) ON CONFLICT (host, name) \
             DO UPDATE SET name = excluded.name RETURNING id",
            )
            .bind(&*self.host)
            .bind(name)
            .fetch_one(pool)
            .await
        })?;
        if let Ok(mut cache) = self.series_cache.lock() {
            cache.insert(name.to_owned(), id);
        }
        Ok(id)
    }

    /// Stores one sample of several series at `at_ms`, in one transaction and one statement
    /// (a name given twice keeps its last value; non-finite values are skipped).
    pub async fn record_samples(&self, at_ms: i64, values: &[(String, f64)]) -> anyhow::Result<()> {
        let mut by_id = std::collections::BTreeMap::new();
        for (name, value) in values {
            if value.is_finite() {
                by_id.insert(self.series_id(name).await?, *value);
            }
        }
        if by_id.is_empty() {
            return Ok(());
        }
        let rows: Vec<(i64, i64, f64)> = by_id.into_iter().map(|(id, v)| (id, at_ms, v)).collect();
        self.insert_samples(&rows).await
    }

    /// Series names starting with `prefix` (e.g. every `disk.used_pct:` mount).
    pub async fn list_series(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let pattern = super::rollups::like_prefix(prefix);
        Ok(on_reader!(self, |pool| sqlx::query_scalar(
            "SELECT name FROM series WHERE host = $1 AND name LIKE $2 ESCAPE '\\' ORDER BY name"
        )
        .bind(&*self.host)
        .bind(&pattern)
        .fetch_all(pool)
        .await)?)
    }

    /// Points of `name` in `[since, until)`, oldest first, at most [`MAX_POINTS`], each keeping
    /// the min and max of what it stands for. Long ranges are read from the roll-up tiers (see
    /// [`Store::chart_series`] and `rollups.rs`); up to 3.5 days from the raw samples.
    /// A point's `at_ms` is its earliest sample or roll-up bucket.
    pub async fn query_series(
        &self,
        name: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<Point>> {
        Ok(self.chart_series(name, since_ms, until_ms).await?.points)
    }

    /// [`Store::query_series`] of each of `names`, in their order, read a few at a time on
    /// the read pool (a page or an answer with a dozen charts waited for each in turn; on
    /// PostgreSQL every read is several round trips).
    pub async fn query_many_series(
        &self,
        names: Vec<String>,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<(String, Vec<Point>)>> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        // SQLite's read pool has four connections; PostgreSQL's pool is shared with the jobs.
        const AT_ONCE: usize = 4;
        futures_util::stream::iter(names)
            .map(|name| async move {
                let points = self.query_series(&name, since_ms, until_ms).await?;
                Ok::<_, anyhow::Error>((name, points))
            })
            .buffered(AT_ONCE)
            .try_collect()
            .await
    }

    pub(super) async fn find_series(&self, name: &str) -> anyhow::Result<Option<i64>> {
        if let Some(id) = self
            .series_cache
            .lock()
            .ok()
            .and_then(|c| c.get(name).copied())
        {
            return Ok(Some(id));
        }
        Ok(on_reader!(self, |pool| sqlx::query_scalar(
            "SELECT id FROM series WHERE host = $1 AND name = $2"
        )
        .bind(&*self.host)
        .bind(name)
        .fetch_optional(pool)
        .await)?)
    }

    /// Writes `(series_id, at_ms, value)` samples, several hundred per statement, in one
    /// transaction when there are more than fit one statement.
    pub(crate) async fn insert_samples(&self, rows: &[(i64, i64, f64)]) -> anyhow::Result<()> {
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
}
