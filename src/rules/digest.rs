//! The warning digest: every warning seen since the last digest, one line each, sent as one
//! message on `digest.schedule`. An empty digest is not sent; warnings matched by a silence
//! wait for the first digest after it.

use chrono::{DateTime, Utc};

use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{DigestItem, NewAlert};

use super::silence::{Subject, is_silenced};

/// Sends the digest due at the schedule's latest occurrence; returns its alert id, if any.
pub async fn send(app: &AppState) -> anyhow::Result<Option<i64>> {
    let now = app.clock.now_ms();
    let at = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_else(Utc::now);
    // The slot names the digest: a restart or a second run in the same slot sends nothing new.
    let slot = app
        .config
        .digest
        .schedule
        .last_at_or_before(at)
        .map_or(now, |t| t.timestamp_millis());
    let mut items = Vec::new();
    for item in app.store.pending_digest_items().await? {
        let subject = Subject {
            source: &item.source,
            kind: &item.kind,
            severity: Severity::Warning,
        };
        if !is_silenced(app, subject, now).await {
            items.push(item);
        }
    }
    if items.is_empty() {
        return Ok(None);
    }
    let alert = compose(&items, slot);
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let id = app
        .store
        .record_digest(&alert, &ids, &app.channels, now)
        .await?;
    if id.is_some() {
        app.wake_dispatcher();
    }
    Ok(id)
}

fn hhmm(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map_or_else(String::new, |t| t.format("%d %b %H:%M").to_string())
}

fn compose(items: &[DigestItem], slot_ms: i64) -> NewAlert {
    let first = items.iter().map(|i| i.first_ms).min().unwrap_or(slot_ms);
    let lines: Vec<String> = items
        .iter()
        .map(|i| {
            let worst = match (i.worst, &i.unit) {
                (Some(w), Some(u)) => format!(", worst {w:.1}{u}"),
                (Some(w), None) => format!(", worst {w:.1}"),
                _ => String::new(),
            };
            let seen = if i.count == 1 {
                "seen once".to_owned()
            } else {
                format!("seen {}×", i.count)
            };
            let state = if i.active { "still active" } else { "cleared" };
            format!(
                "• {}: {seen}{worst}, {} – {} UTC, {state}",
                i.title,
                hhmm(i.first_ms),
                hhmm(i.last_ms)
            )
        })
        .collect();
    let active = items.iter().filter(|i| i.active).count();
    NewAlert {
        dedup_key: format!("digest:{slot_ms}"),
        severity: Severity::Warning,
        source: "digest".to_owned(),
        kind: "digest".to_owned(),
        title: format!(
            "{} warning{} since {} ({active} still active)",
            items.len(),
            if items.len() == 1 { "" } else { "s" },
            hhmm(first)
        ),
        value: None,
        threshold: None,
        hint: Some("Each line says what to look at; the dashboard has the history.".to_owned()),
        body: Some(lines.join("\n")),
        silenced: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, count: i64, worst: Option<f64>, active: bool) -> DigestItem {
        DigestItem {
            id: 1,
            key: key.into(),
            source: key.into(),
            kind: "system".into(),
            title: format!("{key} is high"),
            detail: None,
            first_ms: 1_795_000_000_000,
            last_ms: 1_795_000_900_000,
            count,
            worst,
            unit: Some(" %".into()),
            active,
        }
    }

    #[test]
    fn one_line_per_warning_with_count_worst_and_state() {
        let a = compose(
            &[
                item("disk /", 16, Some(91.0), true),
                item("memory", 1, Some(92.5), false),
            ],
            7,
        );
        assert_eq!(a.dedup_key, "digest:7");
        assert_eq!(a.severity, Severity::Warning);
        assert!(a.title.starts_with("2 warnings since"), "{}", a.title);
        assert!(a.title.ends_with("(1 still active)"), "{}", a.title);
        let body = a.body.unwrap();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains("disk / is high: seen 16×, worst 91.0 %")
                && lines[0].ends_with("still active"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("seen once") && lines[1].ends_with("cleared"),
            "{}",
            lines[1]
        );
    }
}
