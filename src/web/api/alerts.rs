//! `GET /api/v1/alerts`: the alert log with each alert's delivery state per channel.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::params::{ApiQuery, Cursor, WindowParams, next_page};
use crate::daemon::state::AppState;
use crate::store::LoggedAlert;
use crate::web::error::{ApiError, ApiErrors};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    since_ms: i64,
    until_ms: i64,
    limit: i64,
    /// True when `limit` was lowered to the maximum.
    limit_clamped: bool,
    /// URL of the next (older) page: the same window and limit with a `cursor` that resumes
    /// right after this page's last alert; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Newest first: the alert (id, severity, source, kind, title, value, threshold, hint,
    /// body, created_ms), whether a silence muted it, and its delivery per channel.
    alerts: Vec<LoggedAlert>,
}

/// The alert log, newest first (by time, then id), with each alert's delivery per channel.
#[utoipa::path(get, path = "/alerts", operation_id = "list_alerts", tag = "alerts", params(WindowParams),
    responses((status = 200, body = AlertList), ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<AlertList>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
    let alerts = app
        .store
        .list_alerts_page(window.since_ms, window.newest_int_key()?, window.limit)
        .await?;
    let last = alerts
        .last()
        .map(|a| Cursor::new(a.alert.created_ms, a.alert.id));
    let next = next_page(
        "/alerts",
        &window,
        params.host.as_deref(),
        alerts.len(),
        last,
    );
    Ok(Json(AlertList {
        since_ms: window.since_ms,
        until_ms: window.until_ms,
        limit: window.limit,
        limit_clamped: window.clamped,
        next,
        alerts,
    }))
}
