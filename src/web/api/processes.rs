//! `GET /api/v1/processes`: every PM2 app and systemd unit as last seen.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::params::{ApiQuery, HostParams, check_host};
use crate::daemon::state::AppState;
use crate::web::error::{ApiError, ApiErrors};

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ProcessesAnswer {
    /// `{"enabled": bool, "reading": {...} | null}`: the last `pm2 jlist` reading.
    #[schema(value_type = Object)]
    pm2: Value,
    /// `{"units": [...], "reading": {...} | null, "failed_units": [...]}`.
    #[schema(value_type = Object)]
    systemd: Value,
}

/// Every PM2 app and systemd unit as last seen.
#[utoipa::path(get, path = "/processes", operation_id = "list_processes", tag = "processes", params(HostParams),
    responses((status = 200, body = ProcessesAnswer), ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<ProcessesAnswer>, ApiError> {
    check_host(params.host.as_deref())?;
    let pm2 = app.live.pm2.read().ok().and_then(|r| r.clone());
    let systemd = app.live.systemd.read().ok().and_then(|r| r.clone());
    let pm2_enabled = app
        .config
        .pm2
        .enabled
        .unwrap_or_else(crate::checks::pm2::pm2_on_path);
    Ok(Json(ProcessesAnswer {
        pm2: json!({ "enabled": pm2_enabled, "reading": pm2 }),
        systemd: json!({
            "units": app.config.systemd.units,
            "reading": systemd,
            "failed_units": app.live.systemd_failed.read().map(|f| f.clone()).unwrap_or_default(),
        }),
    }))
}
