//! The consecutive-failure state machine of a check that is either up or down, with
//! reminders and flap damping. Pure: it decides, the caller stores.
//!
//! - UP → `failures` failed results in a row → DOWN: an incident opens, one CRITICAL.
//! - While DOWN: nothing, except one reminder every `remind_every` (when set).
//! - DOWN → the first success → UP: the incident closes, one RESOLVED with the downtime.
//! - Flap damping: when a check went DOWN `flap_threshold` times within `flap_window`
//!   already, a further DOWN is recorded but not sent, and neither is its RESOLVED or any
//!   reminder; one notice says the check is flapping. Once a whole `flap_window` passes with
//!   fewer DOWNs than the threshold, the next DOWN alerts normally again.
//!
//! The alert texts are shared too ([`word`]); a kind brings only its hint, its target line
//! and how it sums up a passing probe (see `checks::Check`).

use crate::checks::{Check, Observation};
use crate::rules::alert::Severity;
use crate::store::{CheckRow, CheckState, IncidentChange, IncidentRow, NewAlert, ResultRow};

use super::human_duration;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub failures: u32,
    pub remind_every_ms: Option<i64>,
    pub flap_threshold: u32,
    pub flap_window_ms: i64,
}

/// What the rules want sent, before it is worded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Down,
    /// The `n`th reminder; down for `down_ms` so far.
    StillDown {
        n: i64,
        down_ms: i64,
    },
    Up {
        down_ms: i64,
    },
    /// This DOWN is held back: the check is flapping.
    Flapping {
        downs_in_window: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub check: CheckRow,
    pub change: IncidentChange,
    pub event: Option<Event>,
}

/// Applies one result. `downs_in_window` is how many incidents opened within the flap window
/// before this result (ignored unless the check is about to go DOWN).
pub fn decide(
    check: &CheckRow,
    incident: Option<&IncidentRow>,
    result: &ResultRow,
    policy: &Policy,
    downs_in_window: i64,
) -> Decision {
    let now = result.at_ms;
    let mut next = check.clone();
    next.last_result_ms = Some(now);
    if result.ok {
        next.consecutive_failures = 0;
        next.last_error = None;
        if next.state != CheckState::Up {
            next.state = CheckState::Up;
            next.last_change_ms = Some(now);
        }
        let Some(incident) = incident else {
            return Decision {
                check: next,
                change: IncidentChange::None,
                event: None,
            };
        };
        return Decision {
            check: next,
            change: IncidentChange::Resolve {
                incident_id: incident.id,
            },
            event: incident.notified.then_some(Event::Up {
                down_ms: now - incident.opened_ms,
            }),
        };
    }

    next.consecutive_failures += 1;
    next.last_error = result.error.clone();
    if let Some(incident) = incident {
        let since = incident.last_reminded_ms.unwrap_or(incident.opened_ms);
        let reminder_due = policy
            .remind_every_ms
            .is_some_and(|every| now - since >= every);
        if incident.notified && reminder_due {
            return Decision {
                check: next,
                change: IncidentChange::Remind {
                    incident_id: incident.id,
                },
                event: Some(Event::StillDown {
                    n: incident.reminders + 1,
                    down_ms: now - incident.opened_ms,
                }),
            };
        }
        return Decision {
            check: next,
            change: IncidentChange::None,
            event: None,
        };
    }
    if next.consecutive_failures < i64::from(policy.failures) {
        return Decision {
            check: next,
            change: IncidentChange::None,
            event: None,
        };
    }
    next.state = CheckState::Down;
    next.last_change_ms = Some(now);
    let flapping = downs_in_window >= i64::from(policy.flap_threshold);
    let cause = result.error.clone().unwrap_or_else(|| "failed".to_owned());
    Decision {
        check: next,
        change: IncidentChange::Open {
            cause,
            notified: !flapping,
        },
        event: Some(if flapping {
            Event::Flapping {
                downs_in_window: downs_in_window + 1,
            }
        } else {
            Event::Down
        }),
    }
}

/// The stored form of an observation.
pub fn result_row(seen: &Observation) -> ResultRow {
    ResultRow {
        at_ms: seen.at_ms,
        ok: seen.ok(),
        latency_ms: seen.latency_ms,
        status_code: seen.details.status_code,
        error_kind: seen.failure.as_ref().map(|f| f.kind.as_str().to_owned()),
        error: seen.error().map(str::to_owned),
        cert_expires_ms: seen.details.cert_expires_ms,
    }
}

