//! `GET /api/v1/status`, `GET /api/v1/checks`, `GET /api/v1/checks/{name}/results` (the newest
//! raw results of the window, and its summary and chart from the roll-up tiers).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::{Value, json};

use super::params::{ApiQuery, WindowParams};
use crate::checks::{Check, CheckKind};
use crate::daemon::state::AppState;
use crate::store::{CheckRow, CheckState, now_ms};
use crate::web::error::ApiError;

#[derive(Serialize)]
struct CheckView {
    name: String,
    kind: CheckKind,
    /// `up`, `down` or `unknown` (not probed yet).
    state: CheckState,
    since_ms: Option<i64>,
    last_result_ms: Option<i64>,
    last_error: Option<String>,
    consecutive_failures: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Value>,
}

fn view(configured: &Configured, row: CheckRow) -> CheckView {
    let target = configured
        .get(&(row.kind, row.name.clone()))
        .map(|check| check.target());
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

/// The configured checks by kind and name.
type Configured = HashMap<(CheckKind, String), Arc<dyn Check>>;

/// The stored checks that are still configured, as the API shows them.
///
/// A check removed from the config keeps its history but is no longer shown as current:
/// otherwise one removed while down would keep the status red forever.
async fn current(app: &AppState) -> Result<Vec<CheckView>, ApiError> {
    let configured: Configured = crate::checks::configured(&app.config)
        .into_iter()
        .map(|c| ((c.kind(), c.name().to_owned()), c))
        .collect();
    Ok(app
        .store
        .list_checks()
        .await?
        .into_iter()
        .filter(|c| configured.contains_key(&(c.kind, c.name.clone())))
        .map(|c| view(&configured, c))
        .collect())
}

pub async fn status(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let checks = current(&app).await?;
    let down = checks
        .iter()
        .filter(|c| c.state == CheckState::Down)
        .count();
    let health = app.health.report(now_ms());
    Ok(Json(json!({
        "status": if down > 0 { "problem" } else { "ok" },
        "checks_down": down,
        "checks": checks,
        "opswatch": health,
    })))
}

pub async fn list(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    let checks = current(&app).await?;
    Ok(Json(json!({ "checks": checks })))
}

pub async fn results(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<Value>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
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
