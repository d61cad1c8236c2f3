//! Threshold conditions: a value against warning and critical limits, with a minimum
//! duration (every sample over the sustain window must cross) and hysteresis (a raised level
//! clears only below its limit minus a margin). A change of level becomes:
//! - to CRITICAL: one CRITICAL alert now (recorded, not sent, inside a silence);
//! - from CRITICAL down: one RESOLVED, if the CRITICAL was sent;
//! - WARNING: counted into the next digest on every evaluation it holds, never sent alone.

use serde::Serialize;

use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{ConditionUpdate, NewAlert, WarningSeen};

use super::silence::{Subject, is_silenced};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Ok,
    Warning,
    Critical,
}

crate::store::stored_word!(Level, "condition level", {
    Level::Ok => "ok",
    Level::Warning => "warning",
    Level::Critical => "critical",
});

/// Limits of one value; higher is worse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    /// Percent of a limit under which a raised level clears.
    pub hysteresis_pct: f64,
}

impl Limits {
    fn raw(&self, value: f64, slack: f64) -> Level {
        let over = |limit: Option<f64>| limit.is_some_and(|l| value > l - l.abs() * slack);
        if over(self.crit) {
            Level::Critical
        } else if over(self.warn) {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The next level: rises only when even the lowest sample of the sustain window crossed
    /// (`sustained_min`), falls only when the latest value is below the limit minus the margin.
    pub fn next(&self, previous: Level, sustained_min: f64, latest: f64) -> Level {
        let rising = self.raw(sustained_min, 0.0);
        let holding = self.raw(latest, self.hysteresis_pct / 100.0).min(previous);
        rising.max(holding)
    }

    pub fn describe(&self, unit: &str) -> String {
        match (self.warn, self.crit) {
            (Some(w), Some(c)) => format!("warning above {w}{unit}, critical above {c}{unit}"),
            (Some(w), None) => format!("warning above {w}{unit}"),
            (None, Some(c)) => format!("critical above {c}{unit}"),
            (None, None) => String::new(),
        }
    }
}

/// One condition evaluated now, with the words for its alerts.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Unique key of the condition (`disk:/`, `pm2:api:status`).
    pub key: String,
    /// What it is about (`disk /`, `pm2:api`): the alert's source, matched by silences.
    pub source: String,
    pub kind: &'static str,
    pub level: Level,
    pub value: f64,
    pub unit: &'static str,
    /// One line for the current level (`Disk / is 91 % full`).
    pub title: String,
    pub value_text: String,
    pub threshold_text: String,
    pub hint: String,
    /// Longer context: top processes, log excerpts.
    pub body: Option<String>,
    /// Title of the RESOLVED message (`Disk / is back to 70 %`).
    pub resolved_title: String,
}

/// Stores the assessment and raises what its change of level calls for.
pub async fn apply(app: &AppState, a: Assessment, now_ms: i64) -> anyhow::Result<()> {
    let previous = app.store.find_condition(&a.key).await?;
    let prev_level = previous.as_ref().map_or(Level::Ok, |p| p.level);
    let prev_notified = previous.as_ref().is_none_or(|p| p.notified);
    let since_ms = previous.as_ref().map_or(now_ms, |p| p.since_ms);
    let mut update = ConditionUpdate {
        key: a.key.clone(),
        level: a.level,
        value: Some(a.value),
        notified: if a.level == prev_level {
            prev_notified
        } else {
            true
        },
        alert: None,
        warning: None,
    };
    if a.level == Level::Critical && prev_level != Level::Critical {
        let silenced = is_silenced(
            app,
            Subject {
                source: &a.source,
                kind: a.kind,
                severity: Severity::Critical,
            },
            now_ms,
        )
        .await;
        update.notified = !silenced;
        update.alert = Some(NewAlert {
            dedup_key: format!("cond:{}:critical:{now_ms}", a.key),
            severity: Severity::Critical,
            source: a.source.clone(),
            kind: a.kind.to_owned(),
            title: a.title.clone(),
            value: Some(a.value_text.clone()),
            threshold: Some(a.threshold_text.clone()),
            hint: Some(a.hint.clone()),
            body: a.body.clone(),
            silenced,
        });
    } else if prev_level == Level::Critical && a.level < Level::Critical {
        update.alert = Some(NewAlert {
            dedup_key: format!("cond:{}:resolved:{since_ms}", a.key),
            severity: Severity::Resolved,
            source: a.source.clone(),
            kind: a.kind.to_owned(),
            title: a.resolved_title.clone(),
            value: Some(format!(
                "{}; critical for {}",
                a.value_text,
                super::human_duration(now_ms - since_ms)
            )),
            threshold: None,
            hint: None,
            body: None,
            // Nobody was told it broke, so nobody is told it mended.
            silenced: !prev_notified,
        });
    }
    if a.level == Level::Warning {
        update.warning = Some(WarningSeen {
            source: a.source.clone(),
            kind: a.kind.to_owned(),
            title: a.title.clone(),
            detail: Some(format!("{} ({})", a.value_text, a.threshold_text)),
            value: Some(a.value),
            unit: Some(a.unit.to_owned()).filter(|u| !u.is_empty()),
        });
    }
    let sends = update.alert.as_ref().is_some_and(|al| !al.silenced);
    if let Some(alert) = &update.alert {
        tracing::info!(condition = %a.key, severity = alert.severity.as_str(), silenced = alert.silenced, "condition changed");
    }
    app.store
        .record_condition(&update, &app.channels, now_ms)
        .await?;
    if sends {
        app.wake_dispatcher();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK: Limits = Limits {
        warn: Some(80.0),
        crit: Some(95.0),
        hysteresis_pct: 5.0,
    };

    #[test]
    fn a_spike_is_not_an_alert() {
        // Latest sample is 99 % but the window's lowest was 50 %.
        assert_eq!(DISK.next(Level::Ok, 50.0, 99.0), Level::Ok);
        assert_eq!(DISK.next(Level::Ok, 81.0, 99.0), Level::Warning);
        assert_eq!(DISK.next(Level::Ok, 96.0, 97.0), Level::Critical);
    }

    #[test]
    fn raised_levels_clear_only_below_the_margin() {
        // Warning at 80: stays until below 76.
        assert_eq!(DISK.next(Level::Warning, 70.0, 77.0), Level::Warning);
        assert_eq!(DISK.next(Level::Warning, 70.0, 75.9), Level::Ok);
        // Critical at 95: falls to warning below 90.25, not to ok.
        assert_eq!(DISK.next(Level::Critical, 85.0, 91.0), Level::Critical);
        assert_eq!(DISK.next(Level::Critical, 85.0, 88.0), Level::Warning);
    }

    #[test]
    fn warn_only_and_crit_only_limits() {
        let swap_crit_only = Limits {
            warn: None,
            crit: Some(5.0),
            hysteresis_pct: 0.0,
        };
        assert_eq!(swap_crit_only.next(Level::Ok, 6.0, 6.0), Level::Critical);
        assert_eq!(swap_crit_only.next(Level::Critical, 0.0, 5.0), Level::Ok);
        assert_eq!(
            swap_crit_only.describe(" restarts"),
            "critical above 5 restarts"
        );
    }
}
