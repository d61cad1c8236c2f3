//! Scheduled reports: the daily summary, the weekly health report and the monthly security
//! report. Each one gathers a structured value (stored as JSON), renders it as text (stored,
//! printed by `opswatch report`) and as one short message (headline numbers, what needs
//! attention, a link to its dashboard page when `server.public_url` is set).
//!
//! A scheduled report is stored once per schedule occurrence: the store refuses a second
//! report for the same occurrence, and only the first one is sent.

pub mod daily;
pub mod logscan;
pub mod security;
pub mod weekly;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{NewAlert, NewReport, now_ms};

/// This machine's name, as stored with every per-host fact.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Daily,
    Weekly,
    Security,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Security => "security",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Daily => "Daily summary",
            Self::Weekly => "Weekly health report",
            Self::Security => "Monthly security report",
        }
    }
}

/// Something that needs attention, and what to do about it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub what: String,
    pub todo: String,
}

impl Finding {
    pub fn new(what: impl Into<String>, todo: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            todo: todo.into(),
        }
    }
}

/// A gathered and rendered report.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: Kind,
    /// One line: the headline numbers.
    pub summary: String,
    /// Short lines for the message, before the findings.
    pub headline: Vec<String>,
    pub findings: Vec<Finding>,
    /// The gathered value.
    pub body: serde_json::Value,
    /// The whole report as text.
    pub text: String,
}

/// How many findings the short message lists; the stored report has all of them.
const MESSAGE_FINDINGS: usize = 8;

impl Report {
    /// The one message sent for this report.
    pub fn message(&self, host: &str, id: Option<i64>, public_url: Option<&str>) -> NewAlert {
        let mut body = self.headline.join("\n");
        if !self.findings.is_empty() {
            body.push_str("\n\nNeeds attention:");
            for f in self.findings.iter().take(MESSAGE_FINDINGS) {
                body.push_str(&format!("\n• {} → {}", f.what, f.todo));
            }
            if self.findings.len() > MESSAGE_FINDINGS {
                body.push_str(&format!(
                    "\n• … and {} more in the report",
                    self.findings.len() - MESSAGE_FINDINGS
                ));
            }
        }
        if let (Some(base), Some(id)) = (public_url, id) {
            body.push_str(&format!("\n\n{}/reports/{id}", base.trim_end_matches('/')));
        }
        NewAlert {
            dedup_key: String::new(),
            severity: Severity::Info,
            source: format!("report:{}", self.kind.as_str()),
            kind: "report".to_owned(),
            title: format!("{} · {host}: {}", self.kind.title(), self.summary),
            value: None,
            threshold: None,
            hint: None,
            body: Some(body),
            silenced: false,
        }
    }
}

/// Stores `report` (for `occurrence` when scheduled) and, when `send`, puts its message in
/// the outbox. Returns the report id, or `None` when this occurrence was already stored (and
/// so already sent): a report never goes out twice for one occurrence.
pub async fn publish(
    app: &AppState,
    report: &Report,
    occurrence: Option<DateTime<Utc>>,
    send: bool,
) -> anyhow::Result<Option<i64>> {
    let host = this_host();
    let now = now_ms();
    let occurrence_ms = occurrence.map(|o| o.timestamp_millis());
    let Some(id) = app
        .store
        .insert_report(&NewReport {
            host: &host,
            kind: report.kind.as_str(),
            created_ms: now,
            occurrence_ms,
            summary: &report.summary,
            body: &report.body,
            text: &report.text,
        })
        .await?
    else {
        tracing::info!(
            kind = report.kind.as_str(),
            "report for this occurrence already stored; not sent again"
        );
        return Ok(None);
    };
    if send {
        let mut alert = report.message(&host, Some(id), app.config.server.public_url.as_deref());
        alert.dedup_key = format!("report:{id}");
        if app
            .store
            .record_alert(&alert, &app.channels, now)
            .await?
            .is_some()
        {
            app.wake_dispatcher();
        }
    }
    Ok(Some(id))
}

/// `28 Nov 09:00 UTC`.
pub fn fmt_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%d %b %H:%M UTC").to_string(),
    )
}

/// `98.5 %`, or `n/a`.
pub fn fmt_pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} %"))
}

/// Appends the findings section every report text ends with.
pub fn push_findings(text: &mut String, findings: &[Finding]) {
    if findings.is_empty() {
        text.push_str("\nNothing needs attention.\n");
        return;
    }
    text.push_str(&format!("\nNeeds attention ({}):\n", findings.len()));
    for f in findings {
        text.push_str(&format!("  • {}\n    → {}\n", f.what, f.todo));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(findings: usize) -> Report {
        Report {
            kind: Kind::Daily,
            summary: "2 to look at".into(),
            headline: vec!["new users: 3".into()],
            findings: (0..findings)
                .map(|i| Finding::new(format!("thing {i}"), "fix it"))
                .collect(),
            body: serde_json::Value::Null,
            text: String::new(),
        }
    }

    #[test]
    fn the_message_is_short_says_what_to_do_and_links_to_the_page() {
        let m = report(10).message("web-1", Some(42), Some("https://ops.example.com/"));
        assert_eq!(m.title, "Daily summary · web-1: 2 to look at");
        assert_eq!(m.kind, "report");
        let body = m.body.unwrap();
        assert!(
            body.starts_with("new users: 3\n\nNeeds attention:"),
            "{body}"
        );
        assert!(body.contains("• thing 0 → fix it"));
        assert!(body.contains("• thing 7 → fix it"));
        assert!(!body.contains("thing 8"), "{body}");
        assert!(body.contains("… and 2 more in the report"));
        assert!(
            body.ends_with("\n\nhttps://ops.example.com/reports/42"),
            "{body}"
        );
        let plain = report(0).message("web-1", Some(1), None).body.unwrap();
        assert_eq!(plain, "new users: 3", "no public_url: no link");
    }
}
