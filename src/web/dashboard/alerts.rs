//! `/alerts`: the alert log with the delivery state per channel, and silences with a form to
//! add one and a button to end one (plain HTML forms; same store functions and rules as the
//! silences API).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Meta, PageError, fmt_duration, fmt_time, state_class};
use crate::config::HumanDuration;
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{LoggedAlert, NewSilence, now_ms};

const DAY_MS: i64 = 86_400_000;
/// The silences API's limit: a forgotten silence should not hide alerts for months.
const MAX_SILENCE_MS: i64 = 90 * DAY_MS;
const LOG_ROWS: i64 = 200;

/// One alert with its deliveries, as a table row.
pub struct AlertLine {
    pub at: String,
    pub severity: String,
    pub severity_class: &'static str,
    pub source: String,
    pub title: String,
    pub value: String,
    pub deliveries: Vec<DeliveryLine>,
    pub silenced: bool,
}

pub struct DeliveryLine {
    pub channel: String,
    pub state: String,
    pub state_class: &'static str,
    pub detail: String,
}

pub fn alert_lines(alerts: Vec<LoggedAlert>, now: i64) -> Vec<AlertLine> {
    alerts
        .into_iter()
        .map(|a| {
            let severity = a.alert.severity.as_str().to_owned();
            AlertLine {
                at: fmt_time(a.alert.created_ms),
                severity_class: match severity.as_str() {
                    "critical" => "bad",
                    "warning" => "warn",
                    "resolved" => "ok",
                    _ => "muted",
                },
                severity,
                source: a.alert.source,
                title: a.alert.title,
                value: match (a.alert.value, a.alert.threshold) {
                    (Some(v), Some(t)) => format!("{v} (threshold {t})"),
                    (v, _) => v.unwrap_or_default(),
                },
                silenced: a.silenced,
                deliveries: a
                    .deliveries
                    .into_iter()
                    .map(|d| DeliveryLine {
                        state_class: state_class(d.state.as_str()),
                        detail: match d.state.as_str() {
                            "sent" => d
                                .sent_ms
                                .map(|t| format!("at {}", fmt_time(t)))
                                .unwrap_or_default(),
                            "pending" if d.attempts == 0 && d.next_attempt_ms <= now => {
                                "waiting for its turn".to_owned()
                            }
                            "pending" => format!(
                                "{} attempt{}, next {}{}",
                                d.attempts,
                                if d.attempts == 1 { "" } else { "s" },
                                if d.next_attempt_ms <= now {
                                    "now".to_owned()
                                } else {
                                    format!("in {}", fmt_duration(d.next_attempt_ms - now))
                                },
                                d.last_error.map(|e| format!(": {e}")).unwrap_or_default()
                            ),
                            _ => d.last_error.unwrap_or_default(),
                        },
                        channel: d.channel,
                        state: d.state.as_str().to_owned(),
                    })
                    .collect(),
            }
        })
        .collect()
}

struct SilenceLine {
    id: i64,
    matches: String,
    from: String,
    until: String,
    comment: String,
    by: String,
    active: bool,
}

struct ConfiguredSilence {
    matches: String,
    when: String,
    comment: String,
    active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    meta: Meta,
    alerts: Vec<AlertLine>,
    silences: Vec<SilenceLine>,
    configured: Vec<ConfiguredSilence>,
    error: String,
    form: SilenceForm,
    /// The session's anti-CSRF token for the forms (empty without login).
    csrf: String,
}

fn matcher(check: Option<&str>, kind: Option<&str>, severity: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some(c) = check {
        parts.push(format!("check {c}"));
    }
    if let Some(k) = kind {
        parts.push(format!("kind {k}"));
    }
    if let Some(s) = severity {
        parts.push(format!("severity {s}"));
    }
    if parts.is_empty() {
        "everything".to_owned()
    } else {
        parts.join(", ")
    }
}

