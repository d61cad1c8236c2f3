//! The history benchmark: writes one year of a default host's history straight into a store,
//! the way a year of running would leave it, then measures it.
//!
//! A default host: 42 series sampled every minute (12 system series: memory, swap, load ×3,
//! uptime, two mounts × used/free/inodes; 10 PM2 apps × cpu/memory/restarts), 5 HTTP endpoints
//! probed every 5 minutes with 1 % failures. The year is replayed hour by hour: each hour's raw
//! rows are imported, the roll-up runs as of the end of the hour, and retention (default
//! `[history]`: raw 7 d, 5-minute 90 d, hourly 2 y) runs every day at 03:15, so the store ends
//! with the shape, fragmentation and freed pages a year of real running leaves.
//!
//! Then: store size; every chart query for every range (warm, 30 runs); the API routes over
//! the same ranges; insert cost per sample through `record_samples`; a 5-minute roll-up run;
//! the daily retention run with the health probe timed meanwhile; the query plans.
//!
//! Usage: `cargo run --release --example history_year -- URL [DAYS]` on a fresh store (a new
//! SQLite path or an empty PostgreSQL database). `bench/history.sh` runs it on both backends.
//! With `HISTORY_GENERATE_ONLY=1` it stops once the year is written (`bench/dashboard.sh`).

use std::time::{Duration, Instant};

use opswatch::config::HistoryConfig;
use opswatch::jobs::history;
use opswatch::store::rollups::{CHART_RANGES, FIVE_MINUTES_MS, HOUR_MS};
use opswatch::store::{Backend, IncidentChange, ResultRow, Store};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
const APPS: usize = 10;
const ENDPOINTS: usize = 5;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The state of the simulated host, advanced a minute at a time.
struct Host {
    rng: Rng,
    memory: f64,
    swap: f64,
    load: [f64; 3],
    boot_ms: i64,
    disk_used: [f64; 2],
    disk_size: [f64; 2],
    inodes: [f64; 2],
    cpu: [f64; APPS],
    mem: [f64; APPS],
    restarts: [f64; APPS],
}

impl Host {
    fn new(start_ms: i64) -> Self {
        Self {
            rng: Rng(42),
            memory: 45.0,
            swap: 3.0,
            load: [0.4, 0.35, 0.3],
            boot_ms: start_ms - 3 * DAY,
            disk_used: [0.35, 0.2],
            disk_size: [80.0 * GIB, 400.0 * GIB],
            inodes: [12.0, 2.0],
            cpu: [2.0; APPS],
            mem: [150e6; APPS],
            restarts: [0.0; APPS],
        }
    }

    fn names() -> Vec<String> {
        let mut n: Vec<String> = [
            "memory.used_pct",
            "swap.used_pct",
            "load.1",
            "load.5",
            "load.15",
            "host.uptime_s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for m in ["/", "/var/lib/postgresql"] {
            n.push(format!("disk.used_pct:{m}"));
            n.push(format!("disk.free_bytes:{m}"));
            n.push(format!("disk.inode_pct:{m}"));
        }
        for a in 0..APPS {
            n.push(format!("pm2.cpu_pct:app-{a}#{a}"));
            n.push(format!("pm2.memory_bytes:app-{a}#{a}"));
            n.push(format!("pm2.restarts:app-{a}#{a}"));
        }
        n
    }

