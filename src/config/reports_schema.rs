//! `[reports.*]` and `[restart]`: the scheduled reports and the scheduled restart. Key names
//! are a contract (PRODUCT.md, "Contract, second part").

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::schedule::Schedule;

fn cron(s: &str) -> Schedule {
    s.parse().expect("built-in schedule is valid")
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    pub daily: DailyReportConfig,
    pub weekly: WeeklyReportConfig,
    pub security: SecurityReportConfig,
}

/// The daily summary: the operator's own numbers and the last 24 hours of operations.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DailyReportConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: Schedule,
    /// Queries against `[database]`: each returns one number or a small table (≤ 10 rows).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stats: Vec<StatConfig>,
}

impl Default for DailyReportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: cron("0 9 * * *"),
            stats: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatConfig {
    pub name: String,
    pub sql: String,
}

/// The weekly health report: error-log scan, trends, restarts, thresholds, incidents.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeeklyReportConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: Schedule,
    /// Globs of log files (`*` and `?` in the file name); PM2's logs are added when PM2 is
    /// watched. Rotated siblings (`NAME.1`, `NAME.2.gz`, ...) are followed.
    pub logs: Vec<String>,
    /// Substrings counted in the logs (case-sensitive).
    pub patterns: Vec<String>,
    /// At most this many MiB are read per run; the rest waits for the next run.
    pub scan_limit_mib: u64,
}

impl Default for WeeklyReportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: cron("0 0 * * 1"),
            logs: Vec::new(),
            patterns: vec!["ERROR".into(), "FATAL".into(), "panic".into()],
            scan_limit_mib: 512,
        }
    }
}

/// The monthly security report, and the daily certificate-expiry check.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityReportConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: Schedule,
    /// sshd's log; when it does not exist, the journal is read instead.
    pub auth_log: PathBuf,
    /// Files that must not be world-readable or world-writable (`.env`, keys).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_files: Vec<PathBuf>,
    /// When the certificate expiry of every HTTPS check is looked at (daily).
    pub tls_schedule: Schedule,
    /// WARNING when a certificate expires within this many days ...
    pub tls_warn_days: u32,
    /// ... CRITICAL within this many.
    pub tls_crit_days: u32,
}

impl Default for SecurityReportConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: cron("0 10 1 * *"),
            auth_log: PathBuf::from("/var/log/auth.log"),
            secret_files: Vec::new(),
            tls_schedule: cron("0 8 * * *"),
            tls_warn_days: 21,
            tls_crit_days: 7,
        }
    }
}

/// The scheduled restart; nothing runs unless `enabled = true`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    /// PM2 apps to restart: `["all"]` or names.
    pub pm2: Vec<String>,
    /// systemd units to restart.
    pub units: Vec<String>,
    /// How long to wait after the restart before every HTTP and process check runs once.
    pub verify_after: HumanDuration,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            schedule: cron("0 1 * * 5"),
            pm2: vec!["all".into()],
            units: Vec::new(),
            verify_after: HumanDuration::from_secs(30),
        }
    }
}
