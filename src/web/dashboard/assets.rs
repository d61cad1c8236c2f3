//! The stylesheet and the enhancement script, embedded in the binary and served under a name
//! that carries a hash of their content: a browser may keep them forever (`immutable`), and a
//! new build changes the name.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../../static/dashboard.css");
const JS: &str = include_str!("../../../static/dashboard.js");
const ICON: &str = include_str!("../../../static/favicon.svg");

/// FNV-1a, 64 bits: a cache key for our own files, not a security measure.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const CSS_HASH: u64 = fnv1a(CSS.as_bytes());
const JS_HASH: u64 = fnv1a(JS.as_bytes());
const ICON_HASH: u64 = fnv1a(ICON.as_bytes());

/// `/static/dashboard.<hash>.css`
pub static CSS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/static/dashboard.{CSS_HASH:016x}.css"));
/// `/static/dashboard.<hash>.js`
pub static JS_URL: LazyLock<String> =
    LazyLock::new(|| format!("/static/dashboard.{JS_HASH:016x}.js"));

/// `/static/favicon.<hash>.svg`
pub static ICON_URL: LazyLock<String> =
    LazyLock::new(|| format!("/static/favicon.{ICON_HASH:016x}.svg"));

/// `GET /static/{file}`: only the current names answer; an old hash is a 404 so that a stale
/// page never caches the wrong file under the new name.
pub async fn serve(Path(file): Path<String>) -> Response {
    let path = format!("/static/{file}");
    let (body, kind) = if path == *CSS_URL {
        (CSS, "text/css; charset=utf-8")
    } else if path == *JS_URL {
        (JS, "text/javascript; charset=utf-8")
    } else if path == *ICON_URL {
        (ICON, "image/svg+xml")
    } else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        body,
    )
        .into_response()
}
