//! The JSON API under `/api/v1/`.

use axum::Router;

use crate::app::AppState;
use crate::web::error::api_not_found;

pub fn routes() -> Router<AppState> {
    Router::new().fallback(api_not_found)
}
