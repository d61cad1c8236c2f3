//! `GET /login` (the form), `POST /login`, `POST /logout`.
//!
//! The login form carries a double-submit anti-CSRF token (a random value in a `SameSite=Strict`
//! cookie and in a hidden field, which another origin can neither read nor set); after login,
//! forms carry the session's own token ([`super::Session::csrf`]).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::session::{self, CSRF_FIELD, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::daemon::state::AppState;
use crate::store::now_ms;
use crate::web::error::ApiError;

/// Failed logins per user or per client address within [`FAILURE_WINDOW_MS`] before
/// `POST /login` answers 429 (PRODUCT.md).
pub const MAX_FAILURES: i64 = 5;
/// 15 minutes: failures older than this no longer count, so a block lasts 15 minutes from
/// the failure that caused it.
pub const FAILURE_WINDOW_MS: i64 = 15 * 60_000;
/// Failed logins are kept this long for the monthly security report.
const FAILURES_KEPT_MS: i64 = 400 * 86_400_000;
/// A login form is a few short fields.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// Longest user name recorded with a failed login (a name is whatever the client typed).
const MAX_NAME_CHARS: usize = 128;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    name: &'a str,
    error: Option<&'a str>,
}

/// The login routes, to merge into the router beside the pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(form).post(login))
        .route("/logout", post(logout))
}

async fn form(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let next = query
        .as_deref()
        .and_then(|q| field(q.as_bytes(), "next"))
        .unwrap_or_default();
    page(&app, &parts, StatusCode::OK, &next, "", None)
}

/// The form, with a fresh login token in the page and its cookie.
fn page(
    app: &AppState,
    parts: &Parts,
    status: StatusCode,
    next: &str,
    name: &str,
    error: Option<&str>,
) -> Response {
    let csrf = session::new_random_id();
    let html = LoginPage {
        csrf: &csrf,
        next: safe_next(next),
        name,
        error,
    }
    .render();
    let Ok(html) = html else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    };
    let secure = super::over_https(&app.config, parts);
    let mut response = (status, no_store(), Html(html)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        session::set_cookie(LOGIN_CSRF_COOKIE, &csrf, secure, None),
    );
    response
}

fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h
}

/// Where to go after login: only a path on this site (never `//evil.example` or a URL).
fn safe_next(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

fn field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn login(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return page(
            &app,
            &parts,
            StatusCode::PAYLOAD_TOO_LARGE,
            "/",
            "",
            Some("The form is too large."),
        );
    };
    match try_login(&app, &parts, &body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "login failed on the store");
            page(
                &app,
                &parts,
                StatusCode::SERVICE_UNAVAILABLE,
                &field(&body, "next").unwrap_or_default(),
                "",
                Some("opswatch cannot reach its store right now; try again shortly."),
            )
        }
    }
}

async fn try_login(app: &AppState, parts: &Parts, body: &Bytes) -> anyhow::Result<Response> {
    let next = field(body, "next").unwrap_or_default();
    let name: String = field(body, "name")
        .unwrap_or_default()
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let password = field(body, "password").unwrap_or_default();
    let form_token = field(body, CSRF_FIELD).unwrap_or_default();
    let cookie_token = session::cookie(parts, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !session::same_origin(app, parts)
        || cookie_token.is_empty()
        || !session::same_secret(&form_token, cookie_token)
    {
        let error = "The form expired or came from another site. Please log in again.";
        return Ok(page(
            app,
            parts,
            StatusCode::FORBIDDEN,
            &next,
            &name,
            Some(error),
        ));
    }
    if name.is_empty() || password.is_empty() {
        let error = "Enter a name and a password.";
        return Ok(page(
            app,
            parts,
            StatusCode::BAD_REQUEST,
            &next,
            &name,
            Some(error),
        ));
    }
    let address = super::client_address(&app.config, parts);
    let now = now_ms();
    let (by_user, by_address) = app
        .store
        .recent_failed_logins(&name, &address, now - FAILURE_WINDOW_MS)
        .await?;
    if by_user >= MAX_FAILURES || by_address >= MAX_FAILURES {
        tracing::warn!(user = ?name, %address, "login refused: too many failed logins");
        let error = "Too many failed logins. Try again in 15 minutes.";
        let mut response = page(
            app,
            parts,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &name,
            Some(error),
        );
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("900"));
        return Ok(response);
    }
    let phc = app
        .config
        .auth
        .users
        .iter()
        .find(|u| u.name == name)
        .map(|u| u.password_hash.expose());
    if !app.auth.passwords.check(phc, &password).await {
        app.store.record_failed_login(now, &name, &address).await?;
        tracing::warn!(user = ?name, %address, "failed login");
        let error = "Wrong name or password.";
        return Ok(page(
            app,
            parts,
            StatusCode::UNAUTHORIZED,
            &next,
            &name,
            Some(error),
        ));
    }
    let idle = app.config.auth.session_idle.as_millis_i64();
    let lifetime = app.config.auth.session_lifetime.as_millis_i64();
    app.store
        .delete_expired_sessions(now - idle, now - lifetime, now - FAILURES_KEPT_MS)
        .await?;
    let id = session::new_random_id();
    let id_sha256 = hex::encode(session::sha256(id.as_bytes()));
    app.store.insert_session(&id_sha256, &name, now).await?;
    tracing::info!(user = ?name, %address, "login");
    let secure = super::over_https(&app.config, parts);
    let max_age = app.config.auth.session_lifetime.get().as_secs();
    let mut response = (
        StatusCode::SEE_OTHER,
        [(LOCATION, safe_next(&next).to_owned())],
    )
        .into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &id, secure, Some(max_age)),
    );
    headers.append(
        SET_COOKIE,
        session::set_cookie(LOGIN_CSRF_COOKIE, "", secure, Some(0)),
    );
    Ok(response)
}

async fn logout(State(app): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if !session::same_origin(&app, &parts) {
        return (
            StatusCode::FORBIDDEN,
            "403 Forbidden: cross-site logout refused\n",
        )
            .into_response();
    }
    let s = match session::current(&app, &parts).await {
        Ok(s) => s,
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    if let Some(s) = s {
        let Ok(body) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let presented = field(&body, CSRF_FIELD).or_else(|| {
            parts
                .headers
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        if !presented.is_some_and(|t| session::same_secret(&t, &s.csrf)) {
            return (
                StatusCode::FORBIDDEN,
                "403 Forbidden: the logout form carries no valid token\n",
            )
                .into_response();
        }
        if let Err(e) = app.store.delete_session(&s.id_sha256).await {
            return ApiError::Internal(e).into_response();
        }
        tracing::info!(user = ?s.user, "logout");
    }
    let secure = super::over_https(&app.config, &parts);
    (
        StatusCode::SEE_OTHER,
        [
            (LOCATION, HeaderValue::from_static("/login")),
            (
                SET_COOKIE,
                session::set_cookie(SESSION_COOKIE, "", secure, Some(0)),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next("/endpoints/api?range=7d"),
            "/endpoints/api?range=7d"
        );
        for outside in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "",
            "x",
        ] {
            assert_eq!(safe_next(outside), "/", "{outside}");
        }
    }
}
