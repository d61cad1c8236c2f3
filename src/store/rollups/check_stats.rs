//! Check charts and summaries (uptime, latency percentiles) across the tiers.

use super::*;

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
            let rows: Vec<CheckAgg> =
                on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_TIER_CHART)
                    .bind(check_id)
                    .bind(HOUR_MS)
                    .bind(since_ms)
                    .bind(to)
                    .bind(width)
                    .fetch_all(pool)
                    .await)?;
            aggs.extend(rows);
            raw_from = to;
        }
        if raw_from < until_ms {
            let raw: Vec<CheckAgg> = on_reader!(self, |pool| sqlx::query_as(SQL_CHECK_CHART_RAW)
                .bind(check_id)
                .bind(raw_from)
                .bind(until_ms)
                .bind(width)
                .fetch_all(pool)
                .await)?;
            aggs.extend(raw);
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
            agg.merge(&row.agg);
            hist.add_encoded(&row.latency_hist);
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
