//! `GET /api/v1/disputes` (newest first, `since`/`until`/`limit`) and `POST /api/v1/disputes`,
//! the HTTP source: the app posts a JSON object with an `id` (string or integer) and any other
//! fields; 201 when the id is new (a DISPUTE alert goes out), 200 when it was already known
//! (from either source: no second alert), 400 for any other body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::params::{ApiQuery, Cursor, WindowParams, next_page};
use crate::checks::disputes::id_text;
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

/// Longest id accepted: an id is a key, not a document.
const MAX_ID_CHARS: usize = 200;

/// The app's disputes (from the SQL source and from POSTs), newest first.
#[utoipa::path(get, path = "/disputes", operation_id = "list_disputes", tag = "disputes", params(WindowParams),
    responses((status = 200, description = "`since_ms`, `until_ms`, `limit`, `limit_clamped`, `next` (URL of the next, older page, with a `cursor`; absent on the last page) and `disputes`: id, source, fields, created_ms, alert_id", body = Object), crate::web::error::ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<WindowParams>,
) -> Result<Json<Value>, ApiError> {
    let all_time = params.since.is_none();
    let mut window = params.parse(app.clock.now_ms())?;
    // Unlike metrics, a dispute list without `since` means every dispute (up to `limit`).
    if all_time {
        window.since_ms = 0;
    }
    let disputes = app
        .store
        .list_disputes_page(window.since_ms, window.newest_text_key(), window.limit)
        .await?;
    let last = disputes.last().map(|d| Cursor::new(d.created_ms, &d.id));
    let next = next_page(
        "/disputes",
        &window,
        params.host.as_deref(),
        disputes.len(),
        last,
    );
    let mut answer = json!({
        "since_ms": window.since_ms,
        "until_ms": window.until_ms,
        "limit": window.limit,
        "limit_clamped": window.clamped,
        "disputes": disputes,
    });
    if let Some(next) = next {
        answer["next"] = next.into();
    }
    Ok(Json(answer))
}

/// The body is read as bytes and parsed here, so that every malformed body (not JSON, no
/// content type, not an object, no usable id) is the API's JSON 400.
/// Records a dispute posted by the app (idempotent on its `id`) and alerts it once.
#[utoipa::path(post, path = "/disputes", operation_id = "create_dispute", tag = "disputes",
    request_body(content = Object, description = "a JSON object with `id` (string or integer) and any other fields", content_type = "application/json"),
    responses((status = 201, description = "a new dispute: alerted", body = Object),
              (status = 200, description = "already known: not alerted again", body = Object),
              crate::web::error::ApiErrors))]
pub async fn create(
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (id, fields) = parse_body(&body)?;
    let new = crate::jobs::disputes::record_posted(&app, &id, fields).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "id": id, "new": new }))))
}

fn parse_body(body: &[u8]) -> Result<(String, Vec<(String, Value)>), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object with an \"id\"".to_owned(),
        ));
    };
    let id = map.get("id").and_then(id_text).ok_or_else(|| {
        ApiError::BadRequest("\"id\" must be a non-empty string or an integer".to_owned())
    })?;
    if id.chars().count() > MAX_ID_CHARS {
        return Err(ApiError::BadRequest(format!(
            "\"id\" is longer than {MAX_ID_CHARS} characters"
        )));
    }
    Ok((id, map.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_with_an_id_are_disputes() {
        let (id, fields) = parse_body(br#"{"id": 42, "amount": "9.90"}"#).unwrap();
        assert_eq!(id, "42");
        assert_eq!(fields.len(), 2);
        assert_eq!(parse_body(br#"{"id":"D-1"}"#).unwrap().0, "D-1");
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            b"{}",
            br#"{"id": null}"#,
            br#"{"id": 1.5}"#,
            br#"{"id": ""}"#,
            br#"{"id": {"a": 1}}"#,
        ] {
            assert!(
                matches!(parse_body(bad), Err(ApiError::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
