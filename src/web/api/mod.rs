//! The JSON API under `/api/v1/`. One file per resource.
//!
//! Routes are registered through utoipa-axum's `OpenApiRouter`, which adds a handler to the
//! axum router and its `#[utoipa::path]` (parameters, body, answers) to the OpenAPI document
//! in the same call, so `/api/v1/openapi.json` cannot drift from the routes. Adding a route is
//! one line in [`documented`] plus the annotation on its handler. utoipa over aide: utoipa
//! describes a handler next to it with one attribute and needs no change to axum's extractors
//! or router types (aide wants its own `ApiRouter` and `OperationInput` impls on every custom
//! extractor such as `ApiQuery`); utoipa 6 emits OpenAPI 3.1.

mod alerts;
mod checks;
mod disputes;
mod jobs;
mod metrics;
pub mod params;
mod processes;
mod reload;
mod reports;
mod silences;
mod uptime;

use std::sync::LazyLock;

use axum::Router;
use axum::response::IntoResponse;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::daemon::state::AppState;
use crate::web::error::api_not_found;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "opswatch",
        description = "Everything the opswatch dashboard shows, as JSON. Errors are \
            `{\"error\":{\"code\",\"message\"}}`. Times are unix milliseconds, RFC 3339, or a \
            duration meaning that long ago (`24h`)."
    ),
    servers((url = "/api/v1")),
    components(schemas(crate::web::error::ErrorBody, crate::web::error::ErrorDetail)),
    modifiers(&SecuritySchemes),
    security(("bearer" = []), ("session" = []))
)]
struct ApiDoc;

/// The two ways to call the API: a bearer token, or the dashboard's session cookie (then
/// writes also need the session's `X-CSRF-Token`).
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An [[auth.tokens]] token; `read` scope for GET, `write` for the rest.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::web::auth::session::SESSION_COOKIE,
                "The dashboard session from POST /login; writes also need the X-CSRF-Token \
                 header and a same-origin request.",
            ))),
        );
    }
}

/// Every API route that needs a token or a session, with its documentation.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(checks::status))
        .routes(routes!(checks::list))
        .routes(routes!(checks::results))
        .routes(routes!(uptime::uptime))
        .routes(routes!(alerts::list))
        .routes(routes!(processes::list))
        .routes(routes!(reports::list))
        .routes(routes!(reports::one))
        .routes(routes!(metrics::series))
        .routes(routes!(silences::list, silences::create))
        .routes(routes!(silences::expire))
        .routes(routes!(disputes::list, disputes::create))
        .routes(routes!(jobs::list))
        .routes(routes!(reload::reload))
}

/// Routes open to anyone (the document itself).
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The OpenAPI 3.1 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().merge(public()).into_openapi()
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
});

/// This document: every route, parameter, body and answer of the API.
#[utoipa::path(get, path = "/openapi.json", operation_id = "get_openapi", tag = "meta", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    ([("content-type", "application/json")], DOCUMENT.as_str())
}

pub fn routes(app: &AppState) -> Router<AppState> {
    let (guarded, _) = documented().split_for_parts();
    let (open, _) = public().split_for_parts();
    guarded
        .fallback(api_not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::web::auth::require_api_auth,
        ))
        .merge(open)
        .layer(axum::middleware::map_response(
            crate::web::error::json_method_not_allowed,
        ))
}
