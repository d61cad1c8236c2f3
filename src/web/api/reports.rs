//! `GET /api/v1/reports` (newest first) and `GET /api/v1/reports/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::params::{ApiQuery, Cursor, HostParams, WindowParams, check_host, next_page};
use crate::daemon::state::AppState;
use crate::store::{ReportSummary, StoredReport};
use crate::web::error::{ApiError, ApiErrors};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportList {
    since_ms: i64,
    until_ms: i64,
    limit: i64,
    limit_clamped: bool,
    /// URL of the next (older) page: the same window and limit with a `cursor` that resumes
    /// right after this page's last report; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Newest first: id, host, kind, created_ms, summary.
    reports: Vec<ReportSummary>,
}

/// Stored reports, newest first.
#[utoipa::path(get, path = "/reports", operation_id = "list_reports", tag = "reports", params(WindowParams),
    responses((status = 200, body = ReportList), ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<ReportList>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
    let reports = app
        .store
        .list_reports_page(window.since_ms, window.newest_int_key()?, window.limit)
        .await?;
    let last = reports.last().map(|r| Cursor::new(r.created_ms, r.id));
    let next = next_page(
        "/reports",
        &window,
        params.host.as_deref(),
        reports.len(),
        last,
    );
    Ok(Json(ReportList {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        limit: window.limit,
        limit_clamped: window.clamped,
        next,
        reports,
    }))
}

/// One whole report: what was gathered (`body`) and what was sent (`text`).
#[utoipa::path(get, path = "/reports/{id}", operation_id = "get_report", tag = "reports",
    params(("id" = i64, Path, description = "report id"), HostParams),
    responses((status = 200, body = StoredReport), ApiErrors))]
pub async fn one(
    State(app): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<StoredReport>, ApiError> {
    check_host(params.host.as_deref())?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("report id {id:?} is not a number")))?;
    match app.store.find_report(id).await? {
        Some(report) => Ok(Json(report)),
        None => Err(ApiError::NotFound(format!("no report {id}"))),
    }
}
