//! The job of one up/down check, whatever its kind: probe, record the result and the state
//! change in the store, raise the alert the rules call for.

use std::sync::Arc;
use std::time::Duration;

use crate::checks::{Check, FailureKind, Observation};
use crate::daemon::metrics::CheckLabels;
use crate::daemon::scheduler::{Job, Trigger};
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::rules::silence::{Subject, is_silenced};
use crate::rules::updown::{self, Policy};
use crate::store::{CheckRow, CheckState, IncidentChange, IncidentRow};

/// How long the store may take on top of the probe's own timeout before the run is
/// abandoned: the probe has its own timeout, this one only guards against the store hanging.
const STORE_GRACE: Duration = Duration::from_secs(30);

/// A check's row and open incident as its job last wrote them.
///
/// The job is their only writer (a probe never overlaps itself; `opswatch check` stores
/// nothing), so reading them back before every probe would cost two store round trips for
/// nothing. Empty at start and after anything but a plain state update, and then read from
/// the store: a restart or a failed write never acts on a guess.
#[derive(Debug, Default)]
pub struct CheckMemory(Option<(CheckRow, Option<IncidentRow>)>);

/// The scheduled job that runs `check`.
pub fn job(check: Arc<dyn Check>) -> Job {
    let memory = Arc::new(tokio::sync::Mutex::new(CheckMemory::default()));
    let timing = check.timing();
    let labels = labels(check.as_ref());
    Job {
        name: format!("{}:{}", check.kind(), check.name()),
        trigger: Trigger::Every(timing.every.get()),
        timeout: timing.timeout.get() + STORE_GRACE,
        run: Arc::new(move |app| {
            let check = check.clone();
            let memory = memory.clone();
            let labels = labels.clone();
            Box::pin(async move {
                // The app's clock, not the probe's, dates the result: reminders and the flap
                // window then follow a clock a test moves (in production both are the system
                // clock, read as the probe starts).
                let started = app.clock.now_ms();
                let mut seen = check.probe().await;
                seen.at_ms = started;
                app.metrics
                    .check_duration
                    .get_or_create(&labels)
                    .observe(seen.latency_ms.unwrap_or_default() as f64 / 1000.0);
                if let Some(failure) = seen
                    .failure
                    .as_ref()
                    .filter(|f| f.kind == FailureKind::Local)
                {
                    // Says nothing about the target: an error of opswatch, never a DOWN.
                    let what = format!("check {}: {}", check.name(), failure.text);
                    if app
                        .health
                        .record_local_fault(app.clock.now_ms(), what.clone())
                    {
                        tracing::error!(check = %check.name(), error = %what, "a check could not run: opswatch is out of descriptors or memory");
                    }
                    return Ok(());
                }
                let mut memory = memory.lock().await;
                process(&app, check.as_ref(), &mut memory, &seen).await?;
                Ok(())
            })
        }),
    }
}

/// The `/metrics` labels of a check.
pub fn labels(check: &dyn Check) -> CheckLabels {
    CheckLabels {
        check: check.name().to_owned(),
        kind: check.kind().as_str().to_owned(),
    }
}

/// Records what `check` saw and raises whatever alert it calls for.
pub async fn process(
    app: &AppState,
    check: &dyn Check,
    memory: &mut CheckMemory,
    seen: &Observation,
) -> anyhow::Result<Option<i64>> {
    let name = check.name();
    let kind = check.kind();
    let result = updown::result_row(seen);
    let (row, incident) = match memory.0.take() {
        Some(known) => known,
        None => {
            let row = match app.store.find_check(name).await? {
                Some(c) => c,
                None => app.store.ensure_check(name, kind).await?,
            };
            let incident = app.store.open_incident(row.id).await?;
            (row, incident)
        }
    };
    let timing = check.timing();
    let policy = Policy {
        failures: timing.failures,
        remind_every_ms: timing.remind_every.map(|d| d.as_millis_i64()),
        flap_threshold: app.config.alerts.flap_threshold,
        flap_window_ms: app.config.alerts.flap_window.as_millis_i64(),
    };
    let about_to_open = !result.ok
        && incident.is_none()
        && row.consecutive_failures + 1 >= i64::from(timing.failures);
    let downs = if about_to_open {
        app.store
            .count_incidents_since(row.id, result.at_ms - policy.flap_window_ms)
            .await?
    } else {
        0
    };
    let mut decision = updown::decide(&row, incident.as_ref(), &result, &policy, downs);
    let mut alert = decision.event.as_ref().map(|event| {
        updown::word(
            event,
            check,
            &row,
            seen,
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
            source: name,
            kind: kind.as_str(),
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
            &row,
            &decision.check,
            &result,
            &decision.change,
            alert.as_ref(),
            &app.channels,
        )
        .await?;
    if decision.change == IncidentChange::None {
        memory.0 = Some((decision.check.clone(), incident));
    }
    app.metrics
        .check_up
        .get_or_create(&labels(check))
        .set(i64::from(decision.check.state != CheckState::Down));
    if alert_id.is_some() && alert.as_ref().is_some_and(|a| !a.silenced) {
        app.wake_dispatcher();
    }
    if matches!(decision.change, IncidentChange::Open { .. }) {
        tracing::warn!(check = %name, kind = kind.as_str(), error = seen.error().unwrap_or(""), "check is DOWN");
    } else if matches!(decision.change, IncidentChange::Resolve { .. }) {
        tracing::info!(check = %name, kind = kind.as_str(), "check is UP again");
    }
    Ok(alert_id)
}
