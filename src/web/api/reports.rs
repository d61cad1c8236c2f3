//! `GET /api/v1/reports` (newest first) and `GET /api/v1/reports/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::params::{ApiQuery, WindowParams};
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<Value>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
    let reports = app
        .store
        .list_reports(window.since_ms, window.until_ms, window.limit)
        .await?;
    Ok(Json(json!({
        "since_ms": window.since_ms,
        "until_ms": window.until_ms,
        "reports": reports,
    })))
}

pub async fn one(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("report id {id:?} is not a number")))?;
    match app.store.find_report(id).await? {
        Some(report) => Ok(Json(
            serde_json::to_value(report).map_err(anyhow::Error::from)?,
        )),
        None => Err(ApiError::NotFound(format!("no report {id}"))),
    }
}