async fn render(
    app: &AppState,
    csrf: String,
    error: String,
    form: SilenceForm,
) -> Result<AlertsPage, PageError> {
    let now = now_ms();
    let alerts = app
        .store
        .list_alerts(now - 30 * DAY_MS, now + 1, LOG_ROWS)
        .await?;
    let silences = app
        .store
        .current_silences(now)
        .await?
        .into_iter()
        .map(|s| SilenceLine {
            id: s.id,
            matches: matcher(
                s.check_name.as_deref(),
                s.kind.as_deref(),
                s.severity.as_deref(),
            ),
            from: fmt_time(s.starts_ms),
            until: fmt_time(s.ends_ms),
            active: s.starts_ms <= now,
            comment: s.comment,
            by: s.created_by,
        })
        .collect();
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now).unwrap_or_default();
    let configured = app
        .config
        .silence
        .iter()
        .map(|s| ConfiguredSilence {
            matches: matcher(
                s.check.as_deref(),
                s.kind.as_deref(),
                s.severity.map(|v| v.as_str()),
            ),
            when: match (&s.until, &s.schedule, &s.duration) {
                (Some(u), _, _) => format!("until {u}"),
                (_, Some(sch), Some(d)) => format!("{d} from each \"{}\" (UTC)", sch.as_str()),
                _ => String::new(),
            },
            comment: s.comment.clone(),
            active: crate::rules::silence::config_silence_active(s, at),
        })
        .collect();
    Ok(AlertsPage {
        meta: Meta::new("/alerts", "/api/v1/alerts", now),
        alerts: alert_lines(alerts, now),
        silences,
        configured,
        error,
        form,
        csrf,
    })
}

pub async fn page(
    State(app): State<AppState>,
    session: Option<axum::Extension<crate::web::auth::session::Session>>,
) -> Result<AlertsPage, PageError> {
    render(
        &app,
        csrf_of(session),
        String::new(),
        SilenceForm::default(),
    )
    .await
}

/// The token the page's forms carry: the session's, or none when no login is configured.
fn csrf_of(session: Option<axum::Extension<crate::web::auth::session::Session>>) -> String {
    session.map(|s| s.0.csrf).unwrap_or_default()
}

/// The add-silence form as posted (and echoed back when it was wrong).
#[derive(Debug, Default, Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    pub check: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub comment: String,
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A form posted from another site is refused: with a browser session (the login issue) that
/// would be cross-site request forgery. Browsers send `Origin` with every form POST.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|s| s == "same-origin" || s == "none");
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest == host)
}

fn validate(form: &SilenceForm, now: i64) -> Result<NewSilence, String> {
    let d: HumanDuration = form
        .duration
        .trim()
        .parse()
        .map_err(|e: crate::config::DurationError| format!("Duration: {e}"))?;
    let ms = d.as_millis_i64();
    if ms <= 0 {
        return Err("Duration: must be more than 0s".to_owned());
    }
    if ms > MAX_SILENCE_MS {
        return Err("Duration: a silence may last at most 90 days".to_owned());
    }
    let severity = non_empty(&form.severity);
    if let Some(s) = &severity
        && s.parse::<Severity>().is_err()
    {
        return Err("Severity: must be critical, warning, info or resolved".to_owned());
    }
    let comment = form.comment.trim();
    if comment.is_empty() {
        return Err("Comment: say why (it is shown with every muted alert)".to_owned());
    }
    Ok(NewSilence {
        check_name: non_empty(&form.check),
        kind: non_empty(&form.kind),
        severity,
        starts_ms: now,
        ends_ms: now + ms,
        comment: comment.to_owned(),
        created_by: "dashboard".to_owned(),
    })
}

/// `POST /alerts/silences`: adds a silence starting now, then back to `/alerts`.
pub async fn add_silence(
    State(app): State<AppState>,
    session: Option<axum::Extension<crate::web::auth::session::Session>>,
    headers: HeaderMap,
    Form(form): Form<SilenceForm>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError::BadRequest(
            "this form can only be sent from the opswatch dashboard itself".to_owned(),
        ));
    }
    let now = now_ms();
    match validate(&form, now) {
        Ok(silence) => {
            app.store.create_silence(&silence, now).await?;
            Ok(Redirect::to("/alerts#silences").into_response())
        }
        Err(why) => Ok((
            StatusCode::BAD_REQUEST,
            render(&app, csrf_of(session), why, form).await?,
        )
            .into_response()),
    }
}

/// `POST /alerts/silences/{id}/end`: ends a silence now.
pub async fn end_silence(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    if !same_origin(&headers) {
        return Err(PageError::BadRequest(
            "this form can only be sent from the opswatch dashboard itself".to_owned(),
        ));
    }
    let id: i64 = id
        .parse()
        .map_err(|_| PageError::BadRequest(format!("silence id must be a number, not {id:?}")))?;
    if app.store.expire_silence(id, now_ms()).await? {
        Ok(Redirect::to("/alerts#silences").into_response())
    } else {
        Err(PageError::NotFound(format!("no active silence {id}")))
    }
}
