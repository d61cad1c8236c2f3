//! `GET /api/v1/status`, `GET /api/v1/checks`, `GET /api/v1/checks/{name}/results` (the newest
//! raw results of the window, and its summary and chart from the roll-up tiers).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;

use super::params::{ApiQuery, Cursor, HostParams, WindowParams, check_host, next_page};
use crate::checks::{Check, CheckKind};
use crate::daemon::health::HealthReport;
use crate::daemon::state::AppState;
use crate::store::rollups::{CheckChart, CheckSummary};
use crate::store::{CheckRow, CheckState, ResultRow, now_ms};
use crate::web::error::{ApiError, ApiErrors};

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckView {
    name: String,
    #[schema(value_type = String)]
    kind: CheckKind,
    /// `up`, `down` or `unknown` (not probed yet).
    #[schema(value_type = String)]
    state: CheckState,
    since_ms: Option<i64>,
    last_result_ms: Option<i64>,
    last_error: Option<String>,
    consecutive_failures: i64,
    /// What is probed and how (an HTTP check's URL with credentials redacted, method, every,
    /// timeout, failures; a TCP check's address).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    target: Option<Value>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusAnswer {
    /// `ok` or `problem` (a check is down).
    status: &'static str,
    checks_down: usize,
    checks: Vec<CheckView>,
    /// opswatch's own health, as `/health` reports it.
    #[schema(value_type = Object)]
    opswatch: HealthReport,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckList {
    checks: Vec<CheckView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ResultsAnswer {
    check: String,
    since_ms: i64,
    until_ms: i64,
    limit: i64,
    limit_clamped: bool,
    /// URL of the next (older) page of `results`: the same window and limit with a `cursor`
    /// that resumes right after this page's last result; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Newest first: at_ms, ok, latency_ms, status_code, error_kind, error, cert_expires_ms.
    results: Vec<ResultRow>,
    /// Uptime and latency over the whole window.
    summary: CheckSummary,
    chart: CheckChart,
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

/// Overall state and every check's state now.
#[utoipa::path(get, path = "/status", operation_id = "get_status", tag = "checks", params(HostParams),
    responses((status = 200, body = StatusAnswer), ApiErrors))]
pub async fn status(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<StatusAnswer>, ApiError> {
    check_host(params.host.as_deref())?;
    let checks = current(&app).await?;
    let down = checks
        .iter()
        .filter(|c| c.state == CheckState::Down)
        .count();
    let health = app.health.report(now_ms());
    Ok(Json(StatusAnswer {
        status: if down > 0 { "problem" } else { "ok" },
        checks_down: down,
        checks,
        opswatch: health,
    }))
}

/// Every configured check with its state.
#[utoipa::path(get, path = "/checks", operation_id = "list_checks", tag = "checks", params(HostParams),
    responses((status = 200, body = CheckList), ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<CheckList>, ApiError> {
    check_host(params.host.as_deref())?;
    let checks = current(&app).await?;
    Ok(Json(CheckList { checks }))
}

/// One check's newest raw results in the window, with the window's summary and chart.
#[utoipa::path(get, path = "/checks/{name}/results", operation_id = "list_check_results", tag = "checks",
    params(("name" = String, Path, description = "check name"), WindowParams),
    responses((status = 200, body = ResultsAnswer), ApiErrors))]
pub async fn results(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<ResultsAnswer>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
    let check = app
        .store
        .find_check(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no check named {name:?}")))?;
    // The page, and the whole window however long (from the raw results or the hourly
    // roll-ups): three independent reads, run at once on the store's readers.
    let (since, until) = (window.since_ms, window.until_ms);
    let (results, summary, chart) = tokio::try_join!(
        app.store.list_results(
            check.id,
            window.since_ms,
            window.end_before_cursor(),
            window.limit,
        ),
        app.store.check_summary(check.id, since, until),
        app.store.check_chart(check.id, since, until),
    )?;
    let path = format!("/checks/{}/results", urlencode_segment(&check.name));
    // One check has one result per millisecond at most: the time alone is the key.
    let last = results.last().map(|r| Cursor::new(r.at_ms, ""));
    let next = next_page(&path, &window, params.host.as_deref(), results.len(), last);
    Ok(Json(ResultsAnswer {
        check: check.name,
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        limit: window.limit,
        limit_clamped: window.clamped,
        next,
        results,
        summary,
        chart,
    }))
}

/// `name` as one path segment.
fn urlencode_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
