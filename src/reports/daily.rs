//! The daily summary: the operator's own numbers (`[[reports.daily.stats]]` against the app's
//! database) and the last 24 hours of operations from the store.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use serde::Serialize;
use sqlx::{Column as _, Row as _};

use super::{Finding, Kind, Report, fmt_pct, fmt_time, push_findings};
use crate::config::{Config, StatConfig};
use crate::daemon::state::AppState;
use crate::store::rollups::RestartCount;

const DAY_MS: i64 = 86_400_000;
/// A stat returning more rows than this is cut (and says so).
const MAX_STAT_ROWS: usize = 10;
/// How long connecting to the app's database and each stat query may take.
const STAT_TIMEOUT: Duration = Duration::from_secs(15);

/// The result of one `[[reports.daily.stats]]` query.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StatValue {
    /// One row of one column.
    Number {
        value: String,
    },
    Table {
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        /// More rows came back than are shown.
        truncated: bool,
    },
    Error {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stat {
    pub name: String,
    #[serde(flatten)]
    pub value: StatValue,
}

/// The operator's numbers, or why there are none.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Stats {
    NotConfigured,
    /// The app's database could not be reached (the reason, never the password).
    Unreachable {
        error: String,
    },
    Values {
        stats: Vec<Stat>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EndpointDay {
    pub name: String,
    pub uptime_pct: Option<f64>,
    pub p95_ms: Option<f64>,
    pub probes: i64,
    pub failures: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Incident {
    pub check: String,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
    /// Within the window (an incident still open counts up to the report's end).
    pub duration_ms: i64,
    pub cause: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Peak {
    pub metric: String,
    pub max: f64,
    pub avg: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Daily {
    pub host: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub stats: Stats,
    pub endpoints: Vec<EndpointDay>,
    pub incidents: Vec<Incident>,
    pub alerts_by_severity: BTreeMap<String, i64>,
    pub peaks: Vec<Peak>,
    pub restarts: Vec<RestartCount>,
    /// `None` until the disputes table exists (see [`new_disputes_since`]).
    pub new_disputes: Option<i64>,
}

/// Runs every stat against `[database]`. `Unreachable` when the database cannot be reached.
pub async fn run_stats(config: &Config) -> Stats {
    let stats = &config.reports.daily.stats;
    let Some(db) = &config.database else {
        return Stats::NotConfigured;
    };
    if stats.is_empty() {
        return Stats::NotConfigured;
    }
    let url = db.url.expose();
    // Reports only read: every stat runs read-only, with a time limit.
    let options = match <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url) {
        Ok(o) => o.options([
            ("default_transaction_read_only", "on"),
            ("statement_timeout", "15s"),
        ]),
        Err(e) => {
            return Stats::Unreachable {
                error: redact(&e.to_string(), url),
            };
        }
    };
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(STAT_TIMEOUT)
        .connect_with(options)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            return Stats::Unreachable {
                error: redact(&e.to_string(), url),
            };
        }
    };
    let mut out = Vec::new();
    for s in stats {
        out.push(Stat {
            name: s.name.clone(),
            value: run_stat(&pool, s).await,
        });
    }
    pool.close().await;
    Stats::Values { stats: out }
}

/// At most [`MAX_STAT_ROWS`] + 1 rows of `sql` (one more tells that it was cut).
async fn fetch_rows(
    pool: &sqlx::PgPool,
    sql: &str,
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    let mut rows = sqlx::raw_sql(sql).fetch(pool);
    let mut got = Vec::new();
    while let Some(row) = rows.try_next().await? {
        got.push(row);
        if got.len() > MAX_STAT_ROWS {
            break;
        }
    }
    Ok(got)
}

/// The simple query protocol answers in text, so any column type prints as PostgreSQL
/// writes it (numeric, timestamps, money) without a decoder per type.
async fn run_stat(pool: &sqlx::PgPool, s: &StatConfig) -> StatValue {
    let fetch = fetch_rows(pool, &s.sql);
    let rows = match tokio::time::timeout(STAT_TIMEOUT, fetch).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => {
            return StatValue::Error {
                error: match &e {
                    sqlx::Error::Database(db) => db.message().to_owned(),
                    other => other.to_string(),
                },
            };
        }
        Err(_) => {
            return StatValue::Error {
                error: format!("no answer within {}s", STAT_TIMEOUT.as_secs()),
            };
        }
    };
    let Some(first) = rows.first() else {
        return StatValue::Table {
            columns: Vec::new(),
            rows: Vec::new(),
            truncated: false,
        };
    };
    let columns: Vec<String> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let cells = |row: &sqlx::postgres::PgRow| -> Vec<String> {
        (0..columns.len())
            .map(|i| {
                row.try_get_unchecked::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "NULL".to_owned())
            })
            .collect()
    };
    if rows.len() == 1 && columns.len() == 1 {
        return StatValue::Number {
            value: cells(first).remove(0),
        };
    }
    let truncated = rows.len() > MAX_STAT_ROWS;
    StatValue::Table {
        rows: rows.iter().take(MAX_STAT_ROWS).map(cells).collect(),
        columns,
        truncated,
    }
}

