//! The weekly log scan over a folder of logs, twice: the first run reads everything (each
//! file's rotated siblings included), then `APPEND_BYTES` are appended to `app.log` and the
//! second run must read only those. Prints wall time, RSS growth during the first scan (peak
//! RSS reset through /proc/self/clear_refs just before it) and the bytes each run read.
//! Usage: logscan_bench LOG_DIR STORE_DIR APPEND_BYTES  (used by bench/logscan.sh)

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use opswatch::config::Config;
use opswatch::daemon::state::AppState;
use opswatch::store::Store;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (logs, store_dir, append): (&str, &str, usize) = (&args[1], &args[2], args[3].parse()?);
    let text = format!(
        "[storage]\nurl = \"sqlite://{store_dir}/bench.db\"\n[pm2]\nenabled = false\n\
         [reports.weekly]\nlogs = [\"{logs}/*.log\"]\nscan_limit_mib = 4096\n"
    );
    let config = Config::from_toml(Path::new("bench.toml"), &text)?;
    let store = Store::open(config.storage.url.expose()).await?;
    let app = AppState::new(config, store);

    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let first = opswatch::reports::weekly::scan_logs(&app, opswatch::store::now_ms(), true).await?;
    let first_s = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");

    let line = "2026-11-28T09:00:00.000Z ERROR appended after the first scan id=123456\n";
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(Path::new(logs).join("app.log"))?;
    let mut written = 0;
    while written < append {
        f.write_all(line.as_bytes())?;
        written += line.len();
    }
    drop(f);
    let started = Instant::now();
    let second =
        opswatch::reports::weekly::scan_logs(&app, opswatch::store::now_ms() + 1, true).await?;
    let second_s = started.elapsed().as_secs_f64();

    println!("first_scan_s={first_s:.2}");
    println!("first_scan_bytes={}", first.bytes_read);
    println!(
        "first_scan_mib_per_s={:.0}",
        first.bytes_read as f64 / 1048576.0 / first_s
    );
    println!(
        "first_scan_matches={}",
        first.totals.iter().map(|(_, n)| n).sum::<u64>()
    );
    println!("rss_before_kib={rss_before}");
    println!("rss_peak_kib={peak}");
    println!("rss_growth_kib={}", peak.saturating_sub(rss_before));
    println!("appended_bytes={written}");
    println!("second_scan_bytes={}", second.bytes_read);
    println!("second_scan_s={second_s:.3}");
    println!(
        "top_line={:?}",
        first.top.first().map(|t| (&t.line, t.count))
    );
    app.store.close().await;
    Ok(())
}
