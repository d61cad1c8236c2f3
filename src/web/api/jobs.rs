//! `GET /api/v1/jobs`: every scheduled job of this instance with its schedule, its last run
//! (start, end, outcome, error) and its next run. The last run comes from memory (this
//! process's runs) or else from the store (the runs of an earlier process).

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
    let board = app.jobs.list();
    // This process's runs are in memory (interval runs are not all stored); the store has
    // the runs of earlier processes, for a job that has not run since.
    let stored = if board.iter().any(|j| j.last_run.is_none()) {
        app.store.latest_job_runs(&host).await?
    } else {
        Vec::new()
    };
    let jobs: Vec<Value> = board
        .into_iter()
        .map(|j| {
            let run = match &j.last_run {
                Some(r) => Some(json!({
                    "started_ms": r.started_ms,
                    "finished_ms": r.finished_ms,
                    "occurrence_ms": r.occurrence_ms,
                    "outcome": r.outcome,
                    "error": r.error,
                })),
                None => stored.iter().find(|r| r.job == j.name).map(|r| {
                    json!({
                        "started_ms": r.started_ms,
                        "finished_ms": r.finished_ms,
                        "occurrence_ms": r.occurrence_ms,
                        "outcome": r.outcome,
                        "error": r.error,
                    })
                }),
            };
            json!({
                "name": j.name,
                "schedule": j.schedule,
                "running": j.running,
                "next_run_ms": j.next_run_ms,
                "consecutive_failures": j.consecutive_failures,
                "last_outcome": run.as_ref().map(|r| r["outcome"].clone()),
                "last_run": run,
            })
        })
        .collect();
    Ok(Json(json!({ "host": host, "jobs": jobs })))
}
