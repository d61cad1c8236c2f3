//! `GET /metrics`: the Prometheus text exposition, and the layer that times every request.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::http::{HeaderMap, header};

use crate::daemon::metrics::{Exposition, RouteLabels};
use crate::daemon::state::AppState;

/// Answers in the Prometheus text format 0.0.4 unless the scraper's `Accept` asks for
/// OpenMetrics (see [`Exposition::negotiate`]).
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let format = Exposition::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let now = crate::store::now_ms();
    app.metrics
        .store_up
        .set(i64::from(app.health.store_ok(now)));
    app.metrics
        .scheduler_up
        .set(i64::from(app.health.scheduler_ok(now)));
    // As /health shows them: also down while an alert has waited 5 minutes.
    for (name, channel) in app.health.report_at(now, app.clock.now_ms()).channels {
        app.metrics
            .channel_up
            .get_or_create(&crate::daemon::metrics::ChannelLabels { channel: name })
            .set(i64::from(channel.ok));
    }
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        app.metrics.render(format),
    )
}

/// Records each request's duration labelled by route pattern, never by raw path.
pub async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    app.metrics
        .http_requests
        .get_or_create(&RouteLabels {
            method,
            route,
            status: response.status().as_u16().to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}
