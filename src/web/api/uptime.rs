//! `GET /api/v1/checks/{name}/uptime?range=30d`: uptime, latency percentiles and a chart of one
//! check over a chart range (`1h`, `6h`, `24h`, `7d`, `30d`, `90d`, `1y`; default `24h`), served
//! from the raw results while they cover the range and from the hourly roll-ups beyond.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::ApiQuery;
use crate::daemon::state::AppState;
use crate::store::rollups::CHART_RANGES;
use crate::web::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UptimeParams {
    range: Option<String>,
}

pub async fn uptime(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<UptimeParams>,
) -> Result<Json<Value>, ApiError> {
    let range = params.range.as_deref().unwrap_or("24h");
    let span = CHART_RANGES
        .iter()
        .find(|(r, _)| *r == range)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| {
            let all: Vec<&str> = CHART_RANGES.iter().map(|(r, _)| *r).collect();
            ApiError::BadRequest(format!(
                "`range` must be one of {}, not {range:?}",
                all.join(", ")
            ))
        })?;
    let check = app
        .store
        .find_check(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no check named {name:?}")))?;
    let until = app.clock.now_ms() + 1;
    let since = until - span;
    let summary = app.store.check_summary(check.id, since, until).await?;
    let chart = app.store.check_chart(check.id, since, until).await?;
    Ok(Json(json!({
        "check": check.name,
        "range": range,
        "since_ms": since,
        "until_ms": until,
        "summary": summary,
        "chart": chart,
    })))
}
