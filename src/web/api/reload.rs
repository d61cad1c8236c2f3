//! `POST /api/v1/reload` (write token): re-read the config file, like SIGHUP, and answer what
//! happened. An invalid file is 422 with each problem's file, line, key and reason; the
//! running config stays.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::daemon::reload::Refused;
use crate::daemon::state::AppState;

/// Re-reads the config file (like SIGHUP); an invalid file keeps the running config.
#[utoipa::path(post, path = "/reload", operation_id = "reload_config", tag = "meta",
    responses((status = 200, description = "`reloaded`: whether anything changed", body = Object),
              (status = 422, description = "the new config is invalid: each problem with file, key and reason", body = crate::web::error::ErrorBody),
              crate::web::error::ApiErrors))]
pub async fn reload(State(app): State<AppState>) -> Response {
    match app.reload.request().await {
        Ok(applied) => (StatusCode::OK, Json(json!({ "reloaded": applied }))).into_response(),
        Err(refused) => {
            let (status, code, problems) = match &refused {
                Refused::Invalid(e) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_config",
                    e.problems
                        .iter()
                        .map(|p| {
                            json!({
                                "file": e.file,
                                "line": p.position.map(|(l, _)| l),
                                "column": p.position.map(|(_, c)| c),
                                "key": p.key,
                                "reason": p.reason,
                            })
                        })
                        .collect(),
                ),
                Refused::Failed(_) => (StatusCode::SERVICE_UNAVAILABLE, "reload_failed", vec![]),
                Refused::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "reload_unavailable",
                    vec![],
                ),
            };
            let body = json!({ "error": {
                "code": code,
                "message": format!("the running config stays: {refused}"),
                "problems": problems,
            }});
            (status, Json(body)).into_response()
        }
    }
}