/// Removes the URL and its password from a driver message.
fn redact(message: &str, url: &str) -> String {
    let mut m = crate::config::redact_url(message);
    if !url.is_empty() {
        m = m.replace(url, "[database url]");
    }
    if let Ok(u) = url::Url::parse(url)
        && let Some(pw) = u.password()
        && !pw.is_empty()
    {
        m = m.replace(pw, crate::config::REDACTED);
    }
    m
}

/// New disputes since `since_ms` (from either source); `None` when the store cannot say.
pub async fn new_disputes_since(app: &AppState, since_ms: i64) -> Option<i64> {
    match app.store.count_disputes(since_ms, i64::MAX).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot count disputes for the daily report"
            );
            None
        }
    }
}

/// Gathers the daily summary for the 24 hours before `until_ms`.
pub async fn gather(app: &AppState, until_ms: i64) -> anyhow::Result<Daily> {
    let since_ms = until_ms - DAY_MS;
    let stats = run_stats(&app.config).await;
    let mut endpoints = Vec::new();
    for configured in crate::checks::configured(&app.config) {
        let Some(check) = app.store.find_check(configured.name()).await? else {
            continue;
        };
        let s = app
            .store
            .check_summary(check.id, since_ms, until_ms)
            .await?;
        endpoints.push(EndpointDay {
            name: configured.name().to_owned(),
            uptime_pct: s.uptime_pct,
            p95_ms: s.latency.p95,
            probes: s.total,
            failures: s.failures,
        });
    }
    let incidents = incidents(app, since_ms, until_ms).await?;
    let alerts_by_severity = app
        .store
        .alert_counts_by_severity(since_ms, until_ms)
        .await?
        .into_iter()
        .collect();
    let peaks = peaks(app, since_ms, until_ms).await?;
    let mut restarts = app.store.restart_counts(since_ms, until_ms).await?;
    restarts.retain(|r| r.restarts > 0);
    Ok(Daily {
        host: super::this_host(),
        since_ms,
        until_ms,
        stats,
        endpoints,
        incidents,
        alerts_by_severity,
        peaks,
        restarts,
        new_disputes: new_disputes_since(app, since_ms).await,
    })
}

pub async fn incidents(
    app: &AppState,
    since_ms: i64,
    until_ms: i64,
) -> anyhow::Result<Vec<Incident>> {
    Ok(app
        .store
        .incidents_between(since_ms, until_ms)
        .await?
        .into_iter()
        .map(|i| Incident {
            duration_ms: i.resolved_ms.unwrap_or(until_ms).min(until_ms)
                - i.opened_ms.max(since_ms),
            check: i.check_name,
            opened_ms: i.opened_ms,
            resolved_ms: i.resolved_ms,
            cause: i.cause,
        })
        .collect())
}

