//! Session cookies, their anti-CSRF tokens and the same-origin check.
//!
//! The cookie holds 32 random bytes (hex); the store keeps only their SHA-256, so reading the
//! store does not hand out live sessions. The anti-CSRF token of a session is derived from the
//! cookie's id (`SHA-256("opswatch-csrf" ‖ id)`): bound to that session, unknown to another
//! origin (it cannot read the cookie), and nothing more to store.

use axum::http::HeaderValue;
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::daemon::state::AppState;
use crate::store::now_ms;

pub const SESSION_COOKIE: &str = "opswatch_session";
/// Double-submit token of the login form, before any session exists.
pub const LOGIN_CSRF_COOKIE: &str = "opswatch_login_csrf";
/// Form field carrying the anti-CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Header carrying it for scripts using a session on the API.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// `last_seen_ms` is written at most this often, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// A logged-in operator, put in the request's extensions by the auth layers.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// The token every state-changing form of this session must carry in its `csrf` field.
    pub csrf: String,
    pub(crate) id_sha256: String,
}

/// 32 random bytes, hex.
pub fn new_random_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    hex::encode(bytes)
}

pub fn sha256(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

pub fn csrf_for(session_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"opswatch-csrf");
    h.update(session_id.as_bytes());
    hex::encode(h.finalize())
}

/// Equal, in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    sha256(a.as_bytes()).ct_eq(&sha256(b.as_bytes())).into()
}

/// The value of cookie `name`.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: never readable by scripts, never sent on cross-site requests.
/// `max_age_s = Some(0)` deletes the cookie; `None` makes it last as long as the browser.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age_s: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age_s {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("cookie values are hex")
}

/// Whether a state-changing request comes from a page of opswatch itself. Browsers send
/// `Sec-Fetch-Site` and/or `Origin` on every POST; when they say another site, it is refused.
/// A client that sends neither is not a browser (curl, a script) and cannot be the victim of
/// a cross-site request: the anti-CSRF token still applies to it.
pub fn same_origin(app: &AppState, parts: &Parts) -> bool {
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        // `none`: the operator typed or bookmarked it; not something another site can cause.
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = parts.headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false; // `null` (sandboxed frames, some redirects) or garbage
    };
    let public = app
        .config
        .server
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok());
    if public.is_some_and(|p| p.origin() == origin.origin()) {
        return true;
    }
    // Otherwise the origin must name the host the request was sent to.
    let authority = match (origin.host_str(), origin.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .is_some_and(|host| host.eq_ignore_ascii_case(&authority))
}

/// The session of this request, if its cookie names a live one. Ends (deletes) an expired
/// session it finds.
pub async fn current(app: &AppState, parts: &Parts) -> anyhow::Result<Option<Session>> {
    let Some(id) = cookie(parts, SESSION_COOKIE).filter(|id| id.len() == 64) else {
        return Ok(None);
    };
    let id_sha256 = hex::encode(sha256(id.as_bytes()));
    let Some(row) = app.store.find_session(&id_sha256).await? else {
        return Ok(None);
    };
    let now = now_ms();
    let idle = app.config.auth.session_idle.as_millis_i64();
    let lifetime = app.config.auth.session_lifetime.as_millis_i64();
    let known_user = app
        .config
        .auth
        .users
        .iter()
        .any(|u| u.name == row.user_name);
    if now - row.last_seen_ms >= idle || now - row.created_ms >= lifetime || !known_user {
        app.store.delete_session(&id_sha256).await?;
        return Ok(None);
    }
    if now - row.last_seen_ms >= TOUCH_EVERY_MS {
        app.store.touch_session(&id_sha256, now).await?;
    }
    Ok(Some(Session {
        user: row.user_name,
        csrf: csrf_for(id),
        id_sha256,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_and_flagged() {
        let (parts, ()) = axum::http::Request::builder()
            .header("cookie", "a=1; opswatch_session=abc ;b=2")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(cookie(&parts, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&parts, "c"), None);
        let c = set_cookie(SESSION_COOKIE, "abc", true, None);
        assert_eq!(
            c.to_str().unwrap(),
            "opswatch_session=abc; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert_ne!(csrf_for("a"), csrf_for("b"));
    }
}
