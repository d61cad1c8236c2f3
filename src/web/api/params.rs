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
    /// Where the previous page stopped, as given in its `next` URL: the page starts right
    /// after (older than) that page's last row. Opaque (hex); one this API did not give out
    /// is 400.
    #[param(pattern = "^([0-9a-f]{2})+$")]
    pub cursor: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub since_ms: i64,
    pub until_ms: i64,
    pub limit: i64,
    /// The client asked for more than [`MAX_LIMIT`] rows and got `limit`.
    pub clamped: bool,
    /// Only rows older than this one (newest first lists): the previous page's last row.
    pub after: Option<Cursor>,
}

/// The position of a row in a newest-first list: its time and its id, which orders rows of
/// the same millisecond. Pages resume strictly after it (keyset paging), so rows sharing a
/// millisecond are neither skipped nor repeated, however many there are.
///
/// Clients see it as an opaque token (hex of `time.id`): its shape is not part of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time_ms: i64,
    /// The row's id as text: an integer for alerts and reports, the app's id for disputes,
    /// empty for check results (one check has one result per millisecond at most).
    pub id: String,
}

impl Cursor {
    pub fn new(time_ms: i64, id: impl ToString) -> Self {
        Self {
            time_ms,
            id: id.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        hex::encode(format!("{}.{}", self.time_ms, self.id))
    }

    pub fn decode(token: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::BadRequest(format!(
                "`cursor` {token:?} is not one this API gave out: copy it from a `next` URL"
            ))
        };
        let text = hex::decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let (time, id) = text.split_once('.').ok_or_else(bad)?;
        let time_ms = time.parse().map_err(|_| bad())?;
        Ok(Self {
            time_ms,
            id: id.to_owned(),
        })
    }

    /// The id of a list keyed by integer ids (alerts, reports).
    pub fn int_id(&self) -> Result<i64, ApiError> {
        self.id.parse().map_err(|_| {
            ApiError::BadRequest(
                "`cursor` belongs to another list: copy it from this list's `next` URL".to_owned(),
            )
        })
    }
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
        let after = self.cursor.as_deref().map(Cursor::decode).transpose()?;
        Ok(Window {
            since_ms,
            until_ms,
            limit,
            clamped,
            after,
        })
    }
}

impl Window {
    /// `(time_ms, id)` of the newest row a page may hold, both inclusive: the window's end, or
    /// just before the cursor's row. Lists keyed by integer ids select
    /// `time BETWEEN since AND t AND (time < t OR id <= i)`, one index range however deep the
    /// page.
    pub fn newest_int_key(&self) -> Result<(i64, i64), ApiError> {
        let end = (self.until_ms - 1, i64::MAX);
        match &self.after {
            Some(c) if c.time_ms < self.until_ms => Ok((c.time_ms, c.int_id()?.saturating_sub(1))),
            Some(c) => c.int_id().map(|_| end),
            None => Ok(end),
        }
    }
}

impl Window {
    /// The same for lists keyed by text ids (disputes): `(t, Some(i))` selects
    /// `time BETWEEN since AND t AND (time < t OR id < i)`; `None` for the id: the whole end.
    pub fn newest_text_key(&self) -> (i64, Option<String>) {
        match &self.after {
            Some(c) if c.time_ms < self.until_ms => (c.time_ms, Some(c.id.clone())),
            _ => (self.until_ms - 1, None),
        }
    }

    /// The exclusive end for lists with one row per millisecond at most (one check's results).
    pub fn end_before_cursor(&self) -> i64 {
        self.after
            .as_ref()
            .map_or(self.until_ms, |c| c.time_ms.min(self.until_ms))
    }
}

/// The `next` of a list answer: the URL of the following (older) page when this one is full.
/// Lists are newest first; the next page is the same window resuming after `last`, the last
/// row shown (see [`Cursor`]).
pub fn next_page(
    path: &str,
    window: &Window,
    host: Option<&str>,
    rows: usize,
    last: Option<Cursor>,
) -> Option<String> {
    let last = last?;
    if (rows as i64) < window.limit {
        return None;
    }
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("since", &window.since_ms.to_string())
        .append_pair("until", &window.until_ms.to_string())
        .append_pair("limit", &window.limit.to_string())
        .append_pair("cursor", &last.encode());
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
            cursor: None,
        }
    }

    #[test]
    fn a_cursor_round_trips_and_a_bad_one_is_refused() {
        for c in [Cursor::new(1_800_000_000_123, 42), Cursor::new(5, "D.1-x")] {
            assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        }
        for bad in [
            "",
            "zz",
            "6869",
            &hex::encode("x.1"),
            &hex::encode([0xff, 0xfe]),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(ApiError::BadRequest(_))),
                "{bad:?} accepted"
            );
        }
        let mut p = params(Some("0"), Some("10000"), None);
        p.cursor = Some(Cursor::new(5000, 7).encode());
        let w = p.parse(20_000).unwrap();
        assert_eq!(w.newest_int_key().unwrap(), (5000, 6));
        p.cursor = Some(Cursor::new(50_000, 7).encode());
        assert_eq!(
            p.parse(20_000).unwrap().newest_int_key().unwrap(),
            (9999, i64::MAX)
        );
        p.cursor = Some(Cursor::new(5000, "D-1").encode());
        assert!(p.parse(20_000).unwrap().newest_int_key().is_err());
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
