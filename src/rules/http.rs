//! From an HTTP probe result to the stored state change and the alert it raises.

use crate::checks::http::HttpProbe;
use crate::config::{HttpCheckConfig, redact_url};
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{CheckRow, IncidentChange, IncidentRow, NewAlert, ResultRow};

use super::human_duration;
use super::silence::{Subject, is_silenced};
use super::updown::{self, Event, Policy};

/// A check's row and open incident as its job last wrote them.
///
/// The job is their only writer (a probe never overlaps itself; `opswatch check` stores
/// nothing), so reading them back before every probe would cost two store round trips for
/// nothing. Empty at start and after anything but a plain state update, and then read from
/// the store: a restart or a failed write never acts on a guess.
#[derive(Debug, Default)]
pub struct CheckMemory(Option<(CheckRow, Option<IncidentRow>)>);

/// Records `result` for `probe`'s check and raises whatever alert it calls for.
pub async fn process(
    app: &AppState,
    probe: &HttpProbe,
    memory: &mut CheckMemory,
    result: &ResultRow,
) -> anyhow::Result<Option<i64>> {
    let cfg = &probe.config;
    let (check, incident) = match memory.0.take() {
        Some(known) => known,
        None => {
            let check = match app.store.find_check(&cfg.name).await? {
                Some(c) => c,
                None => app.store.ensure_check(&cfg.name, "http").await?,
            };
            let incident = app.store.open_incident(check.id).await?;
            (check, incident)
        }
    };
    let policy = Policy {
        failures: cfg.failures,
        remind_every_ms: cfg.remind_every.map(|d| d.as_millis_i64()),
        flap_threshold: app.config.alerts.flap_threshold,
        flap_window_ms: app.config.alerts.flap_window.as_millis_i64(),
    };
    let about_to_open = !result.ok
        && incident.is_none()
        && check.consecutive_failures + 1 >= i64::from(cfg.failures);
    let downs = if about_to_open {
        app.store
            .count_incidents_since(check.id, result.at_ms - policy.flap_window_ms)
            .await?
    } else {
        0
    };
    let mut decision = updown::decide(&check, incident.as_ref(), result, &policy, downs);
    let mut alert = decision.event.as_ref().map(|event| {
        word(
            event,
            cfg,
            &check,
            result,
            incident.as_ref().map(|i| i.id),
            &policy,
        )
    });
    // Inside a silence the DOWN is recorded but not sent; so are its reminders and RESOLVED,
    // because the incident is marked as not notified.
    if let IncidentChange::Open { notified, .. } = &mut decision.change
        && *notified
    {
        let subject = Subject {
            source: &cfg.name,
            kind: "http",
            severity: Severity::Critical,
        };
        if is_silenced(app, subject, result.at_ms).await {
            *notified = false;
            if let Some(a) = alert.as_mut() {
                a.silenced = true;
            }
        }
    }
    let alert_id = app
        .store
        .record_check_outcome(
            &check,
            &decision.check,
            result,
            &decision.change,
            alert.as_ref(),
            &app.channels,
        )
        .await?;
    if decision.change == IncidentChange::None {
        memory.0 = Some((decision.check.clone(), incident));
    }
    let labels = crate::daemon::metrics::CheckLabels {
        check: cfg.name.clone(),
        kind: "http".to_owned(),
    };
    app.metrics
        .check_up
        .get_or_create(&labels)
        .set(i64::from(decision.check.state != "down"));
    if alert_id.is_some() && alert.as_ref().is_some_and(|a| !a.silenced) {
        app.wake_dispatcher();
    }
    if matches!(decision.change, IncidentChange::Open { .. }) {
        tracing::warn!(check = %cfg.name, error = result.error.as_deref().unwrap_or(""), "check is DOWN");
    } else if matches!(decision.change, IncidentChange::Resolve { .. }) {
        tracing::info!(check = %cfg.name, "check is UP again");
    }
    Ok(alert_id)
}

fn default_hint(cfg: &HttpCheckConfig) -> String {
    format!(
        "Open {} yourself; check that the app behind it runs (`pm2 status` / `systemctl status`), \
         read its latest logs (`pm2 logs --lines 50`), and check that the reverse proxy reaches it.",
        redact_url(&cfg.url)
    )
}

fn word(
    event: &Event,
    cfg: &HttpCheckConfig,
    check: &CheckRow,
    result: &ResultRow,
    incident_id: Option<i64>,
    policy: &Policy,
) -> NewAlert {
    let failed_with = result.error.clone().unwrap_or_else(|| "failed".to_owned());
    let threshold = format!(
        "DOWN after {} failed probe{} in a row (every {}, timeout {})",
        cfg.failures,
        if cfg.failures == 1 { "" } else { "s" },
        cfg.every,
        cfg.timeout
    );
    let base = NewAlert {
        dedup_key: String::new(),
        severity: Severity::Critical,
        source: cfg.name.clone(),
        kind: "http".to_owned(),
        title: String::new(),
        value: None,
        threshold: Some(threshold),
        hint: Some(cfg.hint.clone().unwrap_or_else(|| default_hint(cfg))),
        body: Some(format!("URL: {}", redact_url(&cfg.url))),
        silenced: false,
    };
    let incident = incident_id.unwrap_or_default();
    match event {
        Event::Down => NewAlert {
            dedup_key: format!("check:{}:down:{}", check.id, result.at_ms),
            title: format!("{} is DOWN", cfg.name),
            value: Some(failed_with),
            ..base
        },
        Event::StillDown { n, down_ms } => NewAlert {
            dedup_key: format!("incident:{incident}:remind:{n}"),
            title: format!(
                "{} is still DOWN (for {})",
                cfg.name,
                human_duration(*down_ms)
            ),
            value: Some(failed_with),
            ..base
        },
        Event::Up { down_ms } => NewAlert {
            dedup_key: format!("incident:{incident}:resolved"),
            severity: Severity::Resolved,
            title: format!("{} is UP again", cfg.name),
            value: Some(format!(
                "down for {}; now HTTP {} in {} ms",
                human_duration(*down_ms),
                result.status_code.unwrap_or_default(),
                result.latency_ms.unwrap_or_default()
            )),
            threshold: None,
            hint: None,
            ..base
        },
        Event::Flapping { downs_in_window } => {
            let first = *downs_in_window == i64::from(policy.flap_threshold) + 1;
            NewAlert {
                dedup_key: format!("check:{}:down:{}", check.id, result.at_ms),
                severity: if first {
                    Severity::Info
                } else {
                    Severity::Critical
                },
                title: if first {
                    format!("{} is flapping: alerts paused", cfg.name)
                } else {
                    format!("{} is DOWN (held: flapping)", cfg.name)
                },
                value: Some(format!(
                    "DOWN {downs_in_window} times within {}; now: {failed_with}",
                    human_duration(policy.flap_window_ms)
                )),
                threshold: Some(format!(
                    "more than {} DOWNs within {}",
                    policy.flap_threshold,
                    human_duration(policy.flap_window_ms)
                )),
                hint: Some(format!(
                    "Further DOWN/UP changes of {} are recorded but not sent until it goes {} \
                     without going DOWN more than {} times. Look for a restart loop or an \
                     overloaded backend.",
                    cfg.name,
                    human_duration(policy.flap_window_ms),
                    policy.flap_threshold
                )),
                // The notice itself goes out once; later held DOWNs are only recorded.
                silenced: !first,
                ..base
            }
        }
    }
}
