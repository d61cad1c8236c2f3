//! Disputes: the SQL source on `[disputes] every` (first run at start) and the recording shared
//! with the HTTP source (`POST /api/v1/disputes`).
//!
//! A failing query (table renamed, permission revoked, database down) is one CRITICAL with the
//! database's message while it lasts, and one RESOLVED when it works again, never an alert per
//! run; the cursor stays where it was, so no dispute is lost meanwhile.

use std::time::Duration;

use serde_json::Value;

use crate::checks::app_db::{self, AppDbError};
use crate::checks::disputes::{Cursor, FoundDispute, SqlSource};
use crate::daemon::state::AppState;
use crate::rules::condition::{Assessment, Level};
use crate::store::{NewDispute, now_ms};

/// The store's cursor of the SQL source.
pub const CURSOR: &str = "disputes:sql";
/// Pages one run reads at most (a burst bigger than this continues on the next run).
const MAX_PAGES_PER_RUN: usize = 100;
/// Pages the first run walks to find the current maximum before it gives up and starts there.
const MAX_BASELINE_PAGES: usize = 100_000;

/// Why a run of the SQL source failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Db(#[from] AppDbError),
    /// opswatch's own store failed: nothing was recorded, the cursor did not move.
    #[error("{0:#}")]
    Store(#[from] anyhow::Error),
}

/// Reads the SQL source once, records and alerts every new dispute, and raises or clears the
/// "query fails" CRITICAL. Returns the new disputes. Does nothing without `[disputes] query`.
pub async fn check_sql(app: &AppState) -> Result<Vec<FoundDispute>, RunError> {
    let (Some(cfg), Some(db)) = (&app.config.disputes, &app.config.database) else {
        return Ok(Vec::new());
    };
    let Some(query) = &cfg.query else {
        return Ok(Vec::new());
    };
    let source = SqlSource::new(query);
    let outcome = read_new(
        app,
        &source,
        db.url.expose(),
        db.statement_timeout.get(),
        cfg.backfill,
    )
    .await;
    let failure = match &outcome {
        Err(RunError::Db(e)) => Some(e.to_string()),
        _ => None,
    };
    crate::rules::condition::apply(app, query_assessment(failure.as_deref()), now_ms()).await?;
    outcome
}

/// Records a dispute posted to the API; true when its id was new (and it alerts).
pub async fn record_posted(
    app: &AppState,
    id: &str,
    fields: Vec<(String, Value)>,
) -> anyhow::Result<bool> {
    let object: serde_json::Map<String, Value> = fields.iter().cloned().collect();
    let dispute = NewDispute {
        id: id.to_owned(),
        source: "http",
        alert: crate::rules::disputes::alert(id, &fields),
        fields: Value::Object(object),
    };
    let fresh = app
        .store
        .record_disputes(&[dispute], None, &app.channels, now_ms())
        .await?;
    let new = fresh.first().copied().unwrap_or(false);
    if new {
        tracing::info!(dispute = %id, source = "http", "new dispute");
        app.wake_dispatcher();
    }
    Ok(new)
}

async fn read_new(
    app: &AppState,
    source: &SqlSource,
    url: &str,
    statement_timeout: Duration,
    backfill: bool,
) -> Result<Vec<FoundDispute>, RunError> {
    let saved = app.store.find_cursor(CURSOR).await?;
    let mut conn = app_db::connect(url, statement_timeout).await?;
    let result = async {
        let mut after = match saved.as_deref().and_then(Cursor::decode) {
            Some(c) => c,
            None if backfill => Cursor::Start,
            None => {
                let start = current_max(&mut conn, source).await?;
                tracing::info!(cursor = %start, "disputes: first run, starting after the existing rows");
                app.store.set_cursor(CURSOR, &start.encode(), now_ms()).await?;
                return Ok(Vec::new());
            }
        };
        let mut new = Vec::new();
        for _ in 0..MAX_PAGES_PER_RUN {
            let page = source.fetch(&mut conn, &after).await?;
            if page.disputes.is_empty() {
                break;
            }
            let disputes: Vec<NewDispute> = page
                .disputes
                .iter()
                .map(|d| NewDispute {
                    id: d.id.clone(),
                    source: "sql",
                    fields: Value::Object(d.fields.iter().cloned().collect()),
                    alert: crate::rules::disputes::alert(&d.id, &d.fields),
                })
                .collect();
            let fresh = app
                .store
                .record_disputes(&disputes, Some((CURSOR, &page.next.encode())), &app.channels, now_ms())
                .await?;
            for (d, is_new) in page.disputes.into_iter().zip(fresh) {
                if is_new {
                    tracing::info!(dispute = %d.id, source = "sql", "new dispute");
                    new.push(d);
                }
            }
            if page.next == after {
                break;
            }
            after = page.next;
        }
        if !new.is_empty() {
            app.wake_dispatcher();
        }
        Ok(new)
    }
    .await;
    app_db::close(conn).await;
    result
}

/// The cursor after every row the query returns now, page by page (the query may have a
/// LIMIT); `Start` when it returns none.
async fn current_max(
    conn: &mut sqlx::PgConnection,
    source: &SqlSource,
) -> Result<Cursor, AppDbError> {
    let mut after = Cursor::Start;
    for _ in 0..MAX_BASELINE_PAGES {
        let page = source.fetch(conn, &after).await?;
        if page.disputes.is_empty() || page.next == after {
            break;
        }
        after = page.next;
    }
    Ok(after)
}

fn query_assessment(failure: Option<&str>) -> Assessment {
    Assessment {
        key: "disputes:query".to_owned(),
        source: "disputes".to_owned(),
        kind: "disputes",
        level: if failure.is_some() {
            Level::Critical
        } else {
            Level::Ok
        },
        value: if failure.is_some() { 1.0 } else { 0.0 },
        unit: "",
        title: "Disputes cannot be read from the app's database".to_owned(),
        value_text: failure.unwrap_or("the query runs").to_owned(),
        threshold_text: "the [disputes] query must run".to_owned(),
        hint: "Fix the query, the table or the grant (was a table renamed, a permission \
               revoked?). No dispute is lost: the cursor waits where it was."
            .to_owned(),
        body: None,
        resolved_title: "Disputes are read from the app's database again".to_owned(),
    }
}