    /// The 42 values of the sample at `t`, in the order of [`Host::names`].
    fn sample(&mut self, t: i64) -> Vec<f64> {
        let day_phase = (t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
        let r = &mut self.rng;
        self.memory = (self.memory + (r.unit() - 0.5) * 0.8).clamp(20.0, 95.0);
        self.swap = (self.swap + (r.unit() - 0.5) * 0.05).clamp(0.0, 30.0);
        let base = 0.4 + 0.3 * day_phase.sin().max(0.0) + if r.unit() < 0.002 { 6.0 } else { 0.0 };
        self.load[0] = (self.load[0] * 0.6 + base * 0.4 + (r.unit() - 0.5) * 0.1).max(0.0);
        self.load[1] = self.load[1] * 0.8 + self.load[0] * 0.2;
        self.load[2] = self.load[2] * 0.93 + self.load[0] * 0.07;
        if r.unit() < 1.0 / (45.0 * 1440.0) {
            self.boot_ms = t; // a reboot every month and a half
        }
        let mut v = vec![
            self.memory,
            self.swap,
            self.load[0],
            self.load[1],
            self.load[2],
            ((t - self.boot_ms) as f64 / 1000.0 * 100.0).round() / 100.0,
        ];
        for d in 0..2 {
            self.disk_used[d] = (self.disk_used[d] + r.unit() * 2e-6 - 0.6e-6).clamp(0.05, 0.97);
            if r.unit() < 1.0 / (30.0 * 1440.0) {
                self.disk_used[d] -= 0.05; // log rotation, cleanup
            }
            let free = ((1.0 - self.disk_used[d]) * self.disk_size[d] / 4096.0).floor() * 4096.0;
            self.inodes[d] = (self.inodes[d] + (r.unit() - 0.5) * 0.001).clamp(0.0, 100.0);
            v.extend([self.disk_used[d] * 100.0, free, self.inodes[d]]);
        }
        for a in 0..APPS {
            self.cpu[a] = (self.cpu[a] * 0.7 + r.unit() * 6.0 * (a as f64 + 1.0) / 3.0).round();
            self.mem[a] = (self.mem[a] + (r.unit() - 0.48) * 2e6)
                .clamp(40e6, 900e6)
                .round();
            if r.unit() < 1.0 / (3.0 * 1440.0) {
                self.restarts[a] += 1.0; // an app restarts every few days
            }
            v.extend([self.cpu[a], self.mem[a], self.restarts[a]]);
        }
        v
    }

    fn result(&mut self, t: i64, endpoint: usize) -> ResultRow {
        let r = &mut self.rng;
        let ok = r.unit() >= 0.01;
        // Log-normal-ish latency around 60–250 ms with a long tail.
        let base = 40.0 + 30.0 * endpoint as f64;
        let latency =
            (base * (r.unit() * 1.6).exp() + if r.unit() < 0.02 { 900.0 } else { 0.0 }) as i64;
        ResultRow {
            at_ms: t + 137 * endpoint as i64,
            ok,
            latency_ms: Some(if ok { latency } else { 10_000 }),
            status_code: if ok { Some(200) } else { None },
            error_kind: (!ok).then(|| "timeout".to_owned()),
            error: (!ok).then(|| "no answer within 10s".to_owned()),
            cert_expires_ms: None,
        }
    }
}

#[derive(Default)]
struct Timings(Vec<f64>);

impl Timings {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }
    fn stats(&self) -> (f64, f64, f64) {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        (q(0.5), q(0.95), *v.last().unwrap())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: history_year URL [DAYS]"))?;
    let days: i64 = args.next().map_or(Ok(365), |d| d.parse())?;
    let store = Store::open(&url).await?;
    let backend = store.backend();
    let cfg = HistoryConfig::default();

    let end = opswatch::store::now_ms() / FIVE_MINUTES_MS * FIVE_MINUTES_MS;
    let start = (end - days * DAY) / HOUR_MS * HOUR_MS;
    let names = Host::names();
    let mut ids = Vec::new();
    for n in &names {
        ids.push(store.series_id(n).await?);
    }
    let mut checks = Vec::new();
    for e in 0..ENDPOINTS {
        checks.push(
            store
                .ensure_check(&format!("site-{e}"), opswatch::checks::CheckKind::Http)
                .await?,
        );
    }
    println!(
        "# history_year: {days} days, {} series every minute, {ENDPOINTS} endpoints every 5 min, {:?}",
        names.len(),
        backend
    );

    // ---------------------------------------------------------------- the year, hour by hour
    let mut host = Host::new(start);
    let (mut import_t, mut rollup_t, mut retention_t) =
        (Timings::default(), Timings::default(), Timings::default());
    let mut worst_batch = 0u64;
    let mut worst_step = 0u64;
    let mut last_retention = None;
    let generating = Instant::now();
    let mut t = start;
    while t < end {
        let hour_end = (t + HOUR_MS).min(end);
        let mut rows = Vec::with_capacity(60 * names.len());
        let mut results: Vec<Vec<ResultRow>> = vec![Vec::new(); ENDPOINTS];
        let mut m = t;
        while m < hour_end {
            for (id, v) in ids.iter().zip(host.sample(m)) {
                rows.push((*id, m, v));
            }
            if m % FIVE_MINUTES_MS == 0 {
                for (e, r) in results.iter_mut().enumerate() {
                    r.push(host.result(m, e));
                }
            }
            m += MIN;
        }
        let started = Instant::now();
        store.import_samples(&rows).await?;
        for (check, r) in checks.iter().zip(&results) {
            store.import_check_results(check.id, r).await?;
        }
        import_t.push(started.elapsed());

        let started = Instant::now();
        let r = history::roll_up(&store, hour_end).await?;
        rollup_t.push(started.elapsed());
        worst_step = worst_step.max(r.longest_step_ms);

        // Retention at 03:15 UTC.
        if hour_end.rem_euclid(DAY) == 4 * HOUR_MS {
            let at = hour_end - 45 * MIN;
            let run = history::enforce_retention(&store, &cfg, at).await?;
            retention_t.push(Duration::from_millis(run.elapsed_ms));
            worst_batch = worst_batch.max(run.deleted.longest_batch_ms);
            last_retention = Some(run);
        }
        t = hour_end;
    }
    let generated_s = generating.elapsed().as_secs_f64();
    history::roll_up(&store, end).await?;
    // bench/dashboard.sh only needs the year in the store, not this file's own figures.
    if std::env::var_os("HISTORY_GENERATE_ONLY").is_some() {
        println!("replayed {days} days in {generated_s:.0} s");
        store.close().await;
        return Ok(());
    }
    println!("\n## Generation\n");
    println!("replayed {days} days in {generated_s:.0} s");
    let (p50, p95, max) = import_t.stats();
    println!(
        "import of an hour (2520 samples + 60 results): p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms"
    );
    let (p50, p95, max) = rollup_t.stats();
    println!(
        "roll-up run after each hour: p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms; longest transaction {worst_step} ms"
    );
    let steady: Vec<f64> = retention_t.0.iter().skip(100).copied().collect();
    let (p50, p95, max) = Timings(steady).stats();
    println!(
        "daily retention run (roll-up + deletes + vacuum), steady state (day 100 on): p50 {p50:.0} ms, p95 {p95:.0} ms, max {max:.0} ms; longest delete batch {worst_batch} ms"
    );
    if let Some(run) = &last_retention {
        println!("last retention run: {}", serde_json::to_string(run)?);
    }

    // ---------------------------------------------------------------- size
    println!("\n## Store size after {days} days\n");
    print_size(&store, &url).await?;

    // ---------------------------------------------------------------- chart queries
    println!("\n## Chart queries (warm: 3 runs discarded, then 30 timed)\n");
    println!("| query | range | tier | points | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    let now = end;
    let check_id = checks[0].id;
    for (range, span) in CHART_RANGES {
        let since = now - span;
        for series in ["memory.used_pct", "pm2.memory_bytes:app-3#3"] {
            let mut tm = Timings::default();
            let mut shape = None;
            for i in 0..33 {
                let started = Instant::now();
                let c = store.chart_series(series, since, now).await?;
                if i >= 3 {
                    tm.push(started.elapsed());
                }
                shape = Some((c.tier, c.points.len()));
            }
            let (tier, points) = shape.unwrap();
            let (p50, p95, max) = tm.stats();
            println!(
                "| chart_series {series} | {range} | {tier:?} | {points} | {p50:.2} | {p95:.2} | {max:.2} |"
            );
        }
        let mut tm = Timings::default();
        let mut shape = None;
        for i in 0..33 {
            let started = Instant::now();
            let s = store.check_summary(check_id, since, now).await?;
            let c = store.check_chart(check_id, since, now).await?;
            if i >= 3 {
                tm.push(started.elapsed());
            }
            shape = Some((
                s.tier,
                c.points.len(),
                s.uptime_pct.unwrap_or_default(),
                s.latency.p95.unwrap_or_default(),
            ));
        }
        let (tier, points, up, p95lat) = shape.unwrap();
        let (p50, p95, max) = tm.stats();
        println!(
            "| check_summary + check_chart (uptime {up:.2} %, p95 {p95lat:.0} ms) | {range} | {tier:?} | {points} | {p50:.2} | {p95:.2} | {max:.2} |"
        );
        let mut tm = Timings::default();
        let mut n = 0;
        for i in 0..33 {
            let started = Instant::now();
            let r = store.restart_counts(since, now).await?;
            if i >= 3 {
                tm.push(started.elapsed());
            }
            n = r.iter().map(|c| c.restarts).sum::<i64>();
        }
        let (p50, p95, max) = tm.stats();
        println!(
            "| restart_counts, 10 apps ({n} restarts) | {range} | | | {p50:.2} | {p95:.2} | {max:.2} |"
        );
    }

    // ---------------------------------------------------------------- the API over the tiers
    println!("\n## API routes (in-process router, warm, 30 runs)\n");
    println!("| route | p50 ms | p95 ms | max ms |");
    println!("|---|---|---|---|");
    let app =
        opswatch::daemon::state::AppState::new(opswatch::config::Config::default(), store.clone());
    for (range, _) in CHART_RANGES {
        for path in [
            format!("/api/v1/metrics/memory?range={range}"),
            format!("/api/v1/metrics/pm2?range={range}"),
            format!("/api/v1/checks/site-0/uptime?range={range}"),
        ] {
            let mut tm = Timings::default();
            for i in 0..33 {
                let started = Instant::now();
                let status = get(&app, &path).await;
                anyhow::ensure!(status == 200, "{path}: {status}");
                if i >= 3 {
                    tm.push(started.elapsed());
                }
            }
            let (p50, p95, max) = tm.stats();
            println!("| {path} | {p50:.2} | {p95:.2} | {max:.2} |");
        }
    }

    // ---------------------------------------------------------------- insert cost
    println!("\n## Insert cost (the daemon's write paths, on the year-old store)\n");
    let values: Vec<(String, f64)> = names.iter().map(|n| (n.clone(), 1.0)).collect();
    let calls = 600;
    let started = Instant::now();
    for i in 0..calls {
        let at = end + i * MIN;
        let v: Vec<(String, f64)> = values
            .iter()
            .map(|(n, _)| (n.clone(), host.rng.unit() * 100.0))
            .collect();
        store.record_samples(at, &v).await?;
    }
    let per_call = started.elapsed().as_secs_f64() * 1000.0 / calls as f64;
    println!(
        "record_samples, {} series per call, {calls} calls: {per_call:.3} ms per call, {:.1} µs per sample",
        names.len(),
        per_call * 1000.0 / names.len() as f64
    );
    let check = checks[1].clone();
    let started = Instant::now();
    for i in 0..calls {
        let r = host.result(end + i * MIN, 1);
        store
            .record_check_outcome(&check, &check, &r, &IncidentChange::None, None, &[])
            .await?;
    }
    println!(
        "record_check_outcome, {calls} results: {:.3} ms per result",
        started.elapsed().as_secs_f64() * 1000.0 / calls as f64
    );

    // ---------------------------------------------------------------- the jobs at steady state
    println!("\n## The jobs at steady state\n");
    // The 5-minute job, 10 minutes after the last sample above.
    let later = end + calls * MIN + 2 * MIN;
    let started = Instant::now();
    let r = history::roll_up(&store, later).await?;
    println!(
        "roll-up catching up {calls} minutes ({} steps): {:.1} ms",
        r.steps,
        started.elapsed().as_secs_f64() * 1000.0
    );
    // Five more minutes of samples, then the run the 5-minute job does every time.
    for i in 0..5 {
        let v: Vec<(String, f64)> = names.iter().map(|n| (n.clone(), host.rng.unit())).collect();
        store.record_samples(end + (calls + i) * MIN, &v).await?;
    }
    let started = Instant::now();
    let r = history::roll_up(&store, later + FIVE_MINUTES_MS).await?;
    println!(
        "roll-up of one new 5-minute bucket: {:.1} ms ({} buckets)",
        started.elapsed().as_secs_f64() * 1000.0,
        r.buckets_5m
    );
    // The daily job one day on, with the health probe's write timed meanwhile.
    let next_day = end + DAY;
    let day_rows: Vec<(i64, i64, f64)> = (0..1440)
        .flat_map(|i| {
            let at = later + FIVE_MINUTES_MS + i * MIN;
            ids.iter().map(move |id| (*id, at, 1.0))
        })
        .collect();
    store.import_samples(&day_rows).await?;
    // The 5-minute job has rolled the day up by then.
    history::roll_up(&store, next_day).await?;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let (mut worst, mut n) = (Duration::ZERO, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let started = Instant::now();
                let _ = store.probe(opswatch::store::now_ms()).await;
                worst = worst.max(started.elapsed());
                n += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (worst, n)
        })
    };
    let run = history::enforce_retention(&store, &cfg, next_day).await?;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, n) = prober.await?;
    println!(
        "daily retention job one day later: {} ms (roll-up {} ms, deleted {} samples / {} packed rows / {} results, longest batch {} ms; space given back: {} SQLite pages in {} steps (PostgreSQL: 1 step = VACUUM), longest step {} ms)",
        run.elapsed_ms,
        run.rollup.elapsed_ms,
        run.deleted.samples,
        run.deleted.sample_chunks,
        run.deleted.check_results,
        run.deleted.longest_batch_ms,
        run.reclaimed.pages_freed,
        run.reclaimed.steps,
        run.reclaimed.longest_step_ms
    );
    println!(
        "health-probe writes during it: {n}, the slowest {:.1} ms",
        worst.as_secs_f64() * 1000.0
    );

    // ---------------------------------------------------------------- plans
    println!("\n## Query plans\n");
    for (name, plan) in store.explain_hot_queries(ids[0], check_id, now).await? {
        println!("{name}:\n```\n{plan}\n```");
    }
    store.close().await;
    Ok(())
}

