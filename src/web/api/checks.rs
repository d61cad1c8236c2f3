//! `GET /api/v1/status`, `GET /api/v1/checks`, `GET /api/v1/checks/{name}/results` (the newest
//! raw results of the window, and its summary and chart from the roll-up tiers).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::{Value, json};

use super::params::{ApiQuery, WindowParams};
use crate::config::redact_url;
use crate::daemon::state::AppState;
use crate::store::{CheckRow, now_ms};
use crate::web::error::ApiError;

#[derive(Serialize)]
struct CheckView {
    name: String,
    kind: String,
    /// `up`, `down` or `unknown` (not probed yet).
    state: String,
    since_ms: Option<i64>,
    last_result_ms: Option<i64>,
    last_error: Option<String>,
    consecutive_failures: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Value>,
}

fn view(app: &AppState, row: CheckRow) -> CheckView {
    let target = app
        .config
        .http
        .iter()
        .find(|h| h.name == row.name)
        .map(|h| {
            json!({
                "url": redact_url(&h.url),
                "method": h.method,
                "every": h.every,
                "timeout": h.timeout,
                "failures": h.failures,
            })
        });
    CheckView {
        name: row.name,
        kind: row.kind,
        state: row.state,
        since_ms: row.last_change_ms,
        last_result_ms: row.last_result_ms,
        last_error: row.last_error,
        consecutive_failures: row.consecutive_failures,
        target,
    }
}

/// A check removed from the config keeps its history but is no longer shown as current:
/// otherwise one removed while down would keep the status red forever.
fn configured(app: &AppState, row: &CheckRow) -> bool {
    match row.kind.as_str() {
        "http" => app.config.http.iter().any(|h| h.name == row.name),
        _ => true,
    }
}

pub async fn status(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let checks: Vec<CheckView> = app
        .store
        .list_checks()
        .await?
        .into_iter()
        .filter(|c| configured(&app, c))
        .map(|c| view(&app, c))
        .collect();
    let down = checks.iter().filter(|c| c.state == "down").count();
    let health = app.health.report(now_ms());
    Ok(Json(json!({
        "status": if down > 0 { "problem" } else { "ok" },
        "checks_down": down,
        "checks": checks,
        "opswatch": health,
    })))
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let checks: Vec<CheckView> = app
        .store
        .list_checks()
        .await?
        .into_iter()
        .filter(|c| configured(&app, c))
        .map(|c| view(&app, c))
        .collect();
    Ok(Json(json!({ "checks": checks })))
}

pub async fn results(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<Value>, ApiError> {
    let window = params.parse(now_ms())?;
    let check = app
        .store
        .find_check(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no check named {name:?}")))?;
    let results = app
        .store
        .list_results(check.id, window.since_ms, window.until_ms, window.limit)
        .await?;
    // The whole window, however long, from the raw results or the hourly roll-ups.
    let (since, until) = (window.since_ms, window.until_ms);
    let summary = app.store.check_summary(check.id, since, until).await?;
    let chart = app.store.check_chart(check.id, since, until).await?;
    Ok(Json(json!({
        "check": check.name,
        "since_ms": window.since_ms,
        "until_ms": window.until_ms,
        "results": results,
        "summary": summary,
        "chart": chart,
    })))
}
