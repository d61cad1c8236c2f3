//! `GET /api/v1/alerts`: the alert log with each alert's delivery state per channel.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::params::{ApiQuery, WindowParams};
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<Value>, ApiError> {
    let window = params.parse(app.clock.now_ms())?;
    let alerts = app
        .store
        .list_alerts(window.since_ms, window.until_ms, window.limit)
        .await?;
    Ok(Json(json!({
        "since_ms": window.since_ms,
        "until_ms": window.until_ms,
        "alerts": alerts,
    })))
}
