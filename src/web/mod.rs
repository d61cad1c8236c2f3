//! The HTTP face of opswatch: `/health`, `/metrics`, the JSON API and the dashboard. It only
//! reads: the store and the in-memory state.

pub mod api;
pub mod auth;
pub mod error;
mod health;
mod metrics;

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::daemon::state::AppState;

/// The whole router, ready for `oneshot` in tests or for [`serve`].
pub fn router(app: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route(
            "/metrics",
            get(metrics::metrics).route_layer(axum::middleware::from_fn_with_state(
                app.clone(),
                auth::require_metrics_token,
            )),
        )
        .merge(auth::login::routes())
        .nest("/api/v1", api::routes(&app))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        // A 503 from /health or a 4xx is an answer, not a failure of opswatch; internal errors
        // are logged with their cause where they happen (`ApiError::Internal`).
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(app)
}

/// Serves `app` on an already bound listener until `shutdown` completes, then lets in-flight
/// requests finish.
pub async fn serve(
    app: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds the login rate limit (see `auth::client_address`).
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await
}