/// Highest and average of memory, swap, load and each disk over the window.
pub async fn peaks(app: &AppState, since_ms: i64, until_ms: i64) -> anyhow::Result<Vec<Peak>> {
    let mut names = vec![
        "memory.used_pct".to_owned(),
        "swap.used_pct".to_owned(),
        "load.1".to_owned(),
    ];
    names.extend(app.store.list_series("disk.used_pct:").await?);
    let mut out = Vec::new();
    for name in names {
        if let Some(p) = peak(app, &name, since_ms, until_ms).await? {
            out.push(p);
        }
    }
    Ok(out)
}

pub async fn peak(
    app: &AppState,
    name: &str,
    since_ms: i64,
    until_ms: i64,
) -> anyhow::Result<Option<Peak>> {
    let chart = app.store.chart_series(name, since_ms, until_ms).await?;
    let n: i64 = chart.points.iter().map(|p| p.count).sum();
    if n == 0 {
        return Ok(None);
    }
    let max = chart.points.iter().map(|p| p.max).fold(f64::MIN, f64::max);
    let avg = chart
        .points
        .iter()
        .map(|p| p.avg * p.count as f64)
        .sum::<f64>()
        / n as f64;
    Ok(Some(Peak {
        metric: name.to_owned(),
        max,
        avg,
    }))
}

/// What needs attention in a daily summary.
fn findings(d: &Daily, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Stats::Unreachable { error } = &d.stats {
        out.push(Finding::new(
            format!("the app database could not be reached: {error}"),
            "check that PostgreSQL runs and that [database] url (user, password, host) is right",
        ));
    }
    if let Stats::Values { stats } = &d.stats {
        for s in stats {
            if let StatValue::Error { error } = &s.value {
                out.push(Finding::new(
                    format!("stat \"{}\" failed: {error}", s.name),
                    "fix its sql in [[reports.daily.stats]] (run it in psql first)",
                ));
            }
        }
    }
    for e in &d.endpoints {
        if e.uptime_pct.is_some_and(|u| u < 99.0) {
            out.push(Finding::new(
                format!("{} was up {} of the day", e.name, fmt_pct(e.uptime_pct)),
                "see its incidents on the dashboard; check the app's logs around them",
            ));
        }
    }
    for i in d.incidents.iter().filter(|i| i.resolved_ms.is_none()) {
        out.push(Finding::new(
            format!("{} is still down ({})", i.check, i.cause),
            "restore the service; its alert has the details",
        ));
    }
    let limits = [
        ("memory.used_pct", config.system.memory_warn),
        ("swap.used_pct", config.system.swap_warn),
        ("load.1", config.system.load_warn),
    ];
    for p in &d.peaks {
        let limit = limits
            .iter()
            .find(|(m, _)| *m == p.metric)
            .map(|(_, l)| *l)
            .or_else(|| {
                p.metric
                    .starts_with("disk.used_pct:")
                    .then_some(config.system.disk_warn)
            });
        if let Some(limit) = limit
            && p.max > limit
        {
            out.push(Finding::new(
                format!(
                    "{} peaked at {:.1} (warning above {limit})",
                    p.metric, p.max
                ),
                "look at the top processes on the host page at that time",
            ));
        }
    }
    out
}

