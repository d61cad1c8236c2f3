//! What an alert is, independent of how it is sent.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
    Resolved,
    /// A new dispute of the app: sent at once, never digested.
    Dispute,
}

crate::store::stored_word!(Severity, "severity", {
    Severity::Critical => "critical",
    Severity::Warning => "warning",
    Severity::Info => "info",
    Severity::Resolved => "resolved",
    Severity::Dispute => "dispute",
});

/// One alert as rules raise it and channels render it. Every value is plain text: channels
/// escape it for their own format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Row id in the alert log.
    pub id: i64,
    pub severity: Severity,
    /// The check or job that raised it (`api`, `disk:/`, `pm2:worker`, `digest`).
    pub source: String,
    /// The kind of check (`http`, `system`, `pm2`, `systemd`, `digest`, `report`, `test`).
    pub kind: String,
    /// One line: what happened (`api is DOWN`).
    pub title: String,
    /// What was measured (`HTTP 503 after 2 failures`, `91.2 %`).
    pub value: Option<String>,
    /// What it was compared with (`2 consecutive failures`, `> 90 %`).
    pub threshold: Option<String>,
    /// What to do about it (runbook text).
    pub hint: Option<String>,
    /// Longer free text: digest lines, report summary, top processes.
    pub body: Option<String>,
    /// When it was raised, unix epoch ms.
    pub created_ms: i64,
}
