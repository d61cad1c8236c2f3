//! `VACUUM (ANALYZE)` of the app's database: on `[vacuum] schedule` once enabled, and from
//! `opswatch db vacuum` whatever `enabled` says.
//!
//! Table by table, each statement alone on an autocommit connection (VACUUM cannot run inside
//! a transaction block, nor in a multi-statement string), never FULL (which would lock the
//! table against every reader and writer), with `lock_timeout` so a table the app holds is
//! skipped rather than waited for, and `statement_timeout` per table. Tables this role may not
//! vacuum (not owner) are skipped with a note instead of the server's per-table WARNING.
//! Plain VACUUM does not give disk space back (only trailing empty pages): the report speaks
//! of dead tuples removed, not of space freed.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Executor as _;
use sqlx::postgres::PgConnection;

use crate::checks::app_db::{self, AppDbError, quote_ident, reason};
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{NewAlert, NewReport, now_ms};

/// One table before and after.
#[derive(Debug, Clone, Serialize)]
pub struct TableRun {
    pub table: String,
    pub size_before: i64,
    pub size_after: Option<i64>,
    pub dead_before: i64,
    pub dead_after: Option<i64>,
    pub duration_ms: Option<f64>,
    /// Why it was skipped or failed; `None` when vacuumed.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    pub database: String,
    pub tables: Vec<TableRun>,
    pub duration_ms: f64,
}

impl VacuumReport {
    fn vacuumed(&self) -> impl Iterator<Item = &TableRun> {
        self.tables.iter().filter(|t| t.note.is_none())
    }

    pub fn summary(&self) -> String {
        let done = self.vacuumed().count();
        let skipped = self.tables.len() - done;
        let before: i64 = self.vacuumed().map(|t| t.dead_before).sum();
        let after: i64 = self.vacuumed().filter_map(|t| t.dead_after).sum();
        format!(
            "{}: {done} table(s) vacuumed, {skipped} skipped; dead tuples {before} → {after} in {:.1} s",
            self.database,
            self.duration_ms / 1000.0
        )
    }

    /// The before/after table as text, the tables with the most dead tuples first.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!("VACUUM (ANALYZE) {}\n\n", self.summary());
        let _ = writeln!(
            s,
            "{:<40} {:>12} {:>12} {:>11} {:>11} {:>9}",
            "table", "dead before", "dead after", "size before", "size after", "time"
        );
        let mut done: Vec<&TableRun> = self.vacuumed().collect();
        done.sort_by_key(|t| std::cmp::Reverse(t.dead_before));
        for t in done {
            let _ = writeln!(
                s,
                "{:<40} {:>12} {:>12} {:>11} {:>11} {:>7.0}ms",
                t.table,
                t.dead_before,
                t.dead_after.map_or("?".to_owned(), |d| d.to_string()),
                mib(t.size_before),
                t.size_after.map_or("?".to_owned(), mib),
                t.duration_ms.unwrap_or_default()
            );
        }
        let skipped: Vec<&TableRun> = self.tables.iter().filter(|t| t.note.is_some()).collect();
        if !skipped.is_empty() {
            let _ = writeln!(s, "\nSkipped:");
            for t in skipped {
                let _ = writeln!(
                    s,
                    "  {}: {}",
                    t.table,
                    t.note.as_deref().unwrap_or_default()
                );
            }
        }
        s.push_str(
            "\nPlain VACUUM makes the space of dead tuples reusable; it does not shrink the files.\n",
        );
        s
    }
}

fn mib(b: i64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

#[derive(sqlx::FromRow)]
struct TableStat {
    oid: i64,
    schema: String,
    relname: String,
    dead: i64,
    may_vacuum: bool,
}

/// Size of one table with its indexes and TOAST. Takes a light lock on the table, so under
/// `lock_timeout` it fails (rather than waits) when the app holds the table.
const SIZE_SQL: &str = "SELECT pg_total_relation_size($1::int8::oid::regclass)::int8";

/// Tables of the database (catalog and statistics only: no lock on any table) with their dead
/// tuples, and whether this role may vacuum
/// them (superuser, member of the owning role or of the database owner; from PG 17 also the
/// MAINTAIN privilege).
const TABLES_SQL: &str = "SELECT c.oid::int8 AS oid, \
     n.nspname::text AS schema, c.relname::text AS relname, \
     coalesce(s.n_dead_tup, 0)::int8 AS dead, \
     ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
       OR pg_has_role(c.relowner, 'MEMBER') \
       OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'MEMBER') \
       OR (current_setting('server_version_num')::int >= 170000 \
           AND has_table_privilege(c.oid, 'MAINTAIN'))) AS may_vacuum \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid \
     WHERE c.relkind IN ('r', 'm') \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
       AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
     ORDER BY 2, 3";

/// Runs the VACUUM now and returns its report (not yet stored).
pub async fn vacuum(app: &AppState) -> Result<VacuumReport, AppDbError> {
    let db = app
        .config
        .database
        .as_ref()
        .ok_or_else(|| AppDbError::Unreachable("no [database] url in the config".to_owned()))?;
    let cfg = &app.config.vacuum;
    let started = Instant::now();
    let mut conn = app_db::connect(db.url.expose(), cfg.statement_timeout.get()).await?;
    let result = run_tables(&mut conn, cfg.lock_timeout.get()).await;
    app_db::close(conn).await;
    let (database, tables) = result?;
    Ok(VacuumReport {
        database,
        tables,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    })
}

