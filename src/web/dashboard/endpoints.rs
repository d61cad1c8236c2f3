//! `/endpoints` and `/endpoints/{name}`: HTTP checks, their uptime, latency and incidents.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::chart::{self, Chart, DayBar, Line, Point, Unit};
use super::{
    ChartView, Meta, PageError, RangeLink, fmt_duration, fmt_time, fmt_uptime, parse_range,
    path_segment, range_links, state_class,
};
use crate::daemon::state::AppState;
use crate::store::rollups::DayCount;
use crate::store::{CheckRow, Store, now_ms};

const DAY_MS: i64 = 86_400_000;
/// Ranges of the latency chart; up to 7 days it is drawn from the raw results with p50/p95.
const LATENCY_RANGES: &[&str] = &["24h", "7d", "30d", "90d"];
const RAW_PERCENTILES_UP_TO_MS: i64 = 7 * DAY_MS;
/// Buckets of the p50/p95 band: few enough that each holds several results (24 h of
/// 5-minute probes: 3 per bucket).
const PERCENTILE_BUCKETS: i64 = 96;

/// One row of an endpoint table (overview, list).
pub struct EndpointRow {
    pub name: String,
    pub href: String,
    pub state: String,
    pub state_class: &'static str,
    pub since: String,
    pub uptime_24h: String,
    pub latency_now: String,
    pub spark: String,
    pub last_error: String,
}

/// Width of a sparkline point over the last 24 hours: the sparkline draws at most 48.
const SPARK_POINT_MS: i64 = DAY_MS / 48;

