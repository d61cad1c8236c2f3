//! History tiers: roll-ups match the raw data, retention deletes exactly what is past its
//! period, chart queries pick their tier and stay under 500 points, uptime and percentiles,
//! restart counts; on SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opswatch::config::{HistoryConfig, HumanDuration};
use opswatch::jobs::history;
use opswatch::store::rollups::{Bucket, CHART_RANGES, FIVE_MINUTES_MS, HOUR_MS, Tier};
use opswatch::store::{ResultRow, Store};

use crate::support::{http_result as result, open_stores as stores};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// A day boundary (2027-01-15 00:00 UTC).
const T0: i64 = 20_833 * DAY;

async fn import(store: &Store, name: &str, samples: &[(i64, f64)]) {
    let id = store.series_id(name).await.unwrap();
    let rows: Vec<(i64, i64, f64)> = samples.iter().map(|(t, v)| (id, *t, *v)).collect();
    for part in rows.chunks(20_000) {
        store.import_samples(part).await.unwrap();
    }
}

/// A check result with HTTP 200 and no error details.
/// Where each bucket of series `name` in `tier` starts, oldest first.
async fn bucket_starts(store: &Store, name: &str, tier: Tier) -> Vec<i64> {
    store
        .tier_contents(name, tier, 0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|b| b.at_ms)
        .collect()
}

