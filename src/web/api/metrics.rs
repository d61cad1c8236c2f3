//! `GET /api/v1/metrics/{metric}?range=24h`: chart data of host metrics.
//!
//! `metric` is `disk`, `inodes`, `memory`, `swap`, `load`, `pm2` (every series of that
//! family) or one series by its full name (`disk.used_pct:/`, `pm2.memory_bytes:api#0`).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::params::ApiQuery;
use crate::daemon::state::AppState;
use crate::store::series;
use crate::web::error::{ApiError, ApiErrors};

const FAMILIES: &[(&str, &[&str])] = &[
    ("disk", &[series::DISK_USED_PCT]),
    ("inodes", &[series::DISK_INODE_PCT]),
    ("memory", &[series::MEMORY_USED_PCT]),
    ("swap", &[series::SWAP_USED_PCT]),
    ("load", &[series::LOAD_1, series::LOAD_5, series::LOAD_15]),
    ("pm2", &[series::PM2]),
    ("appdb", &["appdb."]),
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    /// `1h`, `6h`, `24h` (default), `7d`, `30d`, `90d` or `1y`.
    #[param(pattern = "^(1h|6h|24h|7d|30d|90d|1y)$")]
    range: Option<String>,
    /// Only this host's facts; an unknown host is 404.
    host: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SeriesAnswer {
    metric: String,
    range: String,
    since_ms: i64,
    until_ms: i64,
    /// One entry per series: `{"name": ..., "points": ...}`, points from the finest tier that
    /// covers the range.
    #[schema(value_type = Vec<Object>)]
    series: Vec<NamedSeries>,
}

/// Serialized as it is read: a family's answer holds thousands of points, and building a
/// `serde_json::Value` tree of them first cost more than the store reads.
#[derive(Serialize)]
struct NamedSeries {
    name: String,
    points: Vec<crate::store::Point>,
}

/// Chart data of a host metric family (`disk`, `inodes`, `memory`, `swap`, `load`, `pm2`) or
/// of one series by its full name (`disk.used_pct:/`).
#[utoipa::path(get, path = "/metrics/{metric}", operation_id = "get_metric_series", tag = "metrics",
    params(("metric" = String, Path, description = "family or series name"), RangeParams),
    responses((status = 200, body = SeriesAnswer), ApiErrors))]
pub async fn series(
    State(app): State<AppState>,
    Path(metric): Path<String>,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> Result<Json<SeriesAnswer>, ApiError> {
    super::params::check_host(params.host.as_deref())?;
    let range = params.range.as_deref().unwrap_or("24h");
    let span = crate::store::rollups::parse_chart_range(range)
        .map_err(|why| ApiError::BadRequest(format!("`range` {why}")))?;
    let names = match FAMILIES.iter().find(|(f, _)| *f == metric) {
        Some((_, prefixes)) => {
            let mut names = Vec::new();
            for prefix in *prefixes {
                // `disk.used_pct:` names a family of series; `load.1` exactly one.
                let family = prefix.ends_with([':', '.']);
                names.extend(
                    app.store
                        .list_series(prefix)
                        .await?
                        .into_iter()
                        .filter(|n| family || n == prefix),
                );
            }
            names
        }
        None => {
            let exists = app.store.list_series(&metric).await?.contains(&metric);
            if !exists {
                return Err(ApiError::NotFound(format!(
                    "no metric {metric:?}: use disk, inodes, memory, swap, load, pm2 or a series name"
                )));
            }
            vec![metric.clone()]
        }
    };
    let until = app.clock.now_ms() + 1;
    let since = until - span;
    // A family can hold dozens of series (PM2: three per process).
    let series = app
        .store
        .query_many_series(names, since, until)
        .await?
        .into_iter()
        .map(|(name, points)| NamedSeries { name, points })
        .collect();
    Ok(Json(SeriesAnswer {
        metric,
        range: range.to_owned(),
        since_ms: since,
        until_ms: until,
        series,
    }))
}