/// The configured HTTP checks with their state now and their last 24 hours: two reads for
/// all the checks (the check rows, and the last day's results grouped into sparkline points
/// whose counts also give the uptime).
pub async fn endpoint_rows(app: &AppState, now: i64) -> anyhow::Result<Vec<EndpointRow>> {
    let stored: HashMap<String, CheckRow> = app
        .store
        .list_checks()
        .await?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let mut day = app
        .store
        .checks_points(now - DAY_MS, now + 1, SPARK_POINT_MS)
        .await?;
    let mut rows = Vec::new();
    for h in &app.config.http {
        let check = stored.get(&h.name);
        let mut row = EndpointRow {
            name: h.name.clone(),
            href: format!("/endpoints/{}", path_segment(&h.name)),
            state: check.map_or("unknown", |c| c.state.as_str()).to_owned(),
            state_class: "muted",
            since: check
                .and_then(|c| c.last_change_ms)
                .map(|t| format!("for {}", fmt_duration(now - t)))
                .unwrap_or_default(),
            uptime_24h: "no data".to_owned(),
            latency_now: String::new(),
            spark: String::new(),
            last_error: check
                .filter(|c| c.state != crate::store::CheckState::Up)
                .and_then(|c| c.last_error.clone())
                .unwrap_or_default(),
        };
        row.state_class = state_class(&row.state);
        if let Some(c) = check {
            let points = day.remove(&c.id).unwrap_or_default();
            let (total, failures) = points
                .iter()
                .fold((0, 0), |(t, f), p| (t + p.total, f + p.failures));
            row.uptime_24h =
                fmt_uptime((total > 0).then(|| 100.0 * (total - failures) as f64 / total as f64));
            let values: Vec<Option<f64>> = points.iter().map(|p| p.latency_avg).collect();
            if let Some(Some(last)) = values.last() {
                row.latency_now = format!("{last:.0} ms");
            }
            row.spark = chart::sparkline(&values, &format!("{} latency, last 24 h", h.name));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[derive(Template, WebTemplate)]
#[template(path = "endpoints.html")]
pub struct ListPage {
    meta: Meta,
    rows: Vec<EndpointRow>,
}

pub async fn list(State(app): State<AppState>) -> Result<ListPage, PageError> {
    let now = now_ms();
    Ok(ListPage {
        meta: Meta::new("/endpoints", "/api/v1/checks", now),
        rows: endpoint_rows(&app, now).await?,
    })
}

/// The first day (UTC) of `days` days up to today.
pub fn first_day(days: i64, now: i64) -> i64 {
    now.div_euclid(DAY_MS) * DAY_MS - (days - 1) * DAY_MS
}

/// Daily uptime over the `days` days from `first`, oldest first, from the days a check had
/// results in (see [`Store::checks_daily`]).
pub fn daily_bars(counts: &[DayCount], first: i64, days: i64) -> Vec<DayBar> {
    let mut bars: Vec<DayBar> = (0..days)
        .map(|i| DayBar {
            day_ms: first + i * DAY_MS,
            total: 0,
            failures: 0,
        })
        .collect();
    for c in counts {
        let i = (c.day_ms - first).div_euclid(DAY_MS);
        if let Some(b) = usize::try_from(i).ok().and_then(|i| bars.get_mut(i)) {
            b.total += c.total;
            b.failures += c.failures;
        }
    }
    bars
}

struct WindowRow {
    label: &'static str,
    uptime: String,
    total: i64,
    failures: i64,
    p50: String,
    p95: String,
}

struct IncidentLine {
    opened: String,
    duration: String,
    open: bool,
    cause: String,
}

struct ResultLine {
    at: String,
    ok: bool,
    status: String,
    latency: String,
    error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "endpoint.html")]
pub struct OnePage {
    meta: Meta,
    name: String,
    url: String,
    state: String,
    state_class: &'static str,
    since: String,
    windows: Vec<WindowRow>,
    bars: String,
    bars_summary: String,
    latency: Vec<ChartView>,
    ranges: Vec<RangeLink>,
    incidents: Vec<IncidentLine>,
    tls: String,
    tls_class: &'static str,
    results: Vec<ResultLine>,
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    range: Option<String>,
}

pub async fn one(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Result<OnePage, PageError> {
    let now = now_ms();
    let (range, span) = parse_range(q.range.as_deref(), "24h", LATENCY_RANGES)?;
    let configured = app.config.http.iter().find(|h| h.name == name);
    let check = app.store.find_check(&name).await?;
    let Some(check) =
        check.filter(|c| c.kind == crate::checks::CheckKind::Http || configured.is_some())
    else {
        if configured.is_none() {
            return Err(PageError::NotFound(format!("no endpoint named {name:?}")));
        }
        return Err(PageError::NotFound(format!(
            "{name:?} has not been probed yet; this page fills in after its first check"
        )));
    };
    let seg = path_segment(&name);
    let mut windows = Vec::new();
    for (label, ms) in [
        ("24 h", DAY_MS),
        ("7 d", 7 * DAY_MS),
        ("30 d", 30 * DAY_MS),
        ("90 d", 90 * DAY_MS),
    ] {
        let s = app.store.check_summary(check.id, now - ms, now + 1).await?;
        let ms_or_dash = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0} ms"));
        windows.push(WindowRow {
            label,
            uptime: fmt_uptime(s.uptime_pct),
            total: s.total,
            failures: s.failures,
            p50: ms_or_dash(s.latency.p50),
            p95: ms_or_dash(s.latency.p95),
        });
    }
    let first = first_day(90, now);
    let mut days = app.store.checks_daily(first, now + 1).await?;
    let bars = daily_bars(&days.remove(&check.id).unwrap_or_default(), first, 90);
    let bars = chart::uptime_bars(&bars, &format!("{name}: daily uptime, last 90 days"));
    let latency = latency_chart(&app.store, &check, now, span, range).await?;
    let incidents = app
        .store
        .list_check_incidents(check.id, now - 90 * DAY_MS, 50)
        .await?
        .into_iter()
        .map(|i| IncidentLine {
            opened: fmt_time(i.opened_ms),
            duration: fmt_duration(i.resolved_ms.unwrap_or(now) - i.opened_ms),
            open: i.resolved_ms.is_none(),
            cause: i.cause,
        })
        .collect();
    let (tls, tls_class) = match app.store.last_cert_expiry(check.id).await? {
        None => (
            "no certificate seen (plain HTTP, or not probed over TLS yet)".to_owned(),
            "muted",
        ),
        Some(at) if at <= now => (format!("expired {}", fmt_time(at)), "bad"),
        Some(at) => (
            format!("expires {} (in {})", fmt_time(at), fmt_duration(at - now)),
            if at - now < 14 * DAY_MS { "warn" } else { "ok" },
        ),
    };
    let results = app
        .store
        .list_results(check.id, now - 7 * DAY_MS, now + 1, 20)
        .await?
        .into_iter()
        .map(|r| ResultLine {
            at: fmt_time(r.at_ms),
            ok: r.ok,
            status: r.status_code.map(|s| s.to_string()).unwrap_or_default(),
            latency: r.latency_ms.map(|l| format!("{l} ms")).unwrap_or_default(),
            error: match (r.error_kind, r.error) {
                (Some(k), Some(e)) => format!("{k}: {e}"),
                (k, e) => k.or(e).unwrap_or_default(),
            },
        })
        .collect();
    let state = check.state.as_str().to_owned();
    Ok(OnePage {
        meta: Meta::new("/endpoints", format!("/api/v1/checks/{seg}/results"), now),
        url: configured
            .map(|h| crate::config::redact_url(&h.url))
            .unwrap_or_default(),
        state_class: state_class(&state),
        since: check
            .last_change_ms
            .map(|t| format!("since {} ({})", fmt_time(t), fmt_duration(now - t)))
            .unwrap_or_default(),
        state,
        windows,
        bars: bars.svg,
        bars_summary: bars.summary,
        latency: vec![latency],
        ranges: range_links(&format!("/endpoints/{seg}"), LATENCY_RANGES, range),
        incidents,
        tls,
        tls_class,
        results,
        name,
    })
}

/// Latency over `span`: p50 line in a p50–p95 band from the raw results for short ranges,
/// average in a min–max band from the roll-ups for long ones.
async fn latency_chart(
    store: &Store,
    check: &CheckRow,
    now: i64,
    span: i64,
    range: &str,
) -> anyhow::Result<ChartView> {
    let since = now - span;
    let title = format!("{} latency, last {range}", check.name);
    let mut chart = Chart {
        id: "latency".to_owned(),
        title,
        unit: Unit::Millis,
        since_ms: since,
        until_ms: now,
        lines: Vec::new(),
        thresholds: Vec::new(),
        y_min: Some(0.0),
        y_max: None,
        band_label: "p50–p95",
        line_label: "p50",
    };
    let points = if span <= RAW_PERCENTILES_UP_TO_MS {
        let samples = store
            .list_latencies(check.id, since, now + 1, 100_000)
            .await?;
        let width = (span / PERCENTILE_BUCKETS).max(1);
        let mut points = Vec::new();
        let mut i = 0;
        while i < samples.len() {
            let key = (samples[i].at_ms - since).div_euclid(width);
            let mut vals = Vec::new();
            while i < samples.len() && (samples[i].at_ms - since).div_euclid(width) == key {
                vals.push(samples[i].latency_ms as f64);
                i += 1;
            }
            vals.sort_by(f64::total_cmp);
            let q = |f: f64| vals[((vals.len() - 1) as f64 * f).round() as usize];
            points.push(Point {
                at_ms: since + key * width,
                lo: q(0.5),
                mid: q(0.5),
                hi: q(0.95),
            });
        }
        points
    } else {
        chart.band_label = "min–max";
        chart.line_label = "average";
        store
            .check_chart(check.id, since, now + 1)
            .await?
            .points
            .into_iter()
            .filter_map(|p| {
                Some(Point {
                    at_ms: p.at_ms,
                    lo: p.latency_min? as f64,
                    mid: p.latency_avg?,
                    hi: p.latency_max? as f64,
                })
            })
            .collect()
    };
    chart.lines.push(Line {
        label: "latency".to_owned(),
        points,
    });
    Ok(ChartView::of(&chart))
}