/// Raw samples grouped into epoch-aligned buckets of `width`: key → (min, max, sum, count).
fn group(samples: &[(i64, f64)], width: i64) -> BTreeMap<i64, (f64, f64, f64, i64)> {
    let mut out: BTreeMap<i64, (f64, f64, f64, i64)> = BTreeMap::new();
    for &(t, v) in samples {
        let e = out.entry(t.div_euclid(width) * width).or_insert((
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            0,
        ));
        e.0 = e.0.min(v);
        e.1 = e.1.max(v);
        e.2 += v;
        e.3 += 1;
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

fn assert_tier_matches(got: &[Bucket], want: &BTreeMap<i64, (f64, f64, f64, i64)>, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: bucket count");
    for (b, (at, (min, max, sum, count))) in got.iter().zip(want) {
        assert_eq!(b.at_ms, *at, "{what}: bucket start");
        assert_eq!(b.count, *count, "{what} at {at}: count");
        assert_eq!((b.min, b.max), (*min, *max), "{what} at {at}: min/max");
        assert!(
            close(b.sum / b.count as f64, sum / *count as f64),
            "{what} at {at}: avg {} vs {}",
            b.sum / b.count as f64,
            sum / *count as f64
        );
    }
}

/// A value exactly representable as f32 (quarters below 2^20), with one spike.
fn shape(i: i64) -> f64 {
    ((i * 37) % 101) as f64 / 4.0 + if i == 500 { 1000.0 } else { 0.0 }
}

#[tokio::test]
async fn rollups_match_the_raw_data_of_a_known_series() {
    let (_dir, stores) = stores().await;
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        // 26 hours of one-minute samples, starting off any bucket boundary.
        let start = T0 + 7 * MIN;
        let samples: Vec<(i64, f64)> = (0..26 * 60).map(|i| (start + i * MIN, shape(i))).collect();
        import(store, "t.known", &samples).await;
        let end = start + 26 * 60 * MIN;
        let now = end + 10 * MIN;

        let report = history::roll_up(store, now).await.unwrap();
        let cursors = store.rollup_cursors().await.unwrap();
        let c5m = cursors.samples_5m.unwrap();
        let c1h = cursors.samples_1h.unwrap();
        assert_eq!(
            c5m,
            (now - 2 * MIN) / FIVE_MINUTES_MS * FIVE_MINUTES_MS,
            "{backend}"
        );
        assert_eq!(c1h, c5m / HOUR_MS * HOUR_MS, "{backend}");

        let mut want_5m = group(&samples, FIVE_MINUTES_MS);
        want_5m.retain(|b, _| b + FIVE_MINUTES_MS <= c5m);
        let got = store
            .tier_contents("t.known", Tier::FiveMinute, 0, i64::MAX)
            .await
            .unwrap();
        assert_tier_matches(&got, &want_5m, &format!("{backend} 5-minute"));
        assert_eq!(report.buckets_5m, want_5m.len() as u64, "{backend}");

        let mut want_1h = group(&samples, HOUR_MS);
        want_1h.retain(|b, _| b + HOUR_MS <= c1h);
        let got = store
            .tier_contents("t.known", Tier::Hourly, 0, i64::MAX)
            .await
            .unwrap();
        assert_tier_matches(&got, &want_1h, &format!("{backend} hourly"));

        // Again: nothing new is closed, nothing is written.
        let again = history::roll_up(store, now).await.unwrap();
        assert_eq!((again.buckets_5m, again.buckets_1h), (0, 0), "{backend}");

        // Charts stitch the tiers with the raw tail: every sample is counted once, spikes stay.
        for (range, tier) in [("7d", Tier::FiveMinute), ("90d", Tier::Hourly)] {
            let span = CHART_RANGES.iter().find(|(r, _)| *r == range).unwrap().1;
            let chart = store
                .chart_series("t.known", now - span, now)
                .await
                .unwrap();
            assert_eq!(chart.tier, tier, "{backend} {range}");
            let want = group(&samples, chart.bucket_ms);
            assert_eq!(chart.points.len(), want.len(), "{backend} {range}");
            for (p, (key, (min, max, sum, count))) in chart.points.iter().zip(&want) {
                assert_eq!(p.at_ms.div_euclid(chart.bucket_ms) * chart.bucket_ms, *key);
                assert_eq!(
                    (p.min, p.max, p.count),
                    (*min, *max, *count),
                    "{backend} {range}"
                );
                assert!(close(p.avg, sum / *count as f64), "{backend} {range}");
            }
            assert!(
                chart.points.iter().any(|p| p.max >= 1000.0),
                "{backend} {range}: spike lost"
            );
        }
    }
}

/// A roll-up step writes its rows in multi-row upserts of 200: steps that write several
/// batches (300 series, 12 checks over a day) keep every bucket of every series and check.
#[tokio::test]
async fn rollup_steps_wider_than_one_write_batch_keep_every_bucket() {
    let (_dir, stores) = stores().await;
    let cfg = HistoryConfig {
        raw: HumanDuration::from_secs(86_400),
        ..HistoryConfig::default()
    };
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        // 300 series × 6 h of one-minute samples: one 5-minute step patching 600 packed rows
        // (6 h spans two 64-slot chunks), one hourly step writing 300.
        let series: Vec<String> = (0..300).map(|i| format!("t.wide.{i:03}")).collect();
        let samples: Vec<(i64, f64)> = (0..6 * 60).map(|i| (T0 + i * MIN, shape(i))).collect();
        for name in &series {
            import(store, name, &samples).await;
        }
        // 12 checks × 3 days, a result every 5 minutes: hourly steps of 288 buckets.
        let mut checks = Vec::new();
        for i in 0..12 {
            let check = store
                .ensure_check(&format!("wide-{i:02}"), opswatch::checks::CheckKind::Http)
                .await
                .unwrap();
            let results: Vec<ResultRow> = (0..3 * 288)
                .map(|j| result(T0 + j * FIVE_MINUTES_MS, (i + j) % 9 != 0, 10 + j % 90))
                .collect();
            store
                .import_check_results(check.id, &results)
                .await
                .unwrap();
            checks.push((check, results));
        }
        let now = T0 + 3 * DAY + 10 * MIN;
        history::enforce_retention(store, &cfg, now).await.unwrap();

        let want_5m = group(&samples, FIVE_MINUTES_MS);
        let want_1h = group(&samples, HOUR_MS);
        for name in &series {
            let got = store
                .tier_contents(name, Tier::FiveMinute, 0, i64::MAX)
                .await
                .unwrap();
            assert_tier_matches(&got, &want_5m, &format!("{backend} {name} 5-minute"));
            let got = store
                .tier_contents(name, Tier::Hourly, 0, i64::MAX)
                .await
                .unwrap();
            assert_tier_matches(&got, &want_1h, &format!("{backend} {name} hourly"));
        }
        // The first two days' raw results are gone: their counts come from the check tiers.
        for (check, results) in &checks {
            let s = store.check_summary(check.id, T0, now).await.unwrap();
            assert_eq!(s.tier, Tier::Hourly, "{backend} {}", check.name);
            let failures = results.iter().filter(|r| !r.ok).count() as i64;
            assert_eq!(
                (s.total, s.failures),
                (results.len() as i64, failures),
                "{backend} {}",
                check.name
            );
        }
    }
}

