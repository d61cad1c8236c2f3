//! `GET /api/v1/checks/{name}/uptime?range=30d`: uptime, latency percentiles and a chart of one
//! check over a chart range (`1h`, `6h`, `24h`, `7d`, `30d`, `90d`, `1y`; default `24h`), served
//! from the raw results while they cover the range and from the hourly roll-ups beyond.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use super::params::ApiQuery;
use crate::daemon::state::AppState;
use crate::store::rollups::CHART_RANGES;
use crate::web::error::{ApiError, ApiErrors};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UptimeParams {
    /// `1h`, `6h`, `24h` (default), `7d`, `30d`, `90d` or `1y`.
    #[param(pattern = "^(1h|6h|24h|7d|30d|90d|1y)$")]
    range: Option<String>,
    /// Only this host's facts; an unknown host is 404.
    host: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UptimeAnswer {
    check: String,
    range: String,
    since_ms: i64,
    until_ms: i64,
    /// Uptime and latency percentiles over the range.
    summary: crate::store::rollups::CheckSummary,
    chart: crate::store::rollups::CheckChart,
}

/// Uptime, latency percentiles and a chart of one check over a chart range.
#[utoipa::path(get, path = "/checks/{name}/uptime", operation_id = "get_check_uptime", tag = "checks",
    params(("name" = String, Path, description = "check name"), UptimeParams),
    responses((status = 200, body = UptimeAnswer), ApiErrors))]
pub async fn uptime(
    State(app): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<UptimeParams>,
) -> Result<Json<UptimeAnswer>, ApiError> {
    super::params::check_host(params.host.as_deref())?;
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
    Ok(Json(UptimeAnswer {
        check: check.name,
        range: range.to_owned(),
        since_ms: since,
        until_ms: until,
        summary,
        chart,
    }))
}
