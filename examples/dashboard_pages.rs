//! The dashboard figures: server time and bytes per page over a store that holds a year of
//! history (made by `examples/history_year.rs`), and the process's RSS growth after every
//! page was served 1,000 times.
//!
//! Pages go through the real router in-process (`oneshot`), so the time is what the server
//! spends: store reads, chart drawing, template, compression; no socket. The live readings a
//! running daemon keeps in memory (host snapshot, 10 PM2 apps) are set as the generator's
//! default host would have them.
//!
//! Usage: `cargo run --release --example dashboard_pages -- URL [RUNS] [ROUNDS]` (URL: a store written
//! by `history_year`). `bench/dashboard.sh` runs both on SQLite and PostgreSQL.

use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use opswatch::checks::pm2::Pm2App;
use opswatch::checks::system::{
    HostSnapshot, LoadAvg, MemoryUsage, MountUsage, ProcessUsage, SwapUsage,
};
use opswatch::config::Config;
use opswatch::daemon::live::Reading;
use opswatch::daemon::state::AppState;
use opswatch::store::{Store, now_ms};

const PAGES: &[&str] = &[
    "/",
    "/endpoints",
    "/endpoints/site-0",
    "/endpoints/site-0?range=90d",
    "/host",
    "/host?range=7d",
    "/host?range=90d",
    "/host?range=1y",
    "/processes",
    "/alerts",
    "/disputes",
    "/reports",
    "/status",
];

/// A `kB` (or plain count) line of `/proc/self/status`.
fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of every thread of this process so far, ns (`/proc/self/task/*/schedstat`): under
/// a loaded machine the wall time of a page mostly waits for a CPU, its CPU time does not.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

/// RSS, its anonymous and file-backed parts (KiB), and the thread count.
fn memory() -> (u64, u64, u64, u64) {
    (
        status_field("VmRSS"),
        status_field("RssAnon"),
        status_field("RssFile"),
        status_field("Threads"),
    )
}

async fn fetch(app: &AppState, uri: &str, encoding: Option<&str>) -> (u16, usize) {
    let mut req = Request::get(uri);
    if let Some(e) = encoding {
        req = req.header("accept-encoding", e);
    }
    let res = opswatch::web::router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.len())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: dashboard_pages URL [RUNS] [ROUNDS]"))?;
    let runs: usize = args.next().map_or(Ok(30), |r| r.parse())?;
    let rounds: usize = args.next().map_or(Ok(1000), |r| r.parse())?;
    let mut config = String::new();
    for e in 0..5 {
        config.push_str(&format!(
            "[[http]]\nname = \"site-{e}\"\nurl = \"https://site-{e}.example.test/\"\n\n"
        ));
    }
    config.push_str("[status_page]\nenabled = true\n");
    let config = Config::from_toml(std::path::Path::new("bench.toml"), &config)?;
    let store = Store::connect(&url).await?;
    let app = AppState::new(config, store);
    let now = now_ms();
    app.health.record_store_ok(now);
    app.health.record_heartbeat(now);
    let mount = |m: &str, pct: f64| MountUsage {
        mount: m.into(),
        device: "/dev/vda1".into(),
        fstype: "ext4".into(),
        total_bytes: 80 << 30,
        used_bytes: (80.0 * pct / 100.0) as u64 * (1 << 30),
        avail_bytes: (80.0 * (100.0 - pct) / 100.0) as u64 * (1 << 30),
        used_pct: pct,
        inodes_total: 5_000_000,
        inodes_used: 400_000,
        inode_used_pct: Some(8.0),
    };
    let top: Vec<ProcessUsage> = (0..5)
        .map(|i| ProcessUsage {
            pid: 100 + i,
            name: format!("node app-{i}"),
            rss_bytes: (200 + i as u64 * 10) << 20,
            cpu_pct: 3.0 + i as f64,
        })
        .collect();
    app.live.set_host(HostSnapshot {
        at_ms: now,
        mounts: vec![mount("/", 62.0), mount("/var/lib/postgresql", 41.0)],
        memory: MemoryUsage {
            total_bytes: 4 << 30,
            available_bytes: 1 << 30,
            used_pct: 75.0,
        },
        swap: Some(SwapUsage {
            total_bytes: 2 << 30,
            used_bytes: 200 << 20,
            used_pct: 9.8,
        }),
        load: LoadAvg {
            one: 0.8,
            five: 0.7,
            fifteen: 0.6,
        },
        cpus: 2,
        uptime_s: 3_000_000.0,
        top_memory: top.clone(),
        top_cpu: top,
    });
    app.live.set_pm2(Reading {
        at_ms: now,
        error: None,
        items: (0..10)
            .map(|a| Pm2App {
                name: format!("app-{a}"),
                pm_id: a,
                status: "online".into(),
                pid: Some(1000 + a),
                cpu_pct: 1.0,
                memory_bytes: 150 << 20,
                uptime_ms: Some(86_400_000),
                restarts: 3,
                unstable_restarts: 0,
                exec_mode: "fork_mode".into(),
            })
            .collect(),
    });

    println!("# dashboard_pages: {url}, {runs} timed runs per page after 3 warm-up runs");
    println!(
        "\n| page | server time p50 | p95 | max | CPU per request (all threads, mean) | bytes (identity) | gzip | br |\n|---|---|---|---|---|---|---|---|"
    );
    for page in PAGES {
        for _ in 0..3 {
            fetch(&app, page, None).await;
        }
        let mut times = Vec::with_capacity(runs);
        let mut plain = 0;
        let cpu_before = cpu_ns();
        for _ in 0..runs {
            let t = Instant::now();
            let (status, n) = fetch(&app, page, None).await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "{page} answered {status}");
            plain = n;
        }
        let cpu_ms = (cpu_ns() - cpu_before) as f64 / 1e6 / runs as f64;
        times.sort_by(f64::total_cmp);
        let (_, gzip) = fetch(&app, page, Some("gzip")).await;
        let (_, br) = fetch(&app, page, Some("br")).await;
        println!(
            "| `{page}` | {:.1} ms | {:.1} ms | {:.1} ms | {cpu_ms:.1} ms | {:.1} KiB | {:.1} KiB | {:.1} KiB |",
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times[times.len() - 1],
            plain as f64 / 1024.0,
            gzip as f64 / 1024.0,
            br as f64 / 1024.0
        );
    }

    // RSS after every page 1,000 times (after a first round, so lazily built state is in).
    let before = memory();
    let mut at_100 = before;
    for round in 0..rounds {
        for page in PAGES {
            fetch(&app, page, Some("br")).await;
        }
        if round + 1 == 100 {
            at_100 = memory();
        }
    }
    let after = memory();
    let mib = |k: u64| k as f64 / 1024.0;
    let grew = |a: u64, b: u64| (b as f64 - a as f64) / 1024.0;
    println!(
        "\nRSS: {:.1} MiB after one round of every page, {:.1} MiB after {rounds} more rounds ({} requests): growth {:+.2} MiB (after 100 rounds {:+.2} MiB)",
        mib(before.0),
        mib(after.0),
        rounds * PAGES.len(),
        grew(before.0, after.0),
        grew(before.0, at_100.0),
    );
    println!(
        "of which anonymous {:+.2} MiB ({:.1} → {:.1}), file-backed {:+.2} MiB; threads {} → {}",
        grew(before.1, after.1),
        mib(before.1),
        mib(after.1),
        grew(before.2, after.2),
        before.3,
        after.3
    );
    app.store.close().await;
    Ok(())
}
