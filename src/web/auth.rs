//! API bearer tokens. With no `[[auth.tokens]]` configured the API is open (it listens on
//! loopback by default); with tokens, every API request needs one: a missing or unknown token
//! is 401, a read token on a write route 403. `/health` and `/metrics` never need one.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::TokenScope;
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

/// Who made an API request, for the audit fields (`created_by`).
#[derive(Debug, Clone)]
pub struct Caller(pub String);

pub async fn require_token(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let tokens = &app.config.auth.tokens;
    if tokens.is_empty() {
        request
            .extensions_mut()
            .insert(Caller("anonymous".to_owned()));
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented else {
        return ApiError::Unauthorized.into_response();
    };
    let Some(token) = tokens
        .iter()
        .find(|t| constant_time_eq(t.token.expose().as_bytes(), presented.as_bytes()))
    else {
        return ApiError::Unauthorized.into_response();
    };
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if writes && token.scope != TokenScope::Write {
        return ApiError::Forbidden.into_response();
    }
    request.extensions_mut().insert(Caller(token.name.clone()));
    next.run(request).await
}

/// Compares without an early exit, so response timing does not reveal how much of a guessed
/// token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_equal() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
    }
}
