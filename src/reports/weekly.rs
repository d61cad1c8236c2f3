//! The weekly health report: the error-log scan (what was appended since the last scan, over
//! the configured globs and PM2's logs), memory / swap / load against the week before,
//! process restarts, thresholds crossed and incidents.

use std::path::PathBuf;

use serde::Serialize;

use super::daily::{Incident, incidents, peak};
use super::logscan::{self, FileScan, Position, Tally, TopLine};
use super::{Finding, Kind, Report, fmt_time, push_findings, this_host};
use crate::daemon::state::AppState;
use crate::store::rollups::RestartCount;
use crate::store::{LogOffset, WarningInWindow};

const WEEK_MS: i64 = 7 * 86_400_000;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LogReport {
    pub files: Vec<FileScan>,
    /// Matches per pattern over every file.
    pub totals: Vec<(String, u64)>,
    pub top: Vec<TopLine>,
    pub bytes_read: u64,
    /// The per-run byte budget ran out: the rest is read next time.
    pub capped: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trend {
    pub metric: String,
    pub avg: Option<f64>,
    pub max: Option<f64>,
    pub prev_avg: Option<f64>,
    pub prev_max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Weekly {
    pub host: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub logs: LogReport,
    pub trends: Vec<Trend>,
    pub restarts: Vec<RestartCount>,
    pub thresholds: Vec<WarningInWindow>,
    pub criticals: Vec<(String, String)>,
    pub incidents: Vec<Incident>,
}

/// The logs the scan covers: the configured globs, plus PM2's log folder when PM2 is watched.
pub fn log_files(app: &AppState) -> Vec<PathBuf> {
    let mut globs = app.config.reports.weekly.logs.clone();
    let pm2_on = app
        .config
        .pm2
        .enabled
        .unwrap_or_else(crate::checks::pm2::pm2_on_path);
    if pm2_on
        && let Some(home) = app
            .config
            .pm2
            .home
            .clone()
            .or_else(crate::checks::pm2::default_pm2_home)
    {
        globs.push(format!("{}/logs/*.log", home.display()));
    }
    logscan::expand_globs(&globs)
}

/// Scans the logs from where the previous scan stopped and, when `remember`, remembers where
/// this one did.
pub async fn scan_logs(app: &AppState, now_ms: i64, remember: bool) -> anyhow::Result<LogReport> {
    let host = this_host();
    let files = log_files(app);
    let mut prev = Vec::with_capacity(files.len());
    for f in &files {
        prev.push(
            app.store
                .log_offset(&host, &f.display().to_string())
                .await?
                .map(|o| Position {
                    dev: o.dev as u64,
                    ino: o.ino as u64,
                    offset: o.offset_bytes as u64,
                    head_hash: o.head_hash as u64,
                    head_len: o.head_len as u64,
                    scanned_ms: o.scanned_ms,
                }),
        );
    }
    let patterns = app.config.reports.weekly.patterns.clone();
    let mut budget = app
        .config
        .reports
        .weekly
        .scan_limit_mib
        .saturating_mul(1024 * 1024);
    let (scans, positions, tally) = tokio::task::spawn_blocking(move || {
        let mut tally = Tally::default();
        let mut scans = Vec::new();
        let mut positions = Vec::new();
        for (f, p) in files.iter().zip(&prev) {
            let (scan, pos) =
                logscan::scan_log(f, p.as_ref(), &patterns, &mut budget, &mut tally, now_ms);
            scans.push(scan);
            positions.push((f.display().to_string(), pos));
        }
        (scans, positions, tally)
    })
    .await?;
    for (path, pos) in positions.into_iter().filter(|_| remember) {
        if let Some(p) = pos {
            app.store
                .set_log_offset(
                    &host,
                    &path,
                    &LogOffset {
                        dev: p.dev as i64,
                        ino: p.ino as i64,
                        offset_bytes: p.offset as i64,
                        head_hash: p.head_hash as i64,
                        head_len: p.head_len as i64,
                        scanned_ms: p.scanned_ms,
                    },
                )
                .await?;
        }
    }
    let mut totals: Vec<(String, u64)> = app
        .config
        .reports
        .weekly
        .patterns
        .iter()
        .map(|p| (p.clone(), 0))
        .collect();
    for s in &scans {
        for (i, (_, n)) in s.counts.iter().enumerate() {
            totals[i].1 += n;
        }
    }
    Ok(LogReport {
        bytes_read: scans.iter().map(|s| s.bytes_read).sum(),
        capped: scans.iter().any(|s| s.capped),
        top: tally.top(logscan::TOP_LINES),
        totals,
        files: scans,
    })
}

pub async fn gather(app: &AppState, until_ms: i64, remember: bool) -> anyhow::Result<Weekly> {
    let since_ms = until_ms - WEEK_MS;
    let mut trends = Vec::new();
    for metric in ["memory.used_pct", "swap.used_pct", "load.1"] {
        let now = peak(app, metric, since_ms, until_ms).await?;
        let before = peak(app, metric, since_ms - WEEK_MS, since_ms).await?;
        if now.is_none() && before.is_none() {
            continue;
        }
        trends.push(Trend {
            metric: metric.to_owned(),
            avg: now.as_ref().map(|p| p.avg),
            max: now.as_ref().map(|p| p.max),
            prev_avg: before.as_ref().map(|p| p.avg),
            prev_max: before.as_ref().map(|p| p.max),
        });
    }
    let mut restarts = app.store.restart_counts(since_ms, until_ms).await?;
    restarts.retain(|r| r.restarts > 0);
    let thresholds = app.store.warnings_between(since_ms, until_ms).await?;
    let criticals = app
        .store
        .critical_alerts_between(since_ms, until_ms)
        .await?;
    let incidents = incidents(app, since_ms, until_ms).await?;
    // Last: once the scan's position is saved, nothing else may fail and lose what it read.
    let logs = scan_logs(app, until_ms, remember).await?;
    Ok(Weekly {
        host: this_host(),
        since_ms,
        until_ms,
        logs,
        trends,
        restarts,
        thresholds,
        criticals,
        incidents,
    })
}

fn findings(w: &Weekly) -> Vec<Finding> {
    let mut out = Vec::new();
    let errors: u64 = w.logs.totals.iter().map(|(_, n)| n).sum();
    if let Some(top) = w.logs.top.first()
        && errors > 0
    {
        out.push(Finding::new(
            format!(
                "{errors} matching log lines; most frequent ({}×): {}",
                top.count, top.line
            ),
            "open the log around these lines and fix the cause, starting with the most frequent",
        ));
    }
    if w.logs.capped {
        out.push(Finding::new(
            "the log scan stopped at its byte budget",
            "raise [reports.weekly] scan_limit_mib, or rotate and trim noisy logs; the rest is read next week",
        ));
    }
    for f in w.logs.files.iter().filter(|f| f.error.is_some()) {
        out.push(Finding::new(
            format!(
                "cannot read {}: {}",
                f.path,
                f.error.as_deref().unwrap_or("")
            ),
            "fix the path in [reports.weekly] logs or give opswatch read access (group adm)",
        ));
    }
    for t in &w.trends {
        if let (Some(a), Some(p)) = (t.avg, t.prev_avg)
            && a > p * 1.25
            && a - p > 5.0
        {
            out.push(Finding::new(
                format!(
                    "{} averaged {a:.1}, up from {p:.1} the week before",
                    t.metric
                ),
                "look for a leak or a new load: the top processes on the host page, recent deploys",
            ));
        }
    }
    for r in w.restarts.iter().filter(|r| r.restarts >= 5) {
        out.push(Finding::new(
            format!("{} {} restarted {} times", r.kind, r.process, r.restarts),
            "read its error log (pm2 logs NAME / journalctl -u UNIT) for the crash reason",
        ));
    }
    out
}

pub fn render(w: &Weekly) -> Report {
    let findings = findings(&w.clone());
    let mut t = format!(
        "Weekly health report for {} — {} to {}\n",
        w.host,
        fmt_time(w.since_ms),
        fmt_time(w.until_ms)
    );
    let errors: u64 = w.logs.totals.iter().map(|(_, n)| n).sum();
    t.push_str(&format!(
        "\nLogs: {} files, {} read{}\n",
        w.logs.files.len(),
        human_bytes(w.logs.bytes_read),
        if w.logs.capped {
            " (budget reached)"
        } else {
            ""
        }
    ));
    for (p, n) in &w.logs.totals {
        t.push_str(&format!("  {p}: {n}\n"));
    }
    for f in &w.logs.files {
        let counts: Vec<String> = f.counts.iter().map(|(p, n)| format!("{p} {n}")).collect();
        t.push_str(&format!("  {}: {}\n", f.path, counts.join(", ")));
    }
    if !w.logs.top.is_empty() {
        t.push_str("  Most frequent:\n");
        for l in &w.logs.top {
            t.push_str(&format!("    {}× {}\n", l.count, l.line));
        }
    }
    t.push_str("\nTrends (this week avg/max vs the week before):\n");
    if w.trends.is_empty() {
        t.push_str("  no samples\n");
    }
    let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"));
    for tr in &w.trends {
        t.push_str(&format!(
            "  {}: {}/{} vs {}/{}\n",
            tr.metric,
            f(tr.avg),
            f(tr.max),
            f(tr.prev_avg),
            f(tr.prev_max)
        ));
    }
    t.push_str("\nProcess restarts:\n");
    if w.restarts.is_empty() {
        t.push_str("  none\n");
    }
    for r in &w.restarts {
        t.push_str(&format!("  {} {}: {}\n", r.kind, r.process, r.restarts));
    }
    t.push_str(&format!(
        "\nThresholds crossed: {}\n",
        w.thresholds.len() + w.criticals.len()
    ));
    for th in &w.thresholds {
        t.push_str(&format!("  warning: {} (seen {}×)\n", th.title, th.count));
    }
    for (source, title) in &w.criticals {
        t.push_str(&format!("  critical: {title} [{source}]\n"));
    }
    t.push_str(&format!("\nIncidents: {}\n", w.incidents.len()));
    for i in &w.incidents {
        t.push_str(&format!(
            "  {}: {} ({}) {}\n",
            i.check,
            fmt_time(i.opened_ms),
            crate::rules::human_duration(i.duration_ms),
            i.cause
        ));
    }
    push_findings(&mut t, &findings);
    let restarts: i64 = w.restarts.iter().map(|r| r.restarts).sum();
    let headline = vec![
        format!("Log matches: {errors} in {} files", w.logs.files.len()),
        format!(
            "Incidents: {} · Thresholds crossed: {} · Restarts: {restarts}",
            w.incidents.len(),
            w.thresholds.len() + w.criticals.len()
        ),
    ];
    Report {
        kind: Kind::Weekly,
        summary: format!(
            "{errors} log matches, {} incidents, {} to look at",
            w.incidents.len(),
            findings.len()
        ),
        headline,
        findings,
        body: serde_json::to_value(w).unwrap_or_default(),
        text: t,
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
