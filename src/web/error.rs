//! Errors as API clients see them.
//!
//! Policy: a handler returns `Result<_, ApiError>`. Anything the client got wrong is a 4xx
//! with a stable `code` and a message that says what to fix. Anything else is `Internal`: the
//! full error chain goes to the log, the client gets `{"error":{"code":"internal",...}}` and
//! nothing of the cause (it may quote SQL, paths or URLs with credentials).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("missing or unknown API token, and no dashboard session")]
    Unauthorized,
    #[error("this token may only read")]
    Forbidden,
    #[error("a request with a session must come from an opswatch page and carry its X-CSRF-Token")]
    CsrfRefused,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::CsrfRefused => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::CsrfRefused => "csrf",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                "internal error; see the opswatch log".to_owned()
            }
            other => other.to_string(),
        };
        let body = Json(json!({ "error": { "code": self.code(), "message": message } }));
        let mut response = (self.status_code(), body).into_response();
        if matches!(self, Self::Unauthorized) {
            // RFC 6750 §3: a 401 for a bearer-protected resource names the scheme.
            response.headers_mut().insert(
                "www-authenticate",
                "Bearer realm=\"opswatch\"".parse().expect("static header"),
            );
        }
        response
    }
}

/// Answers any unknown path under the API with the JSON error body rather than an empty 404.
pub async fn api_not_found(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiError {
    ApiError::NotFound(format!("no API route {}", uri.path()))
}

/// The shape of every error answer, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "a schema only: answers are built by `ApiError::into_response`"
)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "a schema only")]
pub struct ErrorDetail {
    /// Stable: `bad_request`, `not_found`, `unauthorized`, `forbidden`, `csrf`,
    /// `method_not_allowed`, `internal`.
    code: String,
    /// What was wrong, for a person.
    message: String,
}

/// The error answers every API route may give (for `responses(...)` in `#[utoipa::path]`).
pub struct ApiErrors;

impl utoipa::IntoResponses for ApiErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        [
            ("400", "bad input: the message says what to write instead"),
            ("401", "missing or unknown token, and no session"),
            (
                "403",
                "a read token on a write route, or a session write without the anti-CSRF token",
            ),
            ("404", "no such resource, or an unknown `host`"),
            ("405", "wrong method; `Allow` lists the right ones"),
        ]
        .into_iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build();
            (status.to_owned(), response.into())
        })
        .collect()
    }
}

/// Turns axum's empty 405 (wrong method on a known route) into the API's JSON error, keeping
/// its `Allow` header.
pub async fn json_method_not_allowed(
    response: axum::response::Response,
) -> axum::response::Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return response;
    }
    let allow = response.headers().get(axum::http::header::ALLOW).cloned();
    let message = match allow.as_ref().and_then(|a| a.to_str().ok()) {
        Some(a) => format!("this route answers {a} only"),
        None => "this route does not answer that method".to_owned(),
    };
    let mut json = ApiError::MethodNotAllowed(message).into_response();
    if let Some(a) = allow {
        json.headers_mut().insert(axum::http::header::ALLOW, a);
    }
    json
}
