//! `GET`/`HEAD /health` for uptime pingers and load balancers: answered from memory only.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use crate::daemon::state::AppState;
use crate::store::now_ms;

pub async fn health(State(app): State<AppState>) -> impl IntoResponse {
    // A channel with an alert undelivered for 5 minutes shows as failing; opswatch itself
    // stays 200 (PRODUCT.md: 503 is for the store and the scheduler), the heartbeat says /fail.
    let report = app.health.report_at(now_ms(), app.clock.now_ms());
    let status = if report.reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, [("cache-control", "no-store")], Json(report))
}
