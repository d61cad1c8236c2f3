//! `/status`: the public status page (`[status_page]`). Each listed check up or down now, its
//! 90-day daily uptime and the open incidents; nothing else of the host, no login. Answers 404
//! unless enabled, and lets browsers and proxies keep it for a while so that a burst of
//! visitors does not reach the store.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::endpoints::{daily_bars, first_day};
use super::{PageError, assets, chart, fmt_duration, fmt_time, fmt_uptime};
use crate::daemon::state::AppState;
use crate::store::now_ms;

const CACHE_CONTROL: &str = "public, max-age=30";

struct CheckLine {
    name: String,
    up: bool,
    known: bool,
    uptime_90d: String,
    bars: String,
    bars_summary: String,
    open_for: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "status.html")]
pub struct StatusPage {
    title: String,
    made: String,
    css: &'static str,
    icon: &'static str,
    all_up: bool,
    checks: Vec<CheckLine>,
}

pub async fn page(State(app): State<AppState>) -> Result<Response, PageError> {
    let cfg = &app.config.status_page;
    if !cfg.enabled {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let now = now_ms();
    let names: Vec<String> = match &cfg.checks {
        Some(list) => list.clone(),
        None => app.config.http.iter().map(|h| h.name.clone()).collect(),
    };
    let open = app.store.list_open_incidents().await?;
    let first = first_day(90, now);
    let mut days = app.store.checks_daily(first, now + 1).await?;
    let stored: std::collections::HashMap<String, crate::store::CheckRow> = app
        .store
        .list_checks()
        .await?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let mut checks = Vec::new();
    for name in names {
        let mut line = CheckLine {
            name: name.clone(),
            up: false,
            known: false,
            uptime_90d: "no data".to_owned(),
            bars: String::new(),
            bars_summary: String::new(),
            open_for: String::new(),
        };
        if let Some(c) = stored.get(&name) {
            line.known = c.state != crate::store::CheckState::Unknown;
            line.up = c.state == crate::store::CheckState::Up;
            // The figure beside the bars is over the days they show.
            let bars = daily_bars(&days.remove(&c.id).unwrap_or_default(), first, 90);
            let (total, failures) = bars
                .iter()
                .fold((0, 0), |(t, f), b| (t + b.total, f + b.failures));
            line.uptime_90d =
                fmt_uptime((total > 0).then(|| 100.0 * (total - failures) as f64 / total as f64));
            let r = chart::uptime_bars(&bars, &format!("{name}: daily uptime, last 90 days"));
            line.bars = r.svg;
            line.bars_summary = r.summary;
            if let Some(i) = open.iter().find(|i| i.check_name == name) {
                line.open_for = format!(
                    "down since {} ({})",
                    fmt_time(i.opened_ms),
                    fmt_duration(now - i.opened_ms)
                );
            }
        }
        checks.push(line);
    }
    let page = StatusPage {
        title: cfg.title.clone(),
        made: fmt_time(now),
        css: &assets::CSS_URL,
        icon: &assets::ICON_URL,
        all_up: checks.iter().all(|c| c.up),
        checks,
    };
    let mut res = page.into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(res)
}
