//! The dashboard: server-rendered pages (askama templates in `templates/`), one handler file
//! per page. Handlers only read: the in-memory state for "now" and the store's read pool for
//! history, so a page never waits on a check or on the writer.
//!
//! Escaping: askama escapes every `{{ }}` by default. The only `|safe` output is SVG made by
//! [`chart`], which escapes every text it places itself.

mod alerts;
mod assets;
pub mod chart;
mod disputes;
mod endpoints;
mod format;
mod host;
mod overview;
mod processes;
mod reports;
mod status;

use std::sync::OnceLock;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;

use crate::daemon::state::AppState;

pub use format::*;

/// The pages an operator sees (the login layer of the auth issue wraps these).
pub fn pages() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/endpoints", get(endpoints::list))
        .route("/endpoints/{name}", get(endpoints::one))
        .route("/host", get(host::page))
        .route("/processes", get(processes::page))
        .route("/disputes", get(disputes::page))
        .route("/alerts", get(alerts::page))
        .route("/alerts/silences", post(alerts::add_silence))
        .route("/alerts/silences/{id}/end", post(alerts::end_silence))
        .route("/reports", get(reports::list))
        .route("/reports/{id}", get(reports::one))
        .fallback(not_found)
        .layer(CompressionLayer::new())
}

/// Any other path: a page that says so and links back, not an empty 404.
async fn not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> PageError {
    PageError::NotFound(format!("There is no page at {}.", uri.path()))
}

/// What anyone may load without a login: the public status page and the static files.
pub fn public() -> Router<AppState> {
    Router::new()
        .route("/status", get(status::page))
        .route("/static/{file}", get(assets::serve))
        .layer(CompressionLayer::new())
}

/// The configured `host` (default: this machine's hostname), named by every page.
static HOST: OnceLock<String> = OnceLock::new();

/// Records the host the pages name. The first router built in a process sets it (`host` is
/// not reloadable: it names the process's facts in the store).
pub fn set_host_name(host: &str) {
    let _ = HOST.set(host.to_owned());
}

/// The host this opswatch watches, as every page names it.
pub fn host_name() -> &'static str {
    HOST.get().map_or("this host", String::as_str)
}

/// One link of the navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/endpoints", "Endpoints"),
    ("/host", "Host"),
    ("/processes", "Processes"),
    ("/alerts", "Alerts"),
    ("/disputes", "Disputes"),
    ("/reports", "Reports"),
];

/// What the base layout shows on every page.
pub struct Meta {
    pub host: &'static str,
    /// When the page was made, UTC.
    pub made: String,
    /// The JSON twin of this page in the API.
    pub json: String,
    pub nav: Vec<NavItem>,
    pub css: &'static str,
    pub js: &'static str,
    pub icon: &'static str,
    /// Seconds between automatic refreshes (JavaScript only); 0: none.
    pub refresh: u32,
}

impl Meta {
    /// `section` is the nav entry this page belongs to.
    pub fn new(section: &str, json: impl Into<String>, now_ms: i64) -> Self {
        Self {
            host: host_name(),
            made: fmt_time(now_ms),
            json: json.into(),
            nav: NAV
                .iter()
                .map(|(href, label)| NavItem {
                    href,
                    label,
                    current: *href == section,
                })
                .collect(),
            css: &assets::CSS_URL,
            js: &assets::JS_URL,
            icon: &assets::ICON_URL,
            refresh: 0,
        }
    }
}

/// A page that could not be made. Details of an internal error go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    meta: Meta,
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "dashboard page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "This page could not be made; the opswatch log says why.".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            meta: Meta::new("", "/api/v1/status", crate::store::now_ms()),
            heading,
            message,
        };
        (status, page).into_response()
    }
}

/// The ranges a chart offers, as plain links (`?range=`).
pub const RANGES: &[(&str, i64)] = &[
    ("1h", 3_600_000),
    ("6h", 21_600_000),
    ("24h", 86_400_000),
    ("7d", 604_800_000),
    ("30d", 2_592_000_000),
    ("90d", 7_776_000_000),
    ("1y", 31_536_000_000),
];

/// A validated `?range=`.
pub fn parse_range(
    range: Option<&str>,
    default: &'static str,
    allowed: &[&'static str],
) -> Result<(&'static str, i64), PageError> {
    let want = range.unwrap_or(default);
    RANGES
        .iter()
        .find(|(r, _)| *r == want && allowed.contains(r))
        .copied()
        .ok_or_else(|| {
            PageError::BadRequest(format!(
                "range must be one of {}, not {want:?}",
                allowed.join(", ")
            ))
        })
}

/// One link of a range switch.
pub struct RangeLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

pub fn range_links(base: &str, allowed: &[&'static str], current: &str) -> Vec<RangeLink> {
    allowed
        .iter()
        .map(|r| RangeLink {
            label: r,
            href: format!("{base}?range={r}"),
            current: *r == current,
        })
        .collect()
}

/// A chart ready for the template.
pub struct ChartView {
    pub id: String,
    pub title: String,
    pub svg: String,
    pub summary: String,
    /// The chart's data in the API; empty when the page's own JSON link covers it.
    pub json: String,
}

impl ChartView {
    pub fn of(chart: &chart::Chart) -> Self {
        let r = chart::render(chart);
        Self {
            id: chart.id.clone(),
            title: chart.title.clone(),
            svg: r.svg,
            summary: r.summary,
            json: String::new(),
        }
    }

    pub fn with_json(mut self, json: String) -> Self {
        self.json = json;
        self
    }
}
