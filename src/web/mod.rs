//! The HTTP face of opswatch: `/health`, `/metrics`, the JSON API and the dashboard. It only
//! reads: the store and the in-memory state.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
mod health;
mod metrics;
pub mod server;

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
        .merge({
            dashboard::set_host_name(&app.config.host);
            // With [[auth.users]] every page needs a session (303 to /login) and every form
            // its anti-CSRF token; without users they are open, cross-origin posts refused.
            dashboard::pages().layer(axum::middleware::from_fn_with_state(
                app.clone(),
                crate::web::auth::require_session_for_pages,
            ))
        })
        .merge(dashboard::public())
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
    serve_router(app.clone(), router(app), listener, shutdown).await
}

/// [`serve`] for a router already built (`opswatch serve` passes the one that follows reloads,
/// `daemon::reload::Supervisor::router`), with header-read and idle timeouts and a cap on
/// connections below the descriptor limit.
pub async fn serve_router(
    app: AppState,
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max_connections = server::connection_cap(server::current_nofile());
    server::serve(app, router, listener, max_connections, shutdown).await
}