#[tokio::test]
async fn retention_deletes_exactly_what_is_older_than_its_period() {
    let (_dir, stores) = stores().await;
    let cfg = HistoryConfig {
        raw: HumanDuration::from_secs(86_400),
        five_minute: HumanDuration::from_secs(3 * 86_400),
        hourly: HumanDuration::from_secs(10 * 86_400),
        ..HistoryConfig::default()
    };
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        // 12 days: a sample every 5 minutes, a check result every 10 minutes.
        let samples: Vec<(i64, f64)> = (0..12 * 288)
            .map(|i| (T0 + i * FIVE_MINUTES_MS, (i % 17) as f64))
            .collect();
        import(store, "t.ret", &samples).await;
        let check = store
            .ensure_check("api", opswatch::checks::CheckKind::Http)
            .await
            .unwrap();
        let results: Vec<ResultRow> = (0..12 * 144)
            .map(|i| result(T0 + i * 10 * MIN, i % 10 != 0, 50 + i % 30))
            .collect();
        store
            .import_check_results(check.id, &results)
            .await
            .unwrap();

        // Not on any bucket boundary.
        let now = T0 + 12 * DAY + 37 * MIN;
        let run = history::enforce_retention(store, &cfg, now).await.unwrap();
        let c = store.rollup_cursors().await.unwrap();
        let (c5m, c1h, cchk) = (
            c.samples_5m.unwrap(),
            c.samples_1h.unwrap(),
            c.checks_1h.unwrap(),
        );

        let raw_cut = now - DAY;
        let raw = bucket_starts(store, "t.ret", Tier::Raw).await;
        let want: Vec<i64> = samples
            .iter()
            .map(|s| s.0)
            .filter(|t| *t >= raw_cut)
            .collect();
        assert_eq!(raw, want, "{backend}: raw samples");
        assert_eq!(
            run.deleted.samples as usize,
            samples.len() - want.len(),
            "{backend}"
        );

        // A bucket goes once all of it is older than the period.
        for (tier, width, cut, cursor) in [
            (Tier::FiveMinute, FIVE_MINUTES_MS, now - 3 * DAY, c5m),
            (Tier::Hourly, HOUR_MS, now - 10 * DAY, c1h),
        ] {
            let got = bucket_starts(store, "t.ret", tier).await;
            let want: Vec<i64> = group(&samples, width)
                .into_keys()
                .filter(|b| b + width > cut && b + width <= cursor)
                .collect();
            assert_eq!(got.first(), want.first(), "{backend} {tier:?}: oldest kept");
            assert_eq!(got, want, "{backend} {tier:?}");
        }

        let kept = store
            .list_results(check.id, 0, i64::MAX, 1000)
            .await
            .unwrap();
        let want = results.iter().filter(|r| r.at_ms >= raw_cut).count();
        assert_eq!(kept.len(), want, "{backend}: raw check results");
        assert!(kept.iter().all(|r| r.at_ms >= raw_cut), "{backend}");

        // The hourly check tier starts at the first hour that ends within the period, and with
        // the raw tail it counts every result since then exactly once.
        let chart = store
            .check_chart(check.id, now - 30 * DAY, now)
            .await
            .unwrap();
        assert_eq!(chart.tier, Tier::Hourly, "{backend}");
        let first_hour = (now - 10 * DAY) / HOUR_MS * HOUR_MS;
        assert_eq!(chart.points[0].at_ms, first_hour, "{backend}");
        let total: i64 = chart.points.iter().map(|p| p.total).sum();
        let want = results.iter().filter(|r| r.at_ms >= first_hour).count() as i64;
        assert_eq!(total, want, "{backend}: results counted");
        assert!(cchk > raw_cut, "{backend}");
        // Summaries read whole days from the daily sums: the first kept is the day that ends
        // within the period.
        let summary = store
            .check_summary(check.id, now - 30 * DAY, now)
            .await
            .unwrap();
        let first_day = (now - 10 * DAY) / DAY * DAY;
        let want = results.iter().filter(|r| r.at_ms >= first_day).count() as i64;
        assert_eq!(summary.total, want, "{backend}: results summed");

        // A second run on the same day has nothing left to delete.
        let again = history::enforce_retention(store, &cfg, now).await.unwrap();
        let d = again.deleted;
        assert_eq!(
            (
                d.samples,
                d.sample_chunks,
                d.sample_chunks_trimmed,
                d.check_results,
                d.check_rollups
            ),
            (0, 0, 0, 0, 0),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn chart_queries_pick_their_tier_and_keep_spikes_under_500_points() {
    let (_dir, stores) = stores().await;
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        // 40 days of one-minute samples with one spike and one dip.
        let now = T0 + 40 * DAY;
        let spike_at = now - 20 * DAY + 7 * MIN;
        let dip_at = now - 25 * DAY + 3 * MIN;
        let samples: Vec<(i64, f64)> = (0..40 * 1440)
            .map(|i| {
                let t = T0 + i * MIN;
                let v = if t == spike_at {
                    1000.0
                } else if t == dip_at {
                    -50.0
                } else {
                    40.0 + (i % 13) as f64
                };
                (t, v)
            })
            .collect();
        import(store, "t.chart", &samples).await;
        history::roll_up(store, now).await.unwrap();

        let expected = [
            Tier::Raw,
            Tier::Raw,
            Tier::Raw,
            Tier::FiveMinute,
            Tier::FiveMinute,
            Tier::Hourly,
            Tier::Hourly,
        ];
        for ((range, span), tier) in CHART_RANGES.iter().zip(expected) {
            let since = now - span;
            let chart = store.chart_series("t.chart", since, now).await.unwrap();
            assert_eq!(chart.tier, tier, "{backend} {range}");
            assert!(
                chart.points.len() <= 500,
                "{backend} {range}: {}",
                chart.points.len()
            );
            let covered = (*span).min(40 * DAY);
            assert!(
                chart.points.len() as i64 >= (covered / chart.bucket_ms).min(60),
                "{backend} {range}"
            );
            let counted: i64 = chart.points.iter().map(|p| p.count).sum();
            let want = samples.iter().filter(|s| s.0 >= since).count() as i64;
            assert_eq!(counted, want, "{backend} {range}: every sample once");
            let last = chart.points.last().unwrap();
            assert!(
                last.at_ms > now - chart.bucket_ms - MIN,
                "{backend} {range}: stale"
            );
            if since <= spike_at {
                assert!(
                    chart.points.iter().any(|p| p.max == 1000.0),
                    "{backend} {range}"
                );
            }
            if since <= dip_at {
                assert!(
                    chart.points.iter().any(|p| p.min == -50.0),
                    "{backend} {range}"
                );
            }
        }
        // `query_series` is the same chart.
        let points = store
            .query_series("t.chart", now - 30 * DAY, now)
            .await
            .unwrap();
        assert!(points.len() <= 500 && points.iter().any(|p| p.max == 1000.0));
    }
}

#[tokio::test]
async fn uptime_and_latency_percentiles_exact_from_raw_and_close_from_rollups() {
    let (_dir, stores) = stores().await;
    let cfg = HistoryConfig {
        raw: HumanDuration::from_secs(2 * 86_400),
        ..HistoryConfig::default()
    };
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        let check = store
            .ensure_check("api", opswatch::checks::CheckKind::Http)
            .await
            .unwrap();
        let now = T0 + 10 * DAY;
        let results: Vec<ResultRow> = (0..10 * 1440)
            .map(|i| result(T0 + i * MIN, i % 50 != 7, 20 + (i * 7919) % 780))
            .collect();
        for part in results.chunks(5000) {
            store.import_check_results(check.id, part).await.unwrap();
        }
        history::enforce_retention(store, &cfg, now).await.unwrap();

        let exact = |since: i64| {
            let r: Vec<&ResultRow> = results.iter().filter(|r| r.at_ms >= since).collect();
            let failures = r.iter().filter(|r| !r.ok).count() as i64;
            let mut lat: Vec<i64> = r
                .iter()
                .filter(|r| r.ok)
                .filter_map(|r| r.latency_ms)
                .collect();
            lat.sort_unstable();
            let q = |p: f64| lat[((p * lat.len() as f64).ceil() as usize).max(1) - 1] as f64;
            let qs = [q(0.5), q(0.95), q(0.99)];
            (r.len() as i64, failures, lat, qs)
        };

        // 24 h: raw, exact.
        let s = store.check_summary(check.id, now - DAY, now).await.unwrap();
        let (total, failures, lat, q) = exact(now - DAY);
        assert_eq!(
            (s.tier, s.percentiles_exact),
            (Tier::Raw, true),
            "{backend}"
        );
        assert_eq!((s.total, s.failures), (total, failures), "{backend}");
        assert!(close(
            s.uptime_pct.unwrap(),
            100.0 * (total - failures) as f64 / total as f64
        ));
        assert_eq!(s.latency.min, lat.first().copied());
        assert_eq!(s.latency.max, lat.last().copied());
        assert_eq!(
            [s.latency.p50, s.latency.p95, s.latency.p99],
            q.map(Some),
            "{backend}"
        );

        // 7 d: beyond the raw period, from the hourly tier: counts, min, max, avg exact;
        // percentiles within a histogram bin.
        let s = store
            .check_summary(check.id, now - 7 * DAY, now)
            .await
            .unwrap();
        let (total, failures, lat, q) = exact(now - 7 * DAY);
        assert_eq!(
            (s.tier, s.percentiles_exact),
            (Tier::Hourly, false),
            "{backend}"
        );
        assert_eq!((s.total, s.failures), (total, failures), "{backend}");
        assert_eq!(
            (s.latency.min, s.latency.max),
            (lat.first().copied(), lat.last().copied())
        );
        let avg = lat.iter().sum::<i64>() as f64 / lat.len() as f64;
        assert!(close(s.latency.avg.unwrap(), avg), "{backend}");
        for (got, want) in [s.latency.p50, s.latency.p95, s.latency.p99].iter().zip(q) {
            let got = got.unwrap();
            assert!(
                (got - want).abs() / want < 0.19,
                "{backend}: {got} vs {want}"
            );
        }

        let chart = store
            .check_chart(check.id, now - 7 * DAY, now)
            .await
            .unwrap();
        assert!(chart.points.len() <= 500, "{backend}");
        assert_eq!(
            chart.points.iter().map(|p| p.total).sum::<i64>(),
            total,
            "{backend}"
        );
        assert_eq!(
            chart.points.iter().map(|p| p.failures).sum::<i64>(),
            failures
        );
    }
}

