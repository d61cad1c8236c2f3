//! The app database's health report: on `[database] schedule` (daily 01:30 UTC by default)
//! and from `opswatch report db`. Reads the facts over one short-lived connection, stores the
//! numbers as series (so size, connections and dead tuples chart over a year), stores the
//! report, and (when sending) raises or clears one condition per finding and sends the report
//! as one short message.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::checks::app_db;
use crate::checks::postgres::{Facts, Settings, XID_LIMIT, gather};
use crate::config::DatabaseConfig;
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::rules::app_db::{Finding, KEYS, assessment, findings, reachable};
use crate::rules::condition::Level;
use crate::store::{NewAlert, NewReport, now_ms};

const DAY_MS: i64 = 86_400_000;
/// A fact that would wait longer than this for a lock is reported as not readable.
const REPORT_LOCK_TIMEOUT: &str = "SET lock_timeout = 2000";

#[derive(Debug, thiserror::Error)]
pub enum DbReportError {
    #[error("cannot connect to the app's database: {0}")]
    Unreachable(String),
    #[error("{0:#}")]
    Store(#[from] anyhow::Error),
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// `None` when a report for this schedule occurrence already existed.
    pub report_id: Option<i64>,
    pub text: String,
    pub findings: Vec<Finding>,
    pub facts: Facts,
}

/// Size growth from opswatch's own history of the size series.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Growth {
    pub since_last_bytes: Option<f64>,
    pub per_day_bytes: Option<f64>,
    pub over_days: Option<f64>,
}

/// The scheduled run: the report for the latest occurrence, sent.
pub async fn scheduled(app: AppState) -> anyhow::Result<()> {
    let Some(db) = &app.config.database else {
        return Ok(());
    };
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms()).unwrap_or_else(Utc::now);
    let occurrence = db
        .schedule
        .last_at_or_before(now)
        .map(|t| t.timestamp_millis());
    match run(&app, occurrence, true).await {
        Ok(_) => Ok(()),
        Err(DbReportError::Unreachable(_)) => Ok(()), // already a CRITICAL
        Err(DbReportError::Store(e)) => Err(e),
    }
}

/// Runs the report. With `send`, findings become conditions (CRITICAL now, WARNING for the
/// digest) and the report goes out as one message; without, it is only stored.
pub async fn run(
    app: &AppState,
    occurrence_ms: Option<i64>,
    send: bool,
) -> Result<Outcome, DbReportError> {
    let db = app
        .config
        .database
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [database] url in the config"))?;
    let started = std::time::Instant::now();
    let conn = app_db::connect(db.url.expose(), db.statement_timeout.get()).await;
    let connect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let now = now_ms();
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            let why = match e {
                app_db::AppDbError::Unreachable(w) | app_db::AppDbError::Query(w) => w,
            };
            store_unreachable(app, occurrence_ms, &why, now).await?;
            if send {
                crate::rules::condition::apply(app, reachable(Some(&why)), now).await?;
            }
            return Err(DbReportError::Unreachable(why));
        }
    };
    let settings = Settings {
        dead_tuples_warn: db.dead_tuples_warn,
        long_query: db.long_query.get(),
        migrations_table: db.migrations_table.clone(),
    };
    // Sizes take a light lock per relation: never queue behind the app's DDL for long.
    {
        use sqlx::Executor as _;
        let _ = conn.execute(REPORT_LOCK_TIMEOUT).await;
    }
    let facts = gather(&mut conn, &settings, connect_ms).await;
    app_db::close(conn).await;

    let growth = growth(app, &facts, now).await?;
    app.store.record_samples(now, &series(&facts)).await?;
    let found = findings(&facts, db.dead_tuples_warn, &db.long_query.to_string());
    let text = render(&facts, &found, &growth, db);
    let summary = summary(&facts, &found);
    let body = json!({ "facts": facts, "findings": found, "growth": growth });
    let host = host_name();
    let report_id = app
        .store
        .insert_report(&NewReport {
            host: &host,
            kind: "db",
            created_ms: now,
            occurrence_ms,
            summary: &summary,
            body: &body,
            text: &text,
        })
        .await?;
    if send && let Some(id) = report_id {
        crate::rules::condition::apply(app, reachable(None), now).await?;
        for key in KEYS {
            let finding = found.iter().find(|f| f.key == *key);
            crate::rules::condition::apply(app, assessment(key, finding), now).await?;
        }
        let message = report_message(id, occurrence_ms, &summary, &found, &facts);
        if app
            .store
            .record_alert(&message, &app.channels, now)
            .await?
            .is_some()
        {
            app.wake_dispatcher();
        }
    }
    Ok(Outcome {
        report_id,
        text,
        findings: found,
        facts,
    })
}