pub fn render(d: &Daily, config: &Config) -> Report {
    let findings = findings(d, config);
    let mut t = format!(
        "Daily summary for {} — {} to {}\n",
        d.host,
        fmt_time(d.since_ms),
        fmt_time(d.until_ms)
    );
    let mut headline = Vec::new();
    t.push_str("\nYour numbers:\n");
    match &d.stats {
        Stats::NotConfigured => t.push_str("  none configured ([[reports.daily.stats]])\n"),
        Stats::Unreachable { error } => {
            t.push_str(&format!("  app database unreachable: {error}\n"));
            headline.push("Your numbers: app database unreachable".to_owned());
        }
        Stats::Values { stats } => {
            for s in stats {
                match &s.value {
                    StatValue::Number { value } => {
                        t.push_str(&format!("  {}: {value}\n", s.name));
                        headline.push(format!("{}: {value}", s.name));
                    }
                    StatValue::Table {
                        columns,
                        rows,
                        truncated,
                    } => {
                        t.push_str(&format!("  {}:\n    {}\n", s.name, columns.join(" | ")));
                        for r in rows {
                            t.push_str(&format!("    {}\n", r.join(" | ")));
                        }
                        if *truncated {
                            t.push_str(&format!("    (first {MAX_STAT_ROWS} rows)\n"));
                        }
                        headline.push(format!("{}: {} rows", s.name, rows.len()));
                    }
                    StatValue::Error { error } => {
                        t.push_str(&format!("  {}: failed: {error}\n", s.name));
                    }
                }
            }
        }
    }
    t.push_str("\nEndpoints (uptime, p95 latency):\n");
    if d.endpoints.is_empty() {
        t.push_str("  none watched\n");
    }
    for e in &d.endpoints {
        let p95 = e
            .p95_ms
            .map_or_else(|| "n/a".to_owned(), |p| format!("{p:.0} ms"));
        t.push_str(&format!(
            "  {}: {} up, p95 {p95} ({} probes, {} failed)\n",
            e.name,
            fmt_pct(e.uptime_pct),
            e.probes,
            e.failures
        ));
    }
    if !d.endpoints.is_empty() {
        let worst = d
            .endpoints
            .iter()
            .filter_map(|e| e.uptime_pct.map(|u| (u, &e.name)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((u, name)) = worst {
            headline.push(format!("Lowest uptime: {name} {u:.2} %"));
        }
    }
    t.push_str(&format!("\nIncidents: {}\n", d.incidents.len()));
    for i in &d.incidents {
        let end = i
            .resolved_ms
            .map_or_else(|| "still open".to_owned(), fmt_time);
        t.push_str(&format!(
            "  {}: {} → {end} ({}) {}\n",
            i.check,
            fmt_time(i.opened_ms),
            crate::rules::human_duration(i.duration_ms),
            i.cause
        ));
    }
    let alerts: Vec<String> = d
        .alerts_by_severity
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let alerts = if alerts.is_empty() {
        "none".to_owned()
    } else {
        alerts.join(", ")
    };
    t.push_str(&format!("\nAlerts: {alerts}\n"));
    headline.push(format!(
        "Incidents: {} · Alerts: {alerts}",
        d.incidents.len()
    ));
    t.push_str("\nPeaks (max / average):\n");
    if d.peaks.is_empty() {
        t.push_str("  no samples\n");
    }
    for p in &d.peaks {
        t.push_str(&format!("  {}: {:.1} / {:.1}\n", p.metric, p.max, p.avg));
    }
    t.push_str("\nProcess restarts:\n");
    if d.restarts.is_empty() {
        t.push_str("  none\n");
    }
    for r in &d.restarts {
        t.push_str(&format!("  {} {}: {}\n", r.kind, r.process, r.restarts));
    }
    let restarts: i64 = d.restarts.iter().map(|r| r.restarts).sum();
    headline.push(format!("Process restarts: {restarts}"));
    match d.new_disputes {
        Some(n) => {
            t.push_str(&format!("\nNew disputes: {n}\n"));
            headline.push(format!("New disputes: {n}"));
        }
        None => t.push_str("\nNew disputes: not recorded yet\n"),
    }
    push_findings(&mut t, &findings);
    let summary = if findings.is_empty() {
        format!(
            "all well; {} incidents, {restarts} restarts",
            d.incidents.len()
        )
    } else {
        format!("{} to look at", findings.len())
    };
    Report {
        kind: Kind::Daily,
        summary,
        headline,
        findings,
        body: serde_json::to_value(d).unwrap_or_default(),
        text: t,
    }
}
