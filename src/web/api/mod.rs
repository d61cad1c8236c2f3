//! The JSON API under `/api/v1/`. One file per resource.

mod alerts;
mod checks;
mod metrics;
pub mod params;
mod processes;
mod reports;
mod silences;
mod uptime;

use axum::Router;
use axum::routing::get;

use crate::daemon::state::AppState;
use crate::web::error::api_not_found;

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route("/status", get(checks::status))
        .route("/checks", get(checks::list))
        .route("/checks/{name}/results", get(checks::results))
        .route("/checks/{name}/uptime", get(uptime::uptime))
        .route("/alerts", get(alerts::list))
        .route("/processes", get(processes::list))
        .route("/reports", get(reports::list))
        .route("/reports/{id}", get(reports::one))
        .route("/metrics/{metric}", get(metrics::series))
        .route("/silences", get(silences::list).post(silences::create))
        .route("/silences/{id}", axum::routing::delete(silences::expire))
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::web::auth::require_api_auth,
        ))
}
