//! The JSON API under `/api/v1/`. One file per resource.

mod alerts;
mod checks;
mod metrics;
pub mod params;
mod processes;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;
use crate::web::error::api_not_found;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(checks::status))
        .route("/checks", get(checks::list))
        .route("/checks/{name}/results", get(checks::results))
        .route("/alerts", get(alerts::list))
        .route("/processes", get(processes::list))
        .route("/metrics/{metric}", get(metrics::series))
        .fallback(api_not_found)
}
