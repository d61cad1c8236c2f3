//! `GET /api/v1/processes`: every PM2 app and systemd unit as last seen.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::daemon::state::AppState;

pub async fn list(State(app): State<AppState>) -> Json<Value> {
    let pm2 = app.live.pm2.read().ok().and_then(|r| r.clone());
    let systemd = app.live.systemd.read().ok().and_then(|r| r.clone());
    let pm2_enabled = app
        .config
        .pm2
        .enabled
        .unwrap_or_else(crate::checks::pm2::pm2_on_path);
    Json(json!({
        "pm2": { "enabled": pm2_enabled, "reading": pm2 },
        "systemd": {
            "units": app.config.systemd.units,
            "reading": systemd,
            "failed_units": app.live.systemd_failed.read().map(|f| f.clone()).unwrap_or_default(),
        },
    }))
}