async fn run_tables(
    conn: &mut PgConnection,
    lock_timeout: std::time::Duration,
) -> Result<(String, Vec<TableRun>), AppDbError> {
    let q = |e: sqlx::Error| app_db::query_error(&e);
    let set = format!("SET lock_timeout = {}", lock_timeout.as_millis().max(1));
    conn.execute(set.as_str()).await.map_err(q)?;
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(q)?;
    let before: Vec<TableStat> = sqlx::query_as(TABLES_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(q)?;
    let mut runs = Vec::with_capacity(before.len());
    for t in &before {
        let size: Result<i64, sqlx::Error> = sqlx::query_scalar(SIZE_SQL)
            .bind(t.oid)
            .fetch_one(&mut *conn)
            .await;
        let mut run = TableRun {
            table: format!("{}.{}", t.schema, t.relname),
            size_before: *size.as_ref().unwrap_or(&0),
            size_after: None,
            dead_before: t.dead,
            dead_after: None,
            duration_ms: None,
            note: None,
        };
        if !t.may_vacuum {
            run.note =
                Some("skipped: only the table's or the database's owner may vacuum it".to_owned());
            runs.push(run);
            continue;
        }
        if let Err(e) = size {
            run.note = Some(skip_note(&e, lock_timeout));
            if matches!(e, sqlx::Error::Io(_) | sqlx::Error::Tls(_)) {
                return Err(q(e));
            }
            runs.push(run);
            continue;
        }
        // Alone, outside any transaction; each part of the name quoted (it cannot be a
        // parameter).
        let sql = format!(
            "VACUUM (ANALYZE) {}.{}",
            quote_ident(&t.schema),
            quote_ident(&t.relname)
        );
        let took = Instant::now();
        match conn.execute(sql.as_str()).await {
            Ok(_) => run.duration_ms = Some(took.elapsed().as_secs_f64() * 1000.0),
            Err(e @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_))) => return Err(q(e)),
            Err(e) => run.note = Some(skip_note(&e, lock_timeout)),
        }
        runs.push(run);
    }
    // Statistics reach the shared view within a second; PG 15+ can flush them now.
    let _ = conn.execute("SELECT pg_stat_force_next_flush()").await;
    let after: Vec<TableStat> = sqlx::query_as(TABLES_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(q)?;
    for (run, t) in runs.iter_mut().zip(&before) {
        if run.note.is_some() {
            continue;
        }
        run.dead_after = after.iter().find(|a| a.oid == t.oid).map(|a| a.dead);
        run.size_after = sqlx::query_scalar(SIZE_SQL)
            .bind(t.oid)
            .fetch_one(&mut *conn)
            .await
            .ok();
    }
    Ok((database, runs))
}

/// Why a table was left alone, in the operator's words.
fn skip_note(e: &sqlx::Error, lock_timeout: std::time::Duration) -> String {
    let why = reason(e);
    if why.contains("lock timeout") {
        format!(
            "skipped: the app held a lock longer than {}s",
            lock_timeout.as_secs_f64()
        )
    } else if why.contains("statement timeout") {
        "stopped: it took longer than [vacuum] statement_timeout".to_owned()
    } else {
        format!("failed: {why}")
    }
}

/// Stores the report and sends it as one message.
pub async fn store_and_send(
    app: &AppState,
    report: &VacuumReport,
    occurrence_ms: Option<i64>,
) -> anyhow::Result<Option<i64>> {
    let now = now_ms();
    let text = report.text();
    let summary = report.summary();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let Some(id) = app
        .store
        .insert_report(&NewReport {
            host: &host,
            kind: "vacuum",
            created_ms: now,
            occurrence_ms,
            summary: &summary,
            body: &json!(report),
            text: &text,
        })
        .await?
    else {
        return Ok(None);
    };
    let mut top: Vec<&TableRun> = report.vacuumed().filter(|t| t.dead_before > 0).collect();
    top.sort_by_key(|t| std::cmp::Reverse(t.dead_before));
    let mut lines: Vec<String> = top
        .iter()
        .take(10)
        .map(|t| {
            format!(
                "{}: dead {} → {}, {}, {:.0} ms",
                t.table,
                t.dead_before,
                t.dead_after.map_or("?".to_owned(), |d| d.to_string()),
                mib(t.size_after.unwrap_or(t.size_before)),
                t.duration_ms.unwrap_or_default()
            )
        })
        .collect();
    let skipped = report.tables.iter().filter(|t| t.note.is_some()).count();
    if skipped > 0 {
        lines.push(format!("{skipped} table(s) skipped (see the report)"));
    }
    let alert = NewAlert {
        dedup_key: match occurrence_ms {
            Some(o) => format!("report:vacuum:{o}"),
            None => format!("report:vacuum:manual:{id}"),
        },
        severity: Severity::Info,
        source: "appdb".to_owned(),
        kind: "report".to_owned(),
        title: format!("VACUUM (ANALYZE) {summary}"),
        value: None,
        threshold: None,
        hint: Some(format!(
            "Full table: GET /api/v1/reports/{id} or the dashboard."
        )),
        body: Some(lines.join("\n")).filter(|b| !b.is_empty()),
        silenced: false,
    };
    if app
        .store
        .record_alert(&alert, &app.channels, now)
        .await?
        .is_some()
    {
        app.wake_dispatcher();
    }
    Ok(Some(id))
}

/// The scheduled run (registered only when `[vacuum] enabled`).
pub async fn scheduled(app: AppState) -> anyhow::Result<()> {
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms()).unwrap_or_else(Utc::now);
    let occurrence = app
        .config
        .vacuum
        .schedule
        .last_at_or_before(now)
        .map(|t| t.timestamp_millis());
    let report = vacuum(&app).await?;
    store_and_send(&app, &report, occurrence).await?;
    Ok(())
}
