//! The store reads the list pages make for every check or process at once (one statement per
//! fact) give what the per-check and per-series reads give; on SQLite and on PostgreSQL.

use opswatch::config::{HistoryConfig, HumanDuration};
use opswatch::jobs::history;
use opswatch::store::ResultRow;

use crate::support::{http_result as result, open_stores as stores};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// A day boundary (2027-01-15 00:00 UTC).
const T0: i64 = 20_833 * DAY;

#[tokio::test]
async fn check_reads_for_all_checks_match_the_reads_per_check() {
    let (_dir, stores) = stores().await;
    // Raw results kept 2 days: a 7-day read must come from the hourly tier.
    let cfg = HistoryConfig {
        raw: HumanDuration::from_secs(2 * 86_400),
        ..HistoryConfig::default()
    };
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        // Ten days and 13 hours, so that today is a partial day.
        let now = T0 + 10 * DAY + 13 * 60 * MIN;
        let mut all = Vec::new();
        for (n, name) in ["api", "web"].into_iter().enumerate() {
            let check = store
                .ensure_check(name, opswatch::checks::CheckKind::Http)
                .await
                .unwrap();
            let every = (n as i64 + 1) * MIN;
            let results: Vec<ResultRow> = (0..(now - T0) / every)
                .map(|i| {
                    result(
                        T0 + i * every,
                        i % (30 + n as i64) != 7,
                        20 + (i * 7919) % 780,
                    )
                })
                .collect();
            for part in results.chunks(5000) {
                store.import_check_results(check.id, part).await.unwrap();
            }
            all.push((check, results));
        }
        // Rolled up as of a few minutes ago: the last minutes are raw only.
        history::roll_up(store, now - 7 * MIN).await.unwrap();
        history::enforce_retention(store, &cfg, now).await.unwrap();

        for span in [DAY, 7 * DAY] {
            let points = store
                .checks_points(now - span, now + 1, 30 * MIN)
                .await
                .unwrap();
            for (check, results) in &all {
                let p = &points[&check.id];
                assert!(
                    p.windows(2).all(|w| w[0].at_ms < w[1].at_ms),
                    "{backend}: oldest first"
                );
                let one = store
                    .check_summary(check.id, now - span, now + 1)
                    .await
                    .unwrap();
                let total: i64 = p.iter().map(|p| p.total).sum();
                let failures: i64 = p.iter().map(|p| p.failures).sum();
                assert_eq!(
                    (total, failures),
                    (one.total, one.failures),
                    "{backend} {} over {span}",
                    check.name
                );
                if span == DAY {
                    // Exact from raw: every result of the day, in 30-minute points.
                    let want = results.iter().filter(|r| r.at_ms >= now - span).count();
                    assert_eq!(total, want as i64, "{backend}");
                    assert!(p.len() <= 49, "{backend}: {} points", p.len());
                    let last = results.last().unwrap();
                    let last_point = p.last().unwrap();
                    assert!(
                        last_point.at_ms <= last.at_ms && last.at_ms < last_point.at_ms + 30 * MIN
                    );
                }
            }
        }

        let first = T0 + DAY;
        let days = store.checks_daily(first, now + 1).await.unwrap();
        for (check, results) in &all {
            let got = &days[&check.id];
            assert_eq!(got.len(), 10, "{backend}: days 1 to 10, today partial");
            for d in got {
                let of_day: Vec<&ResultRow> = results
                    .iter()
                    .filter(|r| r.at_ms >= d.day_ms && r.at_ms < d.day_ms + DAY)
                    .collect();
                let failures = of_day.iter().filter(|r| !r.ok).count() as i64;
                assert_eq!(
                    (d.total, d.failures),
                    (of_day.len() as i64, failures),
                    "{backend} {} day {}",
                    check.name,
                    (d.day_ms - T0) / DAY
                );
            }
        }
    }
}

#[tokio::test]
async fn restart_counters_of_all_processes_in_one_read_match_each_series() {
    let (_dir, stores) = stores().await;
    for (store, _guard) in &stores {
        let backend = format!("{:?}", store.backend());
        let now = T0 + 3 * DAY + 17 * MIN;
        let mut series = Vec::new();
        for (n, name) in ["pm2.restarts:api#0", "pm2.restarts:web_1#1"]
            .into_iter()
            .enumerate()
        {
            let id = store.series_id(name).await.unwrap();
            let samples: Vec<(i64, i64, f64)> = (0..(now - T0) / MIN)
                .map(|i| (id, T0 + i * MIN, (i / (300 + 100 * n as i64)) as f64))
                .collect();
            for part in samples.chunks(20_000) {
                store.import_samples(part).await.unwrap();
            }
            series.push((name, samples));
        }
        // Not a restart counter, though its name shares the start with one.
        let other = store.series_id("pm2.memory:api#0").await.unwrap();
        store
            .import_samples(&[(other, now - MIN, 1.0)])
            .await
            .unwrap();
        history::roll_up(store, now - 9 * MIN).await.unwrap();

        // On a 5-minute boundary, as the pages ask (a bucket is read whole or not at all).
        let since = (now - DAY) / (5 * MIN) * (5 * MIN);
        let got = store
            .series_points_by_prefix("pm2.restarts:", since, now + 1, MIN)
            .await
            .unwrap();
        assert_eq!(got.len(), 2, "{backend}: {:?}", got.keys());
        for (name, samples) in &series {
            let points = &got[*name];
            let inside: Vec<f64> = samples
                .iter()
                .filter(|s| s.1 >= since)
                .map(|s| s.2)
                .collect();
            assert_eq!(
                points.iter().map(|p| p.count).sum::<i64>(),
                inside.len() as i64,
                "{backend} {name}: every sample of the day in one point"
            );
            assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
            // The growth the pages compute (within and between points) is the counter's.
            let mut grew = 0.0;
            let mut prev: Option<f64> = None;
            for p in points {
                grew += p.max - p.min + prev.map_or(0.0, |v| p.min - v);
                prev = Some(p.max);
            }
            assert_eq!(grew, inside.last().unwrap() - inside[0], "{backend} {name}");
            // The newest minutes come from the raw samples, one point a minute.
            let tail: Vec<&opswatch::store::Point> =
                points.iter().filter(|p| p.at_ms >= now - 5 * MIN).collect();
            assert_eq!(tail.len(), 5, "{backend} {name}");
            // The same as the chart read of that one series.
            let one = store.query_series(name, since, now + 1).await.unwrap();
            assert_eq!(
                one.iter().map(|p| p.count).sum::<i64>(),
                inside.len() as i64
            );
        }
    }
}
