//! Query parameters shared by the API routes, parsed so that bad input is a 400 that says
//! what to write instead.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::config::HumanDuration;
use crate::web::error::ApiError;

/// `Query<T>` whose rejection is the API's JSON 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `Json<T>` whose rejection (bad JSON, wrong content type, unknown field) is the API's 400.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `since`, `until`, `limit` (and `host`) as written by a client.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WindowParams {
    /// Start of the window (inclusive): unix ms, RFC 3339, or a duration ago (`24h`).
    /// Default: 24 hours before `until`.
    pub since: Option<String>,
    /// End of the window (exclusive), same forms. Default: now.
    pub until: Option<String>,
    /// Rows per answer, 1 to 1000 (default 100); more is clamped to 1000 and the answer
    /// says so (`limit_clamped`).
    #[param(pattern = "^[0-9]+$")]
    pub limit: Option<String>,
    /// Only this host's facts; an unknown host is 404.
    pub host: Option<String>,
}

/// `?host=` alone, for routes without other parameters.
#[derive(Debug, Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HostParams {
    /// Only this host's facts; an unknown host is 404.
    pub host: Option<String>,
}

pub const MAX_LIMIT: i64 = 1000;

/// A validated `[since, until)` window and row limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_ms: i64,
    pub until_ms: i64,
    pub limit: i64,
    /// The client asked for more than [`MAX_LIMIT`] rows and got `limit`.
    pub clamped: bool,
}

/// This instance's host name: the `host` a fact carries. The configured top-level `host`
/// replaces it when that key lands (a concurrent issue); until then the machine's hostname.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// `Ok` when `host` is absent or names a host this store knows; 404 otherwise.
pub fn check_host(host: Option<&str>) -> Result<(), ApiError> {
    match host {
        None => Ok(()),
        Some(h) if h == this_host() => Ok(()),
        Some(h) => Err(ApiError::NotFound(format!("no host named {h:?}"))),
    }
}

impl WindowParams {
    /// Defaults: the last 24 hours, 100 rows.
    pub fn parse(&self, now_ms: i64) -> Result<Window, ApiError> {
        let until_ms = match &self.until {
            Some(v) => parse_time("until", v, now_ms)?,
            None => now_ms + 1,
        };
        let since_ms = match &self.since {
            Some(v) => parse_time("since", v, now_ms)?,
            None => until_ms - 86_400_000,
        };
        if since_ms >= until_ms {
            return Err(ApiError::BadRequest(
                "`since` must be before `until`".to_owned(),
            ));
        }
        check_host(self.host.as_deref())?;
        let (limit, clamped) = match &self.limit {
            None => (100, false),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => (n, false),
                Ok(n) if n > MAX_LIMIT => (MAX_LIMIT, true),
                // Larger than i64: clamped all the same.
                Err(_) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    (MAX_LIMIT, true)
                }
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "`limit` must be a whole number from 1 to {MAX_LIMIT}, not {v:?}"
                    )));
                }
            },
        };
        Ok(Window {
            since_ms,
            until_ms,
            limit,
            clamped,
        })
    }
}

/// The `next` of a list answer: the URL of the following (older) page when this one is full.
/// Lists are newest first, so the next page is the same window ending (exclusively) at the
/// oldest row shown. Rows of one list never share a time in practice (one check's results
/// are seconds apart; alerts and reports are ids in time order).
pub fn next_page(
    path: &str,
    window: &Window,
    host: Option<&str>,
    rows: usize,
    oldest_ms: Option<i64>,
) -> Option<String> {
    let oldest = oldest_ms?;
    if (rows as i64) < window.limit || oldest <= window.since_ms {
        return None;
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("since", &window.since_ms.to_string())
        .append_pair("until", &oldest.to_string())
        .append_pair("limit", &window.limit.to_string());
    if let Some(h) = host {
        query.append_pair("host", h);
    }
    Some(format!("/api/v1{path}?{}", query.finish()))
}

/// A point in time: unix epoch milliseconds, an RFC 3339 time, or a duration meaning "that
/// long ago" (`24h`, `7d`).
pub fn parse_time(name: &str, value: &str, now_ms: i64) -> Result<i64, ApiError> {
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(ago) = value.parse::<HumanDuration>() {
        return Ok(now_ms - ago.as_millis_i64());
    }
    Err(ApiError::BadRequest(format!(
        "`{name}` must be unix milliseconds, an RFC 3339 time (2026-11-23T09:00:00Z) or a \
         duration ago (24h), not {value:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(since: Option<&str>, until: Option<&str>, limit: Option<&str>) -> WindowParams {
        WindowParams {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            limit: limit.map(str::to_owned),
            host: None,
        }
    }

    #[test]
    fn accepts_every_time_form() {
        let now = 1_800_000_000_000;
        let w = params(Some("24h"), Some("2027-01-15T08:00:00Z"), Some("5"))
            .parse(now)
            .unwrap();
        assert_eq!(w.since_ms, now - 86_400_000);
        let until = chrono::DateTime::parse_from_rfc3339("2027-01-15T08:00:00Z").unwrap();
        assert_eq!(w.until_ms, until.timestamp_millis());
        assert_eq!(w.limit, 5);
        assert_eq!(
            params(Some("1000"), Some("2000"), None)
                .parse(now)
                .unwrap()
                .since_ms,
            1000
        );
    }

    #[test]
    fn clamps_a_limit_over_the_maximum() {
        for big in ["1001", "99999999999999999999999"] {
            let w = params(None, None, Some(big))
                .parse(1_800_000_000_000)
                .unwrap();
            assert_eq!((w.limit, w.clamped), (MAX_LIMIT, true), "{big}");
        }
        let w = params(None, None, Some("1000"))
            .parse(1_800_000_000_000)
            .unwrap();
        assert_eq!((w.limit, w.clamped), (1000, false));
    }

    #[test]
    fn refuses_bad_input() {
        let now = 1_800_000_000_000;
        for p in [
            params(Some("yesterday"), None, None),
            params(None, None, Some("0")),
            params(None, None, Some("ten")),
            params(Some("2000"), Some("1000"), None),
        ] {
            assert!(
                matches!(p.parse(now), Err(ApiError::BadRequest(_))),
                "{p:?} accepted"
            );
        }
    }
}
