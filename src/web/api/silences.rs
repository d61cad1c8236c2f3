//! `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{ApiJson, ApiQuery, HostParams, check_host, parse_time};
use crate::config::HumanDuration;
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::NewSilence;
use crate::store::SilenceRow;
use crate::web::auth::Caller;
use crate::web::error::{ApiError, ApiErrors};

/// Longest silence the API accepts: a forgotten silence should not hide alerts for years.
const MAX_SILENCE_MS: i64 = 90 * 86_400_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// Check or source name; a trailing `*` matches a prefix. Left out: any.
    check: Option<String>,
    /// Check kind (`http`, `system`, `pm2`, ...). Left out: any.
    kind: Option<String>,
    /// `critical`, `warning`, `info` or `resolved`. Left out: any.
    severity: Option<String>,
    /// Start (default now): unix ms or RFC 3339.
    starts: Option<String>,
    /// End: unix ms or RFC 3339 ...
    ends: Option<String>,
    /// ... or how long from the start (`2h`).
    duration: Option<String>,
    comment: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SilenceCreated {
    /// id, check_name, kind, severity, starts_ms, ends_ms, comment, created_by, created_ms.
    silence: SilenceRow,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SilenceList {
    /// Silences made through the API that have not ended.
    silences: Vec<SilenceRow>,
    /// `[[silence]]` blocks of the config, with whether each is active now.
    #[schema(value_type = Vec<Object>)]
    configured: Vec<Value>,
}

/// Mutes matching alerts for a while (write scope).
#[utoipa::path(post, path = "/silences", operation_id = "create_silence", tag = "silences", request_body = SilenceRequest,
    responses((status = 201, body = SilenceCreated), ApiErrors))]
pub async fn create(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<SilenceRequest>,
) -> Result<(StatusCode, Json<SilenceCreated>), ApiError> {
    let now = app.clock.now_ms();
    let starts_ms = match &req.starts {
        Some(s) => parse_time("starts", s, now)?,
        None => now,
    };
    let ends_ms = match (&req.ends, &req.duration) {
        (Some(e), None) => parse_time("ends", e, now)?,
        (None, Some(d)) => {
            let d: HumanDuration = d
                .parse()
                .map_err(|e: crate::config::DurationError| ApiError::BadRequest(e.to_string()))?;
            starts_ms + d.as_millis_i64()
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give either `ends` or `duration`".to_owned(),
            ));
        }
    };
    if ends_ms <= starts_ms.max(now) {
        return Err(ApiError::BadRequest(
            "the silence must end in the future and after it starts".to_owned(),
        ));
    }
    if ends_ms - starts_ms > MAX_SILENCE_MS {
        return Err(ApiError::BadRequest(
            "a silence may last at most 90 days".to_owned(),
        ));
    }
    if req.comment.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "`comment` must say why (it is shown with every muted alert)".to_owned(),
        ));
    }
    if let Some(s) = &req.severity
        && s.parse::<Severity>().is_err()
    {
        return Err(ApiError::BadRequest(format!(
            "`severity` must be critical, warning, info or resolved, not {s:?}"
        )));
    }
    let silence = app
        .store
        .create_silence(
            &NewSilence {
                check_name: req.check,
                kind: req.kind,
                severity: req.severity,
                starts_ms,
                ends_ms,
                comment: req.comment,
                created_by: caller.0,
            },
            now,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(SilenceCreated { silence })))
}

/// Current and future silences, and the configured ones.
#[utoipa::path(get, path = "/silences", operation_id = "list_silences", tag = "silences", params(HostParams),
    responses((status = 200, body = SilenceList), ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<SilenceList>, ApiError> {
    check_host(params.host.as_deref())?;
    let now = app.clock.now_ms();
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now)
        .unwrap_or_else(chrono::Utc::now);
    let configured: Vec<Value> = app
        .config
        .silence
        .iter()
        .map(|s| {
            json!({
                "check": s.check, "kind": s.kind, "severity": s.severity, "until": s.until,
                "schedule": s.schedule, "duration": s.duration, "comment": s.comment,
                "active": crate::rules::silence::config_silence_active(s, at),
            })
        })
        .collect();
    let stored = app.store.current_silences(now).await?;
    Ok(Json(SilenceList {
        silences: stored,
        configured,
    }))
}

/// Ends a silence now (write scope).
#[utoipa::path(delete, path = "/silences/{id}", operation_id = "expire_silence", tag = "silences",
    params(("id" = i64, Path, description = "silence id")),
    responses((status = 204, description = "ended"), ApiErrors))]
pub async fn expire(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("silence id must be a number, not {id:?}")))?;
    if app.store.expire_silence(id, app.clock.now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no active silence {id}")))
    }
}
