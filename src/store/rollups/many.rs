//! Reads over every check, or every series of one kind, at once: for the pages that list them
//! all (the overview, `/endpoints`, `/processes`). One statement per fact instead of one per
//! check or process: on SQLite each statement and each row returned crosses to the
//! connection's worker thread, so thirty small reads cost more than the data they fetch.

use std::collections::HashMap;

use super::*;

/// Raw results of every check of a host in `[$2, $3)`, grouped into `$4`-ms points in SQL;
/// one range seek per check (see [`SQL_ROLLUP_RAW`] for the `CROSS JOIN`).
pub const SQL_CHECKS_RAW_POINTS: &str = "SELECT r.check_id, MIN(r.at_ms) AS at_ms, \
     COUNT(*) AS total, SUM(CASE WHEN r.ok THEN 0 ELSE 1 END) AS failures, \
     SUM(CASE WHEN r.ok AND r.latency_ms IS NOT NULL THEN 1 ELSE 0 END) AS latency_n, \
     CAST(COALESCE(SUM(CASE WHEN r.ok THEN r.latency_ms END), 0) AS BIGINT) AS latency_sum, \
     MIN(CASE WHEN r.ok THEN r.latency_ms END) AS latency_min, \
     MAX(CASE WHEN r.ok THEN r.latency_ms END) AS latency_max \
     FROM checks c CROSS JOIN check_results r \
     WHERE c.host = $1 AND r.check_id = c.id AND r.at_ms >= $2 AND r.at_ms < $3 \
     GROUP BY r.check_id, r.at_ms / $4 ORDER BY 1, 2";
/// A row of [`SQL_CHECKS_RAW_POINTS`]: a check id and one group of its raw results.
#[derive(sqlx::FromRow)]
struct ChecksRawRow {
    check_id: i64,
    #[sqlx(flatten)]
    agg: CheckAgg,
}
/// Per check of a host: its oldest raw result and oldest hourly bucket (index seeks only).
const SQL_CHECKS_OLDEST: &str = "SELECT c.id, \
     (SELECT MIN(r.at_ms) FROM check_results r WHERE r.check_id = c.id), \
     (SELECT MIN(b.bucket_ms) FROM check_rollups b WHERE b.check_id = c.id AND b.width_ms = $2) \
     FROM checks c WHERE c.host = $1";
/// Result and failure counts of every check of a host from one tier's buckets in `[$3, $4)`.
const SQL_CHECKS_TIER_COUNTS: &str = "SELECT r.check_id, r.bucket_ms, r.total, r.failures \
     FROM checks c CROSS JOIN check_rollups r \
     WHERE c.host = $1 AND r.check_id = c.id AND r.width_ms = $2 AND r.bucket_ms >= $3 \
     AND r.bucket_ms < $4";
/// The 5-minute packed rows of every series of a host whose name matches `$2`.
pub const SQL_PREFIX_CHUNKS: &str = "SELECT s.name, r.chunk_ms, r.slots \
     FROM series s CROSS JOIN sample_rollups r \
     WHERE s.host = $1 AND s.name LIKE $2 ESCAPE '\\' AND r.series_id = s.id \
     AND r.width_ms = $3 AND r.chunk_ms >= $4 AND r.chunk_ms < $5";
/// The raw samples of the same series, grouped into `$5`-ms buckets in SQL.
pub const SQL_PREFIX_RAW: &str = "SELECT s.name, MIN(x.at_ms), MIN(x.value), MAX(x.value), \
     SUM(x.value), COUNT(*) FROM series s CROSS JOIN samples x \
     WHERE s.host = $1 AND s.name LIKE $2 ESCAPE '\\' AND x.series_id = s.id \
     AND x.at_ms >= $3 AND x.at_ms < $4 GROUP BY s.name, x.at_ms / $5";

/// `LIKE` pattern for names starting with `prefix` (with `\` as the escape).
pub(in crate::store) fn like_prefix(prefix: &str) -> String {
    format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// Results of one check in one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub day_ms: i64,
    pub total: i64,
    pub failures: i64,
}