#[tokio::test]
async fn restart_counts_per_process() {
    let (_dir, stores) = stores().await;
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        let now = T0 + 3 * DAY;
        // Restarts every 700 minutes; `pm2 reset` on a 5-minute boundary two days in.
        let reset = 2 * 1440;
        let mut level = 0.0;
        let mut pm2 = Vec::new();
        for i in 0..3 * 1440 {
            if i == reset {
                level = 0.0;
            } else if i % 700 == 0 && i > 0 {
                level += 1.0;
            }
            pm2.push((T0 + i * MIN, level));
        }
        import(store, "pm2.restarts:api#0", &pm2).await;
        let systemd: Vec<(i64, f64)> = (0..3 * 1440)
            .map(|i| (T0 + i * MIN, (i / 1000) as f64))
            .collect();
        import(store, "systemd.restarts:nginx.service", &systemd).await;
        history::roll_up(store, now).await.unwrap();

        let exact = |samples: &[(i64, f64)], since: i64| {
            let mut n = 0.0;
            let mut prev: Option<f64> = None;
            for &(_, v) in samples.iter().filter(|s| s.0 >= since) {
                if let Some(p) = prev {
                    n += if v >= p { v - p } else { v };
                }
                prev = Some(v);
            }
            n as i64
        };
        for since in [now - DAY, now - 3 * DAY, now - 30 * DAY] {
            let counts = store.restart_counts(since, now).await.unwrap();
            let by: BTreeMap<(&str, &str), i64> = counts
                .iter()
                .map(|c| ((c.kind.as_str(), c.process.as_str()), c.restarts))
                .collect();
            assert_eq!(
                by[&("pm2", "api#0")],
                exact(&pm2, since),
                "{backend} {since}"
            );
            assert_eq!(
                by[&("systemd", "nginx.service")],
                exact(&systemd, since),
                "{backend} {since}"
            );
        }
    }
}

