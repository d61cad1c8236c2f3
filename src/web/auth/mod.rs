//! Who may see and change what.
//!
//! - **Pages** (the dashboard): with `[[auth.users]]` configured, every page behind
//!   [`require_session_for_pages`] needs a session; without one it answers 303 to `/login`.
//! - **API**: a bearer token (`[[auth.tokens]]`: a missing or unknown one is 401, a read token
//!   on a write route 403) or, with users configured, a session. With neither users nor
//!   tokens, the API is open: opswatch listens on loopback by default, and a non-loopback
//!   listen without any login refuses to start ([`exposure_problem`]).
//! - **State-changing requests** made with a session (forms, or API calls from the dashboard's
//!   scripts) must come from the same origin and carry the session's anti-CSRF token: 403
//!   otherwise. Bearer-token calls need neither (a browser never adds the header on its own).
//! - `/health` is always open; `/metrics` needs a token when tokens are configured, unless
//!   `auth.public_metrics = true`.

mod client;
pub mod login;
pub mod password;
pub mod session;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::LOCATION;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq as _;

pub use client::{client_address, over_https};
pub use session::Session;

use crate::config::{Config, TokenScope};
use crate::daemon::state::AppState;
use crate::web::error::ApiError;

/// Who made a request, for the audit fields (`created_by`): a token's or a user's name.
#[derive(Debug, Clone)]
pub struct Caller(pub String);

/// A configured API token, of which only the SHA-256 is kept.
struct TokenDigest {
    name: String,
    sha256: [u8; 32],
    scope: TokenScope,
}

/// The credentials opswatch checks against, built once from the config.
pub struct Auth {
    tokens: Vec<TokenDigest>,
    /// Bounded argon2 checks for `POST /login`.
    pub passwords: password::PasswordChecker,
}

impl Auth {
    pub fn from_config(config: &Config) -> Self {
        let passwords = password::PasswordChecker::default();
        Self {
            tokens: config
                .auth
                .tokens
                .iter()
                .map(|t| TokenDigest {
                    name: t.name.clone(),
                    sha256: session::sha256(t.token.expose().as_bytes()),
                    scope: t.scope,
                })
                .collect(),
            passwords,
        }
    }

    /// The token whose digest equals the presented one's. Every configured digest is compared
    /// in constant time, so timing reveals neither which nor how much of a token was right.
    fn find_token(&self, presented: &str) -> Option<&TokenDigest> {
        let digest = session::sha256(presented.as_bytes());
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.sha256.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        found
    }
}