async fn store_unreachable(
    app: &AppState,
    occurrence_ms: Option<i64>,
    why: &str,
    now: i64,
) -> anyhow::Result<()> {
    let summary = format!("the app's database cannot be reached: {why}");
    let host = host_name();
    app.store
        .insert_report(&NewReport {
            host: &host,
            kind: "db",
            created_ms: now,
            occurrence_ms,
            summary: &summary,
            body: &json!({ "unreachable": why }),
            text: &format!("Database report\n\nCRITICAL  {summary}\n"),
        })
        .await?;
    Ok(())
}

/// This machine's name, as reports carry it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

const SIZE_SERIES: &str = "appdb.size_bytes";

async fn growth(app: &AppState, facts: &Facts, now: i64) -> anyhow::Result<Growth> {
    let Some(size) = facts.size_bytes else {
        return Ok(Growth::default());
    };
    let points = app
        .store
        .query_series(SIZE_SERIES, now - 31 * DAY_MS, now)
        .await?;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(Growth::default());
    };
    let days = (now - first.at_ms) as f64 / DAY_MS as f64;
    Ok(Growth {
        since_last_bytes: Some(size as f64 - last.avg),
        per_day_bytes: (days >= 1.0).then(|| (size as f64 - first.avg) / days),
        over_days: (days >= 1.0).then_some(days),
    })
}

/// The numbers worth charting.
fn series(f: &Facts) -> Vec<(String, f64)> {
    let mut out = vec![
        ("appdb.connect_ms".to_owned(), f.connect_ms),
        ("appdb.report.queries".to_owned(), f64::from(f.load.queries)),
        ("appdb.report.query_ms".to_owned(), f.load.total_ms),
    ];
    let mut push = |name: &str, v: Option<f64>| {
        if let Some(v) = v {
            out.push((name.to_owned(), v));
        }
    };
    push(SIZE_SERIES, f.size_bytes.map(|v| v as f64));
    push("appdb.latency_ms", f.latency_ms);
    if let Some(c) = &f.connections {
        push("appdb.connections.used", Some(c.used as f64));
        push("appdb.connections.used_pct", Some(c.used_pct()));
        push(
            "appdb.connections.idle_in_transaction",
            Some(c.idle_in_transaction as f64),
        );
    }
    push(
        "appdb.dead_tuples.total",
        f.dead_tuples_total.map(|v| v as f64),
    );
    if let Some(c) = &f.cache {
        // Counters, so a chart can show the ratio of any period, not only since the reset.
        push("appdb.cache.blks_hit", Some(c.blks_hit as f64));
        push("appdb.cache.blks_read", Some(c.blks_read as f64));
        push("appdb.cache.hit_pct", c.hit_pct);
    }
    push(
        "appdb.xid_age.max",
        f.wraparound
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.age as f64),
    );
    push(
        "appdb.long_queries",
        f.long_queries.as_ref().map(|q| q.len() as f64),
    );
    push(
        "appdb.sequences.max_pct",
        f.sequences
            .as_ref()
            .map(|s| s.first().map_or(0.0, |s| s.pct)),
    );
    for t in f.dead_tuples.iter().flatten() {
        out.push((format!("appdb.dead_tuples:{}", t.table), t.dead as f64));
    }
    out
}

fn summary(f: &Facts, found: &[Finding]) -> String {
    let crit = found.iter().filter(|x| x.level == Level::Critical).count();
    let warn = found.iter().filter(|x| x.level == Level::Warning).count();
    let mut s = format!(
        "{}: {crit} critical, {warn} warning{}",
        f.database.as_deref().unwrap_or("app database"),
        if warn == 1 { "" } else { "s" }
    );
    if !f.unreadable.is_empty() {
        s.push_str(&format!(", {} fact(s) not readable", f.unreadable.len()));
    }
    s
}

