//! Chart reads of metric series across the tiers.

use super::*;

// ---------------------------------------------------------------------------------------------
// Chart queries.

impl Store {
    /// `name` over `[since, until)` as at most [`MAX_POINTS`] points, from the tier that suits
    /// the range (see the module doc).
    pub async fn chart_series(
        &self,
        name: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<SeriesChart> {
        let span = (until_ms - since_ms).max(1);
        let Some(id) = self.find_series(name).await? else {
            return Ok(SeriesChart {
                tier: Tier::Raw,
                bucket_ms: point_width(span, Tier::Raw),
                points: Vec::new(),
            });
        };
        let tier = self
            .covering_tier(id, preferred_tier(span), since_ms)
            .await?;
        let width = point_width(span, tier);
        let buckets = self
            .series_buckets(id, tier, since_ms, until_ms, Some(width))
            .await?;
        Ok(SeriesChart {
            tier,
            bucket_ms: width,
            points: rebucket(buckets, width),
        })
    }

    /// How much counter series `name` grew over `[since, until)` (resets count from zero);
    /// `None` without samples.
    pub async fn counter_increase(
        &self,
        name: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Option<f64>> {
        let Some(id) = self.find_series(name).await? else {
            return Ok(None);
        };
        let tier = self
            .covering_tier(id, preferred_tier(until_ms - since_ms), since_ms)
            .await?;
        let mut walk = CounterWalk::default();
        for (t, from, to) in self.segments(tier, since_ms, until_ms).await? {
            if t != Tier::Raw {
                for b in self.tier_buckets(id, t, from, to).await? {
                    walk.bucket(b.min, b.max);
                }
                continue;
            }
            // Raw: the increase inside the segment is summed in SQL; only its ends come back.
            let (within, first, last): (Option<f64>, Option<f64>, Option<f64>) =
                on_reader!(self, |pool| {
                    let within = sqlx::query_scalar(SQL_RAW_COUNTER)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_one(pool)
                        .await?;
                    let first = sqlx::query_scalar(SQL_RAW_FIRST)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_optional(pool)
                        .await?;
                    let last = sqlx::query_scalar(SQL_RAW_LAST)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_optional(pool)
                        .await?;
                    Ok::<_, sqlx::Error>((within, first, last))
                })?;
            if let (Some(first), Some(last)) = (first, last) {
                walk.bucket(first, first);
                walk.total += within.unwrap_or(0.0);
                walk.prev_max = Some(last);
            }
        }
        Ok(walk.prev_max.is_some().then_some(walk.total))
    }

    /// Restarts per PM2 process and systemd unit over `[since, until)`, from their stored
    /// restart counters.
    pub async fn restart_counts(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<RestartCount>> {
        let mut out = Vec::new();
        for (kind, prefix) in [
            ("pm2", crate::store::series::PM2_RESTARTS),
            ("systemd", crate::store::series::SYSTEMD_RESTARTS),
        ] {
            for name in self.list_series(prefix).await? {
                if let Some(n) = self.counter_increase(&name, since_ms, until_ms).await? {
                    out.push(RestartCount {
                        kind: kind.to_owned(),
                        process: name[prefix.len()..].to_owned(),
                        restarts: n.round() as i64,
                    });
                }
            }
        }
        Ok(out)
    }

    /// `preferred`, or a coarser tier when `preferred` does not reach back to `since` and the
    /// coarser one holds at least a whole bucket from before `preferred`'s oldest data.
    async fn covering_tier(&self, id: i64, preferred: Tier, since_ms: i64) -> anyhow::Result<Tier> {
        let mut tier = preferred;
        let mut oldest = self.series_oldest(id, tier).await?;
        while oldest.is_none_or(|o| o > since_ms) {
            let Some(coarser) = tier.coarser() else { break };
            let there = self.series_oldest(id, coarser).await?;
            match (there, oldest) {
                (Some(t), Some(o)) if t + coarser.width_ms() <= o => {}
                (Some(_), None) => {}
                _ => break,
            }
            (tier, oldest) = (coarser, there);
        }
        Ok(tier)
    }

    /// The stored buckets of series `name` in one tier, `[since, until)`, oldest first (raw:
    /// one per sample), without stitching or re-bucketing: for tests and diagnostics.
    pub async fn tier_contents(
        &self,
        name: &str,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<Bucket>> {
        let Some(id) = self.find_series(name).await? else {
            return Ok(Vec::new());
        };
        match tier {
            Tier::Raw => self.raw_buckets(id, since_ms, until_ms, None).await,
            t => self.tier_buckets(id, t, since_ms, until_ms).await,
        }
    }

    async fn series_oldest(&self, id: i64, tier: Tier) -> anyhow::Result<Option<i64>> {
        if tier == Tier::Raw {
            return Ok(on_reader!(self, |pool| sqlx::query_scalar(SQL_OLDEST_RAW)
                .bind(id)
                .fetch_one(pool)
                .await)?);
        }
        let width = tier.width_ms();
        let row: Option<(i64, Vec<u8>)> =
            on_reader!(self, |pool| sqlx::query_as(SQL_OLDEST_CHUNK)
                .bind(id)
                .bind(width)
                .fetch_optional(pool)
                .await)?;
        Ok(row.and_then(|(chunk_ms, data)| {
            chunk_buckets(chunk_ms, width, &data, i64::MIN, i64::MAX)
                .next()
                .map(|b| b.at_ms)
        }))
    }

    /// The buckets of series `id` in `[since, until)`, oldest first: from `tier` up to its
    /// cursor, then from the finer tiers up to theirs, then raw (grouped in SQL into
    /// `raw_group_ms` buckets when given, else one bucket per sample).
    async fn series_buckets(
        &self,
        id: i64,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
        raw_group_ms: Option<i64>,
    ) -> anyhow::Result<Vec<Bucket>> {
        let mut out = Vec::new();
        for (t, from, to) in self.segments(tier, since_ms, until_ms).await? {
            match t {
                Tier::Raw => out.extend(self.raw_buckets(id, from, to, raw_group_ms).await?),
                t => out.extend(self.tier_buckets(id, t, from, to).await?),
            }
        }
        Ok(out)
    }

    /// `[since, until)` split by source, oldest first: `tier` up to its cursor, the finer
    /// tiers up to theirs, raw for the rest.
    async fn segments(
        &self,
        tier: Tier,
        since_ms: i64,
        until_ms: i64,
    ) -> anyhow::Result<Vec<(Tier, i64, i64)>> {
        let cursors = if tier == Tier::Raw {
            RollupCursors::default()
        } else {
            self.rollup_cursors().await?
        };
        let mut sources = Vec::new();
        if tier == Tier::Hourly {
            sources.push((Tier::Hourly, cursors.samples_1h));
        }
        if tier != Tier::Raw {
            sources.push((Tier::FiveMinute, cursors.samples_5m));
        }
        let mut out = Vec::new();
        let mut from = since_ms;
        for (t, cursor) in sources {
            let Some(to) = cursor.map(|c| c.min(until_ms)) else {
                continue;
            };
            if to > from {
                out.push((t, from, to));
                from = to;
            }
        }
        if from < until_ms {
            out.push((Tier::Raw, from, until_ms));
        }
        Ok(out)
    }

    async fn tier_buckets(
        &self,
        id: i64,
        tier: Tier,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<Bucket>> {
        let width = tier.width_ms();
        let rows: Vec<(i64, Vec<u8>)> = on_reader!(self, |pool| sqlx::query_as(SQL_CHART_CHUNKS)
            .bind(id)
            .bind(width)
            .bind(align_down(from, chunk_span(width)))
            .bind(to)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .iter()
            .flat_map(|(chunk_ms, data)| chunk_buckets(*chunk_ms, width, data, from, to))
            .collect())
    }

    async fn raw_buckets(
        &self,
        id: i64,
        from: i64,
        to: i64,
        group_ms: Option<i64>,
    ) -> anyhow::Result<Vec<Bucket>> {
        Ok(match group_ms {
            Some(w) => {
                let rows: Vec<(i64, f64, f64, f64, i64)> =
                    on_reader!(self, |pool| sqlx::query_as(SQL_CHART_RAW)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .bind(w.max(1))
                        .fetch_all(pool)
                        .await)?;
                rows.into_iter()
                    .map(|(at_ms, min, max, sum, count)| Bucket {
                        at_ms,
                        min,
                        max,
                        sum,
                        count,
                    })
                    .collect()
            }
            None => {
                let rows: Vec<(i64, f64)> =
                    on_reader!(self, |pool| sqlx::query_as(SQL_RAW_POINTS)
                        .bind(id)
                        .bind(from)
                        .bind(to)
                        .fetch_all(pool)
                        .await)?;
                rows.into_iter()
                    .map(|(at_ms, v)| Bucket {
                        at_ms,
                        min: v,
                        max: v,
                        sum: v,
                        count: 1,
                    })
                    .collect()
            }
        })
    }
}
