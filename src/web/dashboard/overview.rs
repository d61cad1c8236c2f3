//! `/`: what needs attention now. One line that says whether anything does, then the open
//! incidents, the next digest, the host gauges, the endpoints, the processes that are down or
//! restarting, the last alerts and the disputes of the last 24 hours.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use super::alerts::{AlertLine, alert_lines};
use super::disputes::{DisputeLine, empty_state, recent_disputes};
use super::endpoints::{EndpointRow, endpoint_rows};
use super::host::{Gauge, gauges};
use super::processes::{ProcessRow, process_rows};
use super::{Meta, PageError, fmt_duration, fmt_time, path_segment};
use crate::daemon::state::AppState;
use crate::store::now_ms;

const DAY_MS: i64 = 86_400_000;
/// Seconds between refreshes of the overview by the enhancement script.
const REFRESH_S: u32 = 60;
const LAST_ALERTS: i64 = 8;

struct IncidentLine {
    check: String,
    href: String,
    opened: String,
    open_for: String,
    cause: String,
}

struct DigestLine {
    title: String,
    count: i64,
    worst: String,
    still: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    meta: Meta,
    attention: Vec<String>,
    incidents: Vec<IncidentLine>,
    digest: Vec<DigestLine>,
    digest_next: String,
    gauges: Vec<Gauge>,
    reading: String,
    rows: Vec<EndpointRow>,
    procs: Vec<ProcessRow>,
    processes_total: usize,
    alerts: Vec<AlertLine>,
    disputes: Vec<DisputeLine>,
    empty: &'static str,
}

pub async fn page(State(app): State<AppState>) -> Result<OverviewPage, PageError> {
    let now = now_ms();
    let mut attention = Vec::new();

    let health = app.health.report(now);
    for r in &health.reasons {
        attention.push(format!("opswatch itself: {r}"));
    }
    let incidents: Vec<IncidentLine> = app
        .store
        .list_open_incidents()
        .await?
        .into_iter()
        .map(|i| IncidentLine {
            href: format!("/endpoints/{}", path_segment(&i.check_name)),
            opened: fmt_time(i.opened_ms),
            open_for: fmt_duration(now - i.opened_ms),
            check: i.check_name,
            cause: i.cause,
        })
        .collect();
    for i in &incidents {
        attention.push(format!("{} is down ({})", i.check, i.open_for));
    }
    for c in app.store.list_conditions().await? {
        if matches!(
            c.level,
            crate::rules::condition::Level::Critical | crate::rules::condition::Level::Warning
        ) {
            attention.push(format!(
                "{} at {} level for {}",
                c.key,
                c.level,
                fmt_duration(now - c.since_ms)
            ));
        }
    }

    let digest = app
        .store
        .preview_digest_items()
        .await?
        .into_iter()
        .map(|d| DigestLine {
            title: d.title,
            count: d.count,
            worst: match (d.worst, d.unit) {
                (Some(w), Some(u)) => format!("worst {w:.1} {u}"),
                (Some(w), None) => format!("worst {w:.1}"),
                _ => String::new(),
            },
            still: d.active,
        })
        .collect();
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now).unwrap_or_default();
    let digest_next = app
        .config
        .digest
        .schedule
        .next_after(at)
        .map(|t| {
            let ms = t.timestamp_millis();
            format!("{} (in {})", fmt_time(ms), fmt_duration(ms - now))
        })
        .unwrap_or_default();

    let snapshot = app.live.host.read().ok().and_then(|h| h.clone());
    let (gauges, reading) = match &snapshot {
        Some(s) => (
            gauges(&app.config.system, s),
            format!("Read {} ago.", fmt_duration(now - s.at_ms)),
        ),
        None => (
            Vec::new(),
            "No host reading yet: the first sample is taken within a minute of start.".to_owned(),
        ),
    };
    let rows = endpoint_rows(&app, now).await?;
    let (all, notes) = process_rows(&app, now).await?;
    let processes_total = all.len();
    let processes: Vec<ProcessRow> = all
        .into_iter()
        .filter(ProcessRow::needs_attention)
        .collect();
    for p in &processes {
        if p.crash_loop {
            attention.push(format!("{} is in a crash loop", p.name));
        } else if p.state_class == "bad" {
            attention.push(format!("{} is {}", p.name, p.state));
        }
    }
    attention.extend(notes);
    let alerts = alert_lines(
        app.store
            .list_alerts(now - 7 * DAY_MS, now + 1, LAST_ALERTS)
            .await?,
        now,
    );
    let disputes = recent_disputes(&app, now - DAY_MS).await?;
    let mut meta = Meta::new("/", "/api/v1/status", now);
    meta.refresh = REFRESH_S;
    Ok(OverviewPage {
        meta,
        attention,
        incidents,
        digest,
        digest_next,
        gauges,
        reading,
        rows,
        procs: processes,
        processes_total,
        alerts,
        disputes,
        empty: empty_state(&app),
    })
}