impl Store {
    /// Results and failures per UTC day of every check of this host, from the day that starts
    /// at `first_day_ms` (a day boundary) up to `until`, keyed by check id, one entry per day
    /// with results, oldest first. Daily sums up to their cursor, hourly buckets up to theirs,
    /// raw results after: three statements for all checks (a chart read per check was one
    /// statement over 2,000 hourly rows each).
    pub async fn checks_daily(
        &self,
        first_day_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<HashMap<i64, Vec<DayCount>>> {
        let cursors = self.rollup_cursors().await?;
        let hour_to = cursors
            .checks_1h
            .map_or(first_day_ms, |c| c.clamp(first_day_ms, until_ms));
        let day_to = cursors.checks_1d.map_or(first_day_ms, |c| {
            align_down(c, DAY_MS).clamp(first_day_ms, align_down(hour_to, DAY_MS).max(first_day_ms))
        });
        let mut rows: Vec<(i64, i64, i64, i64)> = Vec::new();
        for (width, from, to) in [(DAY_MS, first_day_ms, day_to), (HOUR_MS, day_to, hour_to)] {
            if from < to {
                rows.extend(on_reader!(self, |pool| sqlx::query_as::<
                    _,
                    (i64, i64, i64, i64),
                >(
                    SQL_CHECKS_TIER_COUNTS
                )
                .bind(&*self.host)
                .bind(width)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await)?);
            }
        }
        if hour_to < until_ms {
            let raw: Vec<ChecksRawRow> =
                on_reader!(self, |pool| sqlx::query_as(SQL_CHECKS_RAW_POINTS)
                    .bind(&*self.host)
                    .bind(hour_to)
                    .bind(until_ms)
                    .bind(DAY_MS)
                    .fetch_all(pool)
                    .await)?;
            rows.extend(
                raw.into_iter()
                    .map(|r| (r.check_id, r.agg.at_ms, r.agg.total, r.agg.failures)),
            );
        }
        let mut out: HashMap<i64, Vec<DayCount>> = HashMap::new();
        rows.sort_unstable_by_key(|r| (r.0, r.1));
        for (id, at_ms, total, failures) in rows {
            let day_ms = align_down(at_ms, DAY_MS);
            let days = out.entry(id).or_default();
            match days.last_mut() {
                Some(d) if d.day_ms == day_ms => {
                    d.total += total;
                    d.failures += failures;
                }
                _ => days.push(DayCount {
                    day_ms,
                    total,
                    failures,
                }),
            }
        }
        Ok(out)
    }

    /// Every check of this host over `[since, until)`, keyed by check id, oldest point first.
    /// Where the raw results reach back to `since` (the usual case: `[history] raw` is 7 days
    /// by default) the points are `width_ms` wide and come from one statement for all checks;
    /// a check whose raw results do not reach back while its hourly roll-ups do is read on its
    /// own through [`Store::check_chart`] (points of that chart's width). A check without
    /// results in the range is absent.
    pub async fn checks_points(
        &self,
        since_ms: i64,
        until_ms: i64,
        width_ms: i64,
    ) -> anyhow::Result<HashMap<i64, Vec<CheckPoint>>> {
        let oldest: Vec<(i64, Option<i64>, Option<i64>)> =
            on_reader!(self, |pool| sqlx::query_as(SQL_CHECKS_OLDEST)
                .bind(&*self.host)
                .bind(HOUR_MS)
                .fetch_all(pool)
                .await)?;
        let rows: Vec<ChecksRawRow> =
            on_reader!(self, |pool| sqlx::query_as(SQL_CHECKS_RAW_POINTS)
                .bind(&*self.host)
                .bind(since_ms)
                .bind(until_ms)
                .bind(width_ms.max(1))
                .fetch_all(pool)
                .await)?;
        let mut out: HashMap<i64, Vec<CheckPoint>> = HashMap::new();
        for row in rows {
            out.entry(row.check_id).or_default().push(row.agg.point());
        }
        // The same choice as `check_tier`, from the oldest rows read above.
        for (id, raw, hourly) in oldest {
            let hourly_needed = match (hourly, raw) {
                _ if raw.is_some_and(|r| r <= since_ms) => false,
                (Some(t), Some(r)) => t + HOUR_MS <= r,
                (Some(_), None) => true,
                _ => false,
            };
            if hourly_needed {
                let chart = self.check_chart(id, since_ms, until_ms).await?;
                out.remove(&id);
                if !chart.points.is_empty() {
                    out.insert(id, chart.points);
                }
            }
        }
        Ok(out)
    }

    /// Every series of this host whose name starts with `prefix`, over `[since, until)`, keyed
    /// by name: 5-minute buckets up to the 5-minute tier's cursor, then the raw samples after
    /// it grouped into `raw_group_ms` buckets; oldest first, each bucket keeping min and max.
    /// Two statements for all the series. Complete only while `[history] five_minute` reaches
    /// back to `since` (retention deletes 5-minute buckets after that): callers check.
    pub async fn series_points_by_prefix(
        &self,
        prefix: &str,
        since_ms: i64,
        until_ms: i64,
        raw_group_ms: i64,
    ) -> anyhow::Result<HashMap<String, Vec<Point>>> {
        let pattern = like_prefix(prefix);
        let width = FIVE_MINUTES_MS;
        let cursor = self.rollup_cursors().await?.samples_5m;
        let tier_to = cursor.map_or(since_ms, |c| c.clamp(since_ms, until_ms));
        let mut buckets: HashMap<String, Vec<Bucket>> = HashMap::new();
        if since_ms < tier_to {
            let rows: Vec<(String, i64, Vec<u8>)> =
                on_reader!(self, |pool| sqlx::query_as(SQL_PREFIX_CHUNKS)
                    .bind(&*self.host)
                    .bind(&pattern)
                    .bind(width)
                    .bind(align_down(since_ms, chunk_span(width)))
                    .bind(tier_to)
                    .fetch_all(pool)
                    .await)?;
            for (name, chunk_ms, data) in &rows {
                buckets
                    .entry(name.clone())
                    .or_default()
                    .extend(chunk_buckets(*chunk_ms, width, data, since_ms, tier_to));
            }
        }
        if tier_to < until_ms {
            let rows: Vec<(String, i64, f64, f64, f64, i64)> =
                on_reader!(self, |pool| sqlx::query_as(SQL_PREFIX_RAW)
                    .bind(&*self.host)
                    .bind(&pattern)
                    .bind(tier_to)
                    .bind(until_ms)
                    .bind(raw_group_ms.max(1))
                    .fetch_all(pool)
                    .await)?;
            for (name, at_ms, min, max, sum, count) in rows {
                buckets.entry(name).or_default().push(Bucket {
                    at_ms,
                    min,
                    max,
                    sum,
                    count,
                });
            }
        }
        Ok(buckets
            .into_iter()
            .map(|(name, mut b)| {
                // Chunks and raw groups come back in no particular order.
                b.sort_by_key(|b| b.at_ms);
                let points = b
                    .iter()
                    .map(|b| Point {
                        at_ms: b.at_ms,
                        avg: b.avg(),
                        min: b.min,
                        max: b.max,
                        count: b.count,
                    })
                    .collect();
                (name, points)
            })
            .collect())
    }
}
