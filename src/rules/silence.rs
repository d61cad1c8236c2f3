//! Silences and maintenance windows: which alerts are recorded but not sent.
//!
//! Config silences are one-off (`until`) or recurring (`schedule` + `duration`); API silences
//! live in the store. A matcher field left out matches anything; a check name ending in `*`
//! matches a prefix.

use chrono::{DateTime, Utc};

use crate::config::SilenceConfig;
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::SilenceRow;

/// What an alert is about, for matching.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub source: &'a str,
    pub kind: &'a str,
    pub severity: Severity,
}

fn name_matches(pattern: Option<&str>, name: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        },
    }
}

fn field_matches(pattern: Option<&str>, value: &str) -> bool {
    pattern.is_none_or(|p| p == value)
}

/// Whether a config silence covers `at`.
pub fn config_silence_active(s: &SilenceConfig, at: DateTime<Utc>) -> bool {
    match (&s.until, &s.schedule, &s.duration) {
        (Some(until), _, _) => chrono::DateTime::parse_from_rfc3339(until).is_ok_and(|u| at < u),
        (None, Some(schedule), Some(duration)) => {
            schedule.last_at_or_before(at).is_some_and(|start| {
                at < start + chrono::Duration::milliseconds(duration.as_millis_i64())
            })
        }
        _ => false,
    }
}

fn config_matches(s: &SilenceConfig, subject: Subject<'_>) -> bool {
    name_matches(s.check.as_deref(), subject.source)
        && field_matches(s.kind.as_deref(), subject.kind)
        && s.severity.is_none_or(|sev| sev == subject.severity)
}

fn row_matches(s: &SilenceRow, subject: Subject<'_>, now_ms: i64) -> bool {
    s.starts_ms <= now_ms
        && now_ms < s.ends_ms
        && name_matches(s.check_name.as_deref(), subject.source)
        && field_matches(s.kind.as_deref(), subject.kind)
        && field_matches(s.severity.as_deref(), subject.severity.as_str())
}

/// Whether `subject` is silenced at `now_ms` by the config or an API silence. A store that
/// cannot be read silences nothing: better one alert too many than one lost.
pub async fn is_silenced(app: &AppState, subject: Subject<'_>, now_ms: i64) -> bool {
    let at = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_else(Utc::now);
    if app
        .config
        .silence
        .iter()
        .any(|s| config_silence_active(s, at) && config_matches(s, subject))
    {
        return true;
    }
    match app.store.current_silences(now_ms).await {
        Ok(rows) => rows.iter().any(|s| row_matches(s, subject, now_ms)),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot read silences; not silencing"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn silence(toml_text: &str) -> SilenceConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn recurring_window_covers_its_duration_only() {
        let s = silence("schedule = \"0 1 * * 5\"\nduration = \"30m\"\nkind = \"http\"\n");
        // 2026-11-27 is a Friday.
        let inside = Utc.with_ymd_and_hms(2026, 11, 27, 1, 29, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 27, 1, 30, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 11, 27, 0, 59, 59).unwrap();
        assert!(config_silence_active(&s, inside));
        assert!(!config_silence_active(&s, after));
        assert!(!config_silence_active(&s, before));
    }

    #[test]
    fn matchers() {
        let s = silence(
            "check = \"pm2:*\"\nseverity = \"warning\"\nuntil = \"2030-01-01T00:00:00Z\"\n",
        );
        let subject = |source, severity| Subject {
            source,
            kind: "pm2",
            severity,
        };
        assert!(config_matches(&s, subject("pm2:worker", Severity::Warning)));
        assert!(!config_matches(
            &s,
            subject("pm2:worker", Severity::Critical)
        ));
        assert!(!config_matches(&s, subject("api", Severity::Warning)));
    }
}