/// The alert `event` raises for `check` (stored as `row`), worded for people.
pub fn word(
    event: &Event,
    check: &dyn Check,
    row: &CheckRow,
    seen: &Observation,
    incident_id: Option<i64>,
    policy: &Policy,
) -> NewAlert {
    let name = check.name();
    let timing = check.timing();
    let failed_with = seen.error().unwrap_or("failed").to_owned();
    let threshold = format!(
        "DOWN after {} failed probe{} in a row (every {}, timeout {})",
        timing.failures,
        if timing.failures == 1 { "" } else { "s" },
        timing.every,
        timing.timeout
    );
    let base = NewAlert {
        dedup_key: String::new(),
        severity: Severity::Critical,
        source: name.to_owned(),
        kind: check.kind().as_str().to_owned(),
        title: String::new(),
        value: None,
        threshold: Some(threshold),
        hint: Some(check.hint()),
        body: Some(format!("{}: {}", check.target_label(), check.target_line())),
        silenced: false,
    };
    let incident = incident_id.unwrap_or_default();
    match event {
        Event::Down => NewAlert {
            dedup_key: format!("check:{}:down:{}", row.id, seen.at_ms),
            title: format!("{name} is DOWN"),
            value: Some(failed_with),
            ..base
        },
        Event::StillDown { n, down_ms } => NewAlert {
            dedup_key: format!("incident:{incident}:remind:{n}"),
            title: format!("{name} is still DOWN (for {})", human_duration(*down_ms)),
            value: Some(failed_with),
            ..base
        },
        Event::Up { down_ms } => NewAlert {
            dedup_key: format!("incident:{incident}:resolved"),
            severity: Severity::Resolved,
            title: format!("{name} is UP again"),
            value: Some(format!(
                "down for {}; now {}",
                human_duration(*down_ms),
                check.summary(seen)
            )),
            threshold: None,
            hint: None,
            ..base
        },
        Event::Flapping { downs_in_window } => {
            let first = *downs_in_window == i64::from(policy.flap_threshold) + 1;
            NewAlert {
                dedup_key: format!("check:{}:down:{}", row.id, seen.at_ms),
                severity: if first {
                    Severity::Info
                } else {
                    Severity::Critical
                },
                title: if first {
                    format!("{name} is flapping: alerts paused")
                } else {
                    format!("{name} is DOWN (held: flapping)")
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
                    "Further DOWN/UP changes of {name} are recorded but not sent until it goes {} \
                     without going DOWN more than {} times. Look for a restart loop or an \
                     overloaded backend.",
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

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        failures: 2,
        remind_every_ms: Some(3_600_000),
        flap_threshold: 3,
        flap_window_ms: 3_600_000,
    };

    fn check() -> CheckRow {
        CheckRow {
            id: 1,
            name: "api".into(),
            kind: crate::checks::CheckKind::Http,
            state: CheckState::Unknown,
            consecutive_failures: 0,
            last_result_ms: None,
            last_change_ms: None,
            last_error: None,
        }
    }

    fn result(at_ms: i64, ok: bool) -> ResultRow {
        ResultRow {
            at_ms,
            ok,
            latency_ms: Some(5),
            status_code: Some(if ok { 200 } else { 503 }),
            error_kind: (!ok).then(|| "status".into()),
            error: (!ok).then(|| "HTTP 503".into()),
            cert_expires_ms: None,
        }
    }

    fn incident(opened_ms: i64, notified: bool) -> IncidentRow {
        IncidentRow {
            id: 9,
            check_id: 1,
            opened_ms,
            resolved_ms: None,
            cause: "HTTP 503".into(),
            last_reminded_ms: None,
            reminders: 0,
            notified,
        }
    }

    #[test]
    fn one_failure_is_nothing_two_are_down() {
        let first = decide(&check(), None, &result(1, false), &POLICY, 0);
        assert_eq!(first.event, None);
        assert_eq!(first.change, IncidentChange::None);
        let second = decide(&first.check, None, &result(2, false), &POLICY, 0);
        assert_eq!(second.event, Some(Event::Down));
        assert_eq!(second.check.state, CheckState::Down);
        assert!(matches!(
            second.change,
            IncidentChange::Open { notified: true, .. }
        ));
    }

    #[test]
    fn still_down_is_silent_until_a_reminder_is_due() {
        let mut c = check();
        c.state = CheckState::Down;
        c.consecutive_failures = 5;
        let inc = incident(0, true);
        let quiet = decide(&c, Some(&inc), &result(3_599_999, false), &POLICY, 1);
        assert_eq!(quiet.event, None);
        let remind = decide(&c, Some(&inc), &result(3_600_000, false), &POLICY, 1);
        assert_eq!(
            remind.event,
            Some(Event::StillDown {
                n: 1,
                down_ms: 3_600_000
            })
        );
        let no_reminders = Policy {
            remind_every_ms: None,
            ..POLICY
        };
        assert_eq!(
            decide(&c, Some(&inc), &result(9_000_000, false), &no_reminders, 1).event,
            None
        );
    }

    #[test]
    fn recovery_resolves_with_the_downtime() {
        let mut c = check();
        c.state = CheckState::Down;
        let up = decide(
            &c,
            Some(&incident(1_000, true)),
            &result(61_000, true),
            &POLICY,
            1,
        );
        assert_eq!(up.event, Some(Event::Up { down_ms: 60_000 }));
        assert_eq!(up.change, IncidentChange::Resolve { incident_id: 9 });
        assert_eq!(up.check.state, CheckState::Up);
    }

    #[test]
    fn flapping_holds_the_down_its_resolved_and_reminders() {
        let mut c = check();
        c.consecutive_failures = 1;
        let held = decide(&c, None, &result(10, false), &POLICY, 3);
        assert_eq!(held.event, Some(Event::Flapping { downs_in_window: 4 }));
        assert!(matches!(
            held.change,
            IncidentChange::Open {
                notified: false,
                ..
            }
        ));
        let inc = incident(10, false);
        assert_eq!(
            decide(
                &held.check,
                Some(&inc),
                &result(9_999_999, false),
                &POLICY,
                4
            )
            .event,
            None
        );
        let up = decide(
            &held.check,
            Some(&inc),
            &result(10_000_000, true),
            &POLICY,
            4,
        );
        assert_eq!(up.event, None, "a held incident resolves silently");
        assert_eq!(up.change, IncidentChange::Resolve { incident_id: 9 });
    }
}