#[tokio::test]
async fn retention_and_rollup_never_hold_the_sqlite_writer_long() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/store/opswatch.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    // Two days of a default host: 42 series sampled every minute.
    let now = T0 + 2 * DAY;
    for s in 0..42 {
        let samples: Vec<(i64, f64)> = (0..2 * 1440)
            .map(|i| (T0 + i * MIN, (i + s) as f64 * 0.37))
            .collect();
        import(&store, &format!("t.load:{s}"), &samples).await;
    }
    let cfg = HistoryConfig {
        raw: HumanDuration::from_secs(3600),
        ..HistoryConfig::default()
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut worst, mut probes) = (Duration::ZERO, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                store.probe(now).await.unwrap();
                worst = worst.max(started.elapsed());
                probes += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (worst, probes)
        })
    };
    let run = history::enforce_retention(&store, &cfg, now).await.unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, probes) = prober.await.unwrap();
    eprintln!("retention run {run:?}; {probes} probes meanwhile, the slowest {worst:?}");
    assert!(run.deleted.samples > 100_000, "{run:?}");
    assert!(
        run.reclaimed.incremental && run.reclaimed.pages_freed > 0,
        "{run:?}"
    );
    // The writer is never held for the whole run: retention works in many short transactions
    // and other writes get in between them. (How short is a figure for bench/, not a test.)
    assert!(run.deleted.batches > 1, "{run:?}");
    assert!(probes > 1, "no write got in while retention ran: {run:?}");
}

