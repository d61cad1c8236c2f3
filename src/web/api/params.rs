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

/// `since`, `until`, `limit` as written by a client.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WindowParams {
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
}

pub const MAX_LIMIT: i64 = 1000;

/// A validated `[since, until)` window and row limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since_ms: i64,
    pub until_ms: i64,
    pub limit: i64,
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
        let limit = match &self.limit {
            None => 100,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
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
        })
    }
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
    fn refuses_bad_input() {
        let now = 1_800_000_000_000;
        for p in [
            params(Some("yesterday"), None, None),
            params(None, None, Some("0")),
            params(None, None, Some("1001")),
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