async fn get(app: &opswatch::daemon::state::AppState, path: &str) -> u16 {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let res = opswatch::web::router(app.clone())
        .oneshot(
            http::Request::get(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    status
}

async fn print_size(store: &Store, url: &str) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    match store.backend() {
        Backend::Sqlite => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            // What is on disk once the WAL is checkpointed (as after a restart).
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}")).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await?;
            let file = std::fs::metadata(path)?.len();
            let wal = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
            let (pages, free): (i64, i64) = (
                sqlx::query_scalar("PRAGMA page_count")
                    .fetch_one(&mut conn)
                    .await?,
                sqlx::query_scalar("PRAGMA freelist_count")
                    .fetch_one(&mut conn)
                    .await?,
            );
            println!(
                "SQLite file {:.1} MiB (+ WAL {:.1} MiB), {pages} pages of 4 KiB, {free} free",
                file as f64 / 1048576.0,
                wal as f64 / 1048576.0
            );
            let per_table: Result<Vec<(String, i64)>, _> = sqlx::query_as(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 12",
            )
            .fetch_all(&mut conn)
            .await;
            match per_table {
                Ok(rows) => {
                    for (name, bytes) in rows {
                        println!("  {name}: {:.1} MiB", bytes as f64 / 1048576.0);
                    }
                }
                Err(_) => println!("  (no dbstat in this SQLite build: no per-table sizes)"),
            }
            for table in [
                "samples",
                "sample_rollups",
                "check_results",
                "check_rollups",
            ] {
                let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&mut conn)
                    .await?;
                println!("  rows in {table}: {n}");
            }
            conn.close().await?;
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await?;
            println!(
                "PostgreSQL database {:.1} MiB (pg_database_size, includes the catalog)",
                total as f64 / 1048576.0
            );
            for table in [
                "samples",
                "sample_rollups",
                "check_results",
                "check_rollups",
            ] {
                let (bytes, n): (i64, i64) = sqlx::query_as(&format!(
                    "SELECT pg_total_relation_size('{table}'), (SELECT COUNT(*) FROM {table})"
                ))
                .fetch_one(&mut conn)
                .await?;
                println!(
                    "  {table}: {:.1} MiB with indexes and TOAST, {n} rows",
                    bytes as f64 / 1048576.0
                );
            }
            conn.close().await?;
        }
    }
    Ok(())
}