#[tokio::test]
async fn the_api_serves_long_ranges_from_the_tiers() {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let (_dir, stores) = stores().await;
    for (store, _guard) in stores {
        let backend = format!("{:?}", store.backend());
        let now = opswatch::store::now_ms();
        let start = now - 100 * DAY;
        let samples: Vec<(i64, f64)> = (0..100 * 288)
            .map(|i| (start + i * FIVE_MINUTES_MS, (i % 50) as f64))
            .collect();
        import(&store, "memory.used_pct", &samples).await;
        let check = store
            .ensure_check("api", opswatch::checks::CheckKind::Http)
            .await
            .unwrap();
        let results: Vec<ResultRow> = (0..100 * 288)
            .map(|i| result(start + i * FIVE_MINUTES_MS, i % 100 != 0, 100 + i % 40))
            .collect();
        store
            .import_check_results(check.id, &results)
            .await
            .unwrap();
        history::enforce_retention(&store, &HistoryConfig::default(), now)
            .await
            .unwrap();
        let app =
            opswatch::daemon::state::AppState::new(opswatch::config::Config::default(), store);
        let get = |path: String| {
            let router = opswatch::web::router(app.clone());
            async move {
                let res = router
                    .oneshot(
                        http::Request::get(&path)
                            .body(axum::body::Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
                )
            }
        };
        let (status, body) = get("/api/v1/metrics/memory?range=1y".into()).await;
        assert_eq!(status, 200, "{backend} {body}");
        let points = body["series"][0]["points"].as_array().unwrap();
        assert!(!points.is_empty() && points.len() <= 500, "{backend}");

        let (status, body) = get("/api/v1/checks/api/uptime?range=90d".into()).await;
        assert_eq!(status, 200, "{backend} {body}");
        assert_eq!(body["summary"]["tier"], "hourly", "{backend}");
        // Whole hours: the hour `since` falls in is left out.
        let total = body["summary"]["total"].as_i64().unwrap();
        assert!(
            (90 * 288 - 12..=90 * 288).contains(&total),
            "{backend}: {total}"
        );
        assert!(body["summary"]["uptime_pct"].as_f64().unwrap() > 98.9);
        assert!(body["chart"]["points"].as_array().unwrap().len() <= 500);

        let (status, body) = get("/api/v1/checks/api/results?since=30d&limit=5".into()).await;
        assert_eq!(status, 200, "{backend} {body}");
        assert_eq!(body["results"].as_array().unwrap().len(), 5);
        let total = body["summary"]["total"].as_i64().unwrap();
        assert!(
            (30 * 288 - 12..=30 * 288).contains(&total),
            "{backend}: {total}"
        );
        assert_eq!(body["chart"]["tier"], "hourly");

        let (status, body) = get("/api/v1/checks/api/uptime?range=2w".into()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request"))
        );
        let (status, _) = get("/api/v1/checks/nope/uptime".into()).await;
        assert_eq!(status, 404);
    }
}