/// Why this config must not start: a non-loopback listen (anything but 127.0.0.0/8 and ::1)
/// with neither users nor tokens would show everything to whoever reaches the port.
pub fn exposure_problem(config: &Config) -> Option<String> {
    let listen = config.server.listen;
    let anonymous = config.auth.users.is_empty() && config.auth.tokens.is_empty();
    if listen.ip().to_canonical().is_loopback() || !anonymous || config.auth.allow_anonymous {
        return None;
    }
    Some(format!(
        "refusing to listen on {listen} without any login: add [[auth.users]] (dashboard) or \
         [[auth.tokens]] (API), listen on 127.0.0.1, or set auth.allow_anonymous = true to \
         let anyone who reaches this address see everything"
    ))
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The API's gate: a bearer token, or (with users configured) a session, or nothing when no
/// login is configured at all.
pub async fn require_api_auth(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let writes = changes_state(request.method());
    if let Some(presented) = bearer(&request) {
        let Some(token) = app.auth.find_token(presented) else {
            return ApiError::Unauthorized.into_response();
        };
        if writes && token.scope != TokenScope::Write {
            return ApiError::Forbidden.into_response();
        }
        let caller = Caller(token.name.clone());
        return run_as(request, caller, None, next).await;
    }
    let (parts, body) = request.into_parts();
    if !app.config.auth.users.is_empty() {
        match session::current(&app, &parts).await {
            Ok(Some(s)) => {
                if writes {
                    let token = parts
                        .headers
                        .get(session::CSRF_HEADER)
                        .and_then(|v| v.to_str().ok());
                    if !session::same_origin(&app, &parts)
                        || !token.is_some_and(|t| session::same_secret(t, &s.csrf))
                    {
                        return ApiError::CsrfRefused.into_response();
                    }
                }
                let caller = Caller(s.user.clone());
                return run_as(Request::from_parts(parts, body), caller, Some(s), next).await;
            }
            Ok(None) => {}
            Err(e) => return ApiError::Internal(e).into_response(),
        }
    }
    if app.config.auth.users.is_empty() && app.config.auth.tokens.is_empty() {
        if writes && !session::same_origin(&app, &parts) {
            return ApiError::CsrfRefused.into_response();
        }
        let caller = Caller("anonymous".to_owned());
        return run_as(Request::from_parts(parts, body), caller, None, next).await;
    }
    ApiError::Unauthorized.into_response()
}

async fn run_as(
    mut request: Request,
    caller: Caller,
    session: Option<Session>,
    next: Next,
) -> Response {
    request.extensions_mut().insert(caller);
    if let Some(s) = session {
        request.extensions_mut().insert(s);
    }
    next.run(request).await
}

/// Largest form body the CSRF check reads (dashboard forms are a few fields).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The dashboard's gate: wrap any page router with it (`router.layer(from_fn_with_state(app,
/// require_session_for_pages))`). With users configured, a request without a live session is
/// sent to `/login` (303, with `next` to come back); a state-changing request must be
/// same-origin and carry the session's token in the `csrf` form field or the `X-CSRF-Token`
/// header (403 otherwise). Handlers find the [`Session`] (its `csrf` for their forms) and the
/// [`Caller`] in the request's extensions. Without users every page is open, but a
/// cross-origin POST is still refused.
pub async fn require_session_for_pages(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let writes = changes_state(request.method());
    let (parts, body) = request.into_parts();
    if writes && !session::same_origin(&app, &parts) {
        return forbidden_page();
    }
    if app.config.auth.users.is_empty() {
        let caller = Caller("anonymous".to_owned());
        return run_as(Request::from_parts(parts, body), caller, None, next).await;
    }
    let s = match session::current(&app, &parts).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(&parts),
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    let body = if writes {
        let header = parts
            .headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return forbidden_page();
        };
        let field = form_field(&bytes, session::CSRF_FIELD);
        let presented = header.or(field);
        if !presented.is_some_and(|t| session::same_secret(&t, &s.csrf)) {
            return forbidden_page();
        }
        Body::from(bytes)
    } else {
        body
    };
    let caller = Caller(s.user.clone());
    run_as(Request::from_parts(parts, body), caller, Some(s), next).await
}

/// `field` of an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], field: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == field)
        .map(|(_, v)| v.into_owned())
}

fn forbidden_page() -> Response {
    (
        StatusCode::FORBIDDEN,
        [("content-type", "text/plain; charset=utf-8")],
        "403 Forbidden: this form was not sent from an opswatch page of this session. \
         Reload the page and try again.\n",
    )
        .into_response()
}

fn to_login(parts: &axum::http::request::Parts) -> Response {
    let here = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let location = if here == "/" {
        "/login".to_owned()
    } else {
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        format!("/login?next={next}")
    };
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// `/metrics`' gate: a token (any scope) when tokens are configured, unless
/// `auth.public_metrics = true`.
pub async fn require_metrics_token(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if app.config.auth.tokens.is_empty() || app.config.auth.public_metrics {
        return next.run(request).await;
    }
    match bearer(&request).and_then(|t| app.auth.find_token(t)) {
        Some(_) => next.run(request).await,
        None => ApiError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_digest_only_when_equal() {
        let config = Config::from_toml(
            std::path::Path::new("t.toml"),
            "[[auth.tokens]]\nname = \"r\"\ntoken = \"abc-123\"\n",
        )
        .unwrap();
        let auth = Auth::from_config(&config);
        assert_eq!(
            auth.find_token("abc-123").map(|t| t.name.as_str()),
            Some("r")
        );
        assert!(auth.find_token("abc-124").is_none());
        assert!(auth.find_token("abc-1234").is_none());
        assert!(auth.find_token("").is_none());
    }

    #[test]
    fn only_a_loopback_listen_may_run_without_a_login() {
        let mut c = Config::default();
        assert!(exposure_problem(&c).is_none());
        c.server.listen = "[::1]:7070".parse().unwrap();
        assert!(exposure_problem(&c).is_none());
        c.server.listen = "127.3.0.1:7070".parse().unwrap();
        assert!(exposure_problem(&c).is_none());
        c.server.listen = "0.0.0.0:7070".parse().unwrap();
        assert!(
            exposure_problem(&c)
                .unwrap()
                .contains("auth.allow_anonymous")
        );
        c.auth.allow_anonymous = true;
        assert!(exposure_problem(&c).is_none());
    }
}
