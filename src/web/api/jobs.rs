//! `GET /api/v1/jobs`: every scheduled job of this instance with its schedule, its last run
//! (start, end, outcome, error) and its next run.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::params::{ApiQuery, HostParams, check_host};
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

/// Every scheduled job: its schedule, last run, last outcome and next run.
#[utoipa::path(get, path = "/jobs", operation_id = "list_jobs", tag = "jobs",
    params(HostParams),
    responses((status = 200, description = "`jobs`: name, schedule, last run, outcome, next run", body = Object), crate::web::error::ApiErrors))]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(params): ApiQuery<HostParams>,
) -> Result<Json<Value>, ApiError> {
    check_host(params.host.as_deref())?;
    let host = crate::reports::this_host();
    let last = app.store.latest_job_runs(&host).await?;
    let jobs: Vec<Value> = app
        .jobs
        .list()
        .into_iter()
        .map(|j| {
            let run = last.iter().find(|r| r.job == j.name);
            json!({
                "name": j.name,
                "schedule": j.schedule,
                "running": j.running,
                "next_run_ms": j.next_run_ms,
                "consecutive_failures": j.consecutive_failures,
                "last_run": run.map(|r| json!({
                    "started_ms": r.started_ms,
                    "finished_ms": r.finished_ms,
                    "occurrence_ms": r.occurrence_ms,
                    "outcome": r.outcome,
                    "error": r.error,
                })),
                "last_outcome": run.map(|r| r.outcome.clone()),
            })
        })
        .collect();
    Ok(Json(json!({ "host": host, "jobs": jobs })))
}