fn report_message(
    id: i64,
    occurrence_ms: Option<i64>,
    summary: &str,
    found: &[Finding],
    f: &Facts,
) -> NewAlert {
    let mut lines: Vec<String> = found
        .iter()
        .map(|x| {
            format!(
                "{} {}",
                if x.level == Level::Critical {
                    "CRITICAL"
                } else {
                    "WARNING"
                },
                x.title
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("Nothing over its threshold.".to_owned());
    }
    if let Some(size) = f.size_bytes {
        lines.push(format!("Size {}", bytes(size as f64)));
    }
    if !f.unreadable.is_empty() {
        lines.push(format!(
            "Could not read: {}",
            f.unreadable.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    NewAlert {
        dedup_key: match occurrence_ms {
            Some(o) => format!("report:db:{o}"),
            None => format!("report:db:manual:{id}"),
        },
        severity: Severity::Info,
        source: "appdb".to_owned(),
        kind: "report".to_owned(),
        title: format!("Database report {summary}"),
        value: None,
        threshold: None,
        hint: Some(format!(
            "Full report: `opswatch report db`, the dashboard, or GET /api/v1/reports/{id}."
        )),
        body: Some(lines.join("\n")),
        silenced: false,
    }
}

fn bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "" };
    let b = b.abs();
    let (v, unit) = if b >= 1024.0 * 1024.0 * 1024.0 {
        (b / (1024.0 * 1024.0 * 1024.0), "GiB")
    } else if b >= 1024.0 * 1024.0 {
        (b / (1024.0 * 1024.0), "MiB")
    } else if b >= 1024.0 {
        (b / 1024.0, "KiB")
    } else {
        (b, "B")
    };
    format!("{sign}{v:.1} {unit}")
}

fn or_unreadable<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "could not read (see below)".to_owned(), f)
}

fn render(f: &Facts, found: &[Finding], g: &Growth, db: &DatabaseConfig) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Database report: {} (PostgreSQL {})",
        f.database.as_deref().unwrap_or("?"),
        f.server_version.as_deref().unwrap_or("?")
    );
    let _ = writeln!(s, "{}\n", summary(f, found));
    for x in found {
        let label = if x.level == Level::Critical {
            "CRITICAL"
        } else {
            "WARNING "
        };
        let _ = writeln!(s, "{label}  {}", x.title);
        let _ = writeln!(s, "          measured: {}", x.value);
        let _ = writeln!(s, "          threshold: {}", x.threshold);
        let _ = writeln!(s, "          what to do: {}", x.hint);
    }
    if !found.is_empty() {
        s.push('\n');
    }
    let long = db.long_query.to_string();
    let mut row = |name: &str, value: String| {
        let _ = writeln!(s, "  {name:<20} {value}");
    };
    row(
        "connections",
        or_unreadable(f.connections.as_ref(), |c| {
            let states: Vec<String> = c
                .by_state
                .iter()
                .map(|(st, n)| format!("{st} {n}"))
                .collect();
            let mut v = format!(
                "{} of {} usable ({:.0} %): {}",
                c.used,
                c.max_connections - c.reserved,
                c.used_pct(),
                states.join(", ")
            );
            if let Some(l) = c.longest_idle_in_transaction_s {
                v.push_str(&format!(
                    "; longest idle in transaction {}",
                    crate::rules::human_duration((l * 1000.0) as i64)
                ));
            }
            v
        }),
    );
    row(
        "size",
        or_unreadable(f.size_bytes, |b| {
            let mut v = bytes(b as f64);
            if let Some(d) = g.since_last_bytes {
                v.push_str(&format!(", {} since the last report", bytes(d)));
            }
            if let (Some(p), Some(days)) = (g.per_day_bytes, g.over_days) {
                v.push_str(&format!(", {}/day over {days:.0} days", bytes(p)));
            }
            v
        }),
    );
    row(
        "round trip",
        format!(
            "{} (median of 5 SELECT 1), connecting {:.1} ms",
            f.latency_ms
                .map_or("?".to_owned(), |l| format!("{l:.2} ms")),
            f.connect_ms
        ),
    );
    row(
        "cache hit ratio",
        or_unreadable(f.cache.as_ref(), |c| {
            c.hit_pct.map_or("no reads yet".to_owned(), |p| {
                format!("{p:.2} % since the statistics were reset")
            })
        }),
    );
    row(
        "transaction IDs",
        or_unreadable(f.wraparound.as_ref(), |w| {
            w.first().map_or("?".to_owned(), |o| {
                format!(
                    "oldest {} age {} ({:.2} % of the limit)",
                    o.database,
                    o.age,
                    100.0 * o.age as f64 / XID_LIMIT as f64
                )
            })
        }),
    );
    row(
        "dead tuples",
        or_unreadable(f.dead_tuples.as_ref(), |d| {
            let mut v = format!("{} in total", f.dead_tuples_total.unwrap_or(0));
            for t in d {
                v.push_str(&format!(
                    "; {} {} dead / {} live (vacuum {}, autovacuum {}, analyze {}, autoanalyze {})",
                    t.table,
                    t.dead,
                    t.live,
                    t.last_vacuum.as_deref().unwrap_or("never"),
                    t.last_autovacuum.as_deref().unwrap_or("never"),
                    t.last_analyze.as_deref().unwrap_or("never"),
                    t.last_autoanalyze.as_deref().unwrap_or("never"),
                ));
            }
            v
        }),
    );
    let names = |v: &Vec<String>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    row(
        "no primary key",
        or_unreadable(f.tables_without_pk.as_ref(), names),
    );
    let sessions = |v: &Vec<crate::checks::postgres::Session>| {
        if v.is_empty() {
            format!("none over {long}")
        } else {
            v.iter()
                .map(|q| format!("pid {} {} {:.0}s: {}", q.pid, q.user, q.for_s, q.query))
                .collect::<Vec<_>>()
                .join("; ")
        }
    };
    row(
        "long queries",
        or_unreadable(f.long_queries.as_ref(), sessions),
    );
    row(
        "idle in transaction",
        or_unreadable(f.idle_in_transaction.as_ref(), sessions),
    );
    row(
        "sequences",
        or_unreadable(f.sequences.as_ref(), |v| {
            if v.is_empty() {
                "none over 80 %".to_owned()
            } else {
                v.iter()
                    .map(|q| format!("{} {:.1} %", q.sequence, q.pct))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }),
    );
    row(
        "invalid indexes",
        or_unreadable(f.invalid_indexes.as_ref(), names),
    );
    row(
        "duplicate indexes",
        or_unreadable(f.duplicate_indexes.as_ref(), |v| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter()
                    .map(|d| format!("{}: {}", d.table, d.indexes))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }),
    );
    row(
        "unused indexes",
        or_unreadable(f.unused_indexes.as_ref(), |v| {
            if v.is_empty() {
                "none over 10 MiB".to_owned()
            } else {
                v.iter()
                    .map(|u| format!("{} {}", u.index, bytes(u.bytes as f64)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }),
    );
    row(
        "replication",
        or_unreadable(f.replication.as_ref(), |r| {
            if r.in_recovery {
                format!(
                    "this is a replica, last replay {} ago",
                    r.replay_delay_s
                        .map_or("?".to_owned(), |d| format!("{d:.0}s"))
                )
            } else if r.replicas.is_empty() {
                "no replicas".to_owned()
            } else {
                r.replicas
                    .iter()
                    .map(|x| {
                        format!(
                            "{} {} lag {}",
                            x.name,
                            x.state,
                            x.replay_lag_s
                                .map_or("?".to_owned(), |l| format!("{l:.1}s"))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }),
    );
    row(
        "slowest statements",
        or_unreadable(f.slowest_statements.as_ref(), |v| match v {
            None => "pg_stat_statements is not installed".to_owned(),
            Some(v) if v.is_empty() => "none recorded".to_owned(),
            Some(v) => v
                .iter()
                .map(|q| format!("{:.1} ms × {}: {}", q.mean_ms, q.calls, q.query))
                .collect::<Vec<_>>()
                .join("; "),
        }),
    );
    row(
        "migrations",
        or_unreadable(f.migrations.as_ref(), |v| {
            if v.is_empty() {
                "no migrations table found".to_owned()
            } else {
                v.iter()
                    .map(|m| {
                        format!(
                            "{} ({}): {}{}, latest {}",
                            m.table,
                            m.framework,
                            m.applied
                                .map_or("current version only".to_owned(), |n| format!(
                                    "{n} applied"
                                )),
                            if m.failed > 0 {
                                format!(", {} FAILED", m.failed)
                            } else {
                                String::new()
                            },
                            m.latest.as_deref().unwrap_or("?")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        }),
    );
    if !f.unreadable.is_empty() {
        let _ = writeln!(
            s,
            "\nCould not read (grant pg_monitor to the role, or read rights on the table):"
        );
        for (fact, why) in &f.unreadable {
            let _ = writeln!(s, "  {fact}: {why}");
        }
    }
    let _ = writeln!(
        s,
        "\nLoad on the database: {} queries, {:.1} ms in total",
        f.load.queries, f.load.total_ms
    );
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_for_people() {
        assert_eq!(super::bytes(39_419_904.0), "37.6 MiB");
        assert_eq!(super::bytes(-8192.0), "-8.0 KiB");
        assert_eq!(super::bytes(12.0), "12.0 B");
    }
}
