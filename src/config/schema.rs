//! The TOML schema. Key names are a contract (PRODUCT.md): outside tests and operators' files
//! rely on them. Every key is optional; defaults are the operators' runbook values.
//! `deny_unknown_fields` everywhere, so a typo is an error rather than a silently ignored key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use super::schedule::Schedule;
use super::secret::{DbUrl, Secret};

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name every stored fact of this instance carries; default: this machine's hostname.
    pub host: HostName,
    /// A `.env`-style file; `${VAR}` is looked up there before the environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub webhook: Vec<WebhookConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCheckConfig>,
    /// TCP port checks; the block's type lives with its check (`checks/tcp.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<crate::checks::tcp::TcpCheckConfig>,
    pub system: SystemConfig,
    pub digest: DigestConfig,
    pub pm2: Pm2Config,
    pub systemd: SystemdConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disputes: Option<DisputesConfig>,
    pub vacuum: VacuumConfig,
    pub auth: AuthConfig,
    pub alerts: AlertsConfig,
    pub history: HistoryConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silence: Vec<SilenceConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatConfig>,
    pub reports: super::ReportsConfig,
    pub restart: super::RestartConfig,
    pub status_page: StatusPageConfig,
}

/// The top-level `host` key: which host this instance's checks, series, conditions and store
/// probe belong to in the store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct HostName(pub String);

impl Default for HostName {
    fn default() -> Self {
        Self(default_host())
    }
}

impl std::ops::Deref for HostName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// This machine's hostname (`/proc/sys/kernel/hostname`), or `localhost` when it cannot be
/// read.
pub fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the dashboard, API, /health and /metrics listen on.
    pub listen: SocketAddr,
    /// How long shutdown waits for in-flight requests and jobs before it gives up on them.
    pub shutdown_grace: HumanDuration,
    /// The address operators reach the dashboard at (`https://ops.example.com`). An `https`
    /// URL marks the session cookie `Secure`; its origin is accepted as same-origin on forms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (addresses or
    /// CIDR blocks). Anyone else could forge them to dodge the login rate limit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<super::IpRange>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            shutdown_grace: HumanDuration::from_secs(10),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH` (folder created) or `postgres://user:pass@host/db`.
    pub url: DbUrl,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: DbUrl::new("sqlite://./data/opswatch.db"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    pub bot_token: Secret,
    pub chat_id: String,
    #[serde(default = "default_telegram_api")]
    pub api_base: String,
    /// Forum topic to post into (`message_thread_id` of sendMessage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
    /// Send every message without a sound.
    #[serde(default)]
    pub disable_notification: bool,
    /// RESOLVED messages arrive without a sound, so recoveries do not wake anyone.
    #[serde(default = "yes")]
    pub silent_resolved: bool,
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    /// Often carries a token in its path (Slack, Discord): treated as a secret.
    pub url: Secret,
    #[serde(default)]
    pub format: WebhookFormat,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The alert as a JSON object.
    #[default]
    Json,
    /// `{"text": "..."}`, accepted by Slack, Mattermost, Rocket.Chat and Discord's /slack.
    Slack,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    pub name: String,
    pub url: String,
    #[serde(default = "every_5m")]
    pub every: HumanDuration,
    #[serde(default = "timeout_10s")]
    pub timeout: HumanDuration,
    /// Consecutive failures before the target is DOWN.
    #[serde(default = "two")]
    pub failures: u32,
    /// Reminder while still down; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<HumanDuration>,
    #[serde(default)]
    pub method: HttpMethod,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Accepted statuses; default 200–399. Entries are codes (`200`) or ranges (`"200-299"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<Vec<StatusMatcher>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Accept invalid or self-signed certificates.
    #[serde(default)]
    pub insecure: bool,
    /// Runbook text sent with the alert; a built-in hint when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn every_5m() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn timeout_10s() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn two() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
}

/// One accepted status code, or an inclusive range written `"200-299"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMatcher {
    pub from: u16,
    pub to: u16,
}

impl StatusMatcher {
    pub fn matches(&self, status: u16) -> bool {
        (self.from..=self.to).contains(&status)
    }
}

impl<'de> Deserialize<'de> for StatusMatcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Code(u16),
            Text(String),
        }
        let bad = |s: &str| {
            serde::de::Error::custom(format!(
                "invalid status {s:?}: write a code like 200 or a range like \"200-299\""
            ))
        };
        let (from, to) = match Raw::deserialize(d)? {
            Raw::Code(c) => (c, c),
            Raw::Text(s) => match s.split_once('-') {
                Some((a, b)) => (
                    a.trim().parse().map_err(|_| bad(&s))?,
                    b.trim().parse().map_err(|_| bad(&s))?,
                ),
                None => {
                    let c = s.trim().parse().map_err(|_| bad(&s))?;
                    (c, c)
                }
            },
        };
        if !(100..=599).contains(&from) || !(100..=599).contains(&to) || from > to {
            return Err(bad(&format!("{from}-{to}")));
        }
        Ok(Self { from, to })
    }
}

impl Serialize for StatusMatcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.from == self.to {
            s.serialize_u16(self.from)
        } else {
            s.collect_str(&format_args!("{}-{}", self.from, self.to))
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Whether host metrics are sampled at all.
    pub enabled: bool,
    /// How often the rules look at the samples (and may alert).
    pub every: HumanDuration,
    /// How often a sample is taken and stored (cheap).
    pub sample_every: HumanDuration,
    pub disk_warn: f64,
    pub disk_crit: f64,
    pub inode_warn: f64,
    pub memory_warn: f64,
    pub memory_crit: f64,
    pub swap_warn: f64,
    pub swap_crit: f64,
    pub load_warn: f64,
    pub load_crit: f64,
    /// Compare load with thresholds per CPU core instead of absolute.
    pub load_per_core: bool,
    /// A threshold must be crossed by every sample for this long before it alerts, so a
    /// spike is not an alert.
    pub sustain: HumanDuration,
    /// A raised condition clears only below its threshold minus this percent of it, so a
    /// value hovering at the threshold does not flap.
    pub hysteresis: f64,
    /// Per-mount overrides, keyed by mount point: `[system.mounts."/var"] disk_warn = 70`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mounts: BTreeMap<String, MountThresholds>,
}

impl Default for SystemConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            every: HumanDuration::from_secs(15 * 60),
            sample_every: HumanDuration::from_secs(60),
            disk_warn: 80.0,
            disk_crit: 95.0,
            inode_warn: 80.0,
            memory_warn: 90.0,
            memory_crit: 98.0,
            swap_warn: 20.0,
            swap_crit: 80.0,
            load_warn: 8.0,
            load_crit: 12.0,
            load_per_core: false,
            sustain: HumanDuration::from_secs(300),
            hysteresis: 5.0,
            mounts: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MountThresholds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_warn: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_crit: Option<f64>,
    /// Leave this mount out entirely.
    #[serde(default)]
    pub ignore: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    pub schedule: Schedule,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            schedule: "0 */4 * * *".parse().expect("built-in schedule is valid"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pm2Config {
    /// On by default when `pm2` is on PATH; `false` turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// PM2_HOME of the user whose apps are watched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home: Option<PathBuf>,
    pub every: HumanDuration,
}

impl Default for Pm2Config {
    fn default() -> Self {
        Self {
            enabled: None,
            home: None,
            every: HumanDuration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdConfig {
    pub units: Vec<String>,
    pub every: HumanDuration,
}

impl Default for SystemdConfig {
    fn default() -> Self {
        Self {
            units: Vec::new(),
            every: HumanDuration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: DbUrl,
    /// When the health report runs (daily, UTC).
    #[serde(default = "db_report_schedule")]
    pub schedule: Schedule,
    /// A table with more dead tuples than this is a WARNING.
    #[serde(default = "dead_tuples_warn")]
    pub dead_tuples_warn: i64,
    /// The app's own migrations table (`schema.table` or `table`) when it is not one of the
    /// common ones opswatch finds by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations_table: Option<String>,
    /// Every query of the report and of the disputes source is cut off after this long.
    #[serde(default = "statement_timeout_30s")]
    pub statement_timeout: HumanDuration,
    /// A query running, or a transaction left idle, longer than this is a WARNING.
    #[serde(default = "long_query_5m")]
    pub long_query: HumanDuration,
}

fn long_query_5m() -> HumanDuration {
    HumanDuration::from_secs(300)
}

fn db_report_schedule() -> Schedule {
    "30 1 * * *".parse().expect("built-in schedule is valid")
}

fn dead_tuples_warn() -> i64 {
    100_000
}

fn statement_timeout_30s() -> HumanDuration {
    HumanDuration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DisputesConfig {
    /// Its first column is the cursor, compared with `$1`; a column `id` (or else the first
    /// column) names the dispute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default = "every_5m")]
    pub every: HumanDuration,
    /// `false`: rows that exist at the first run never alert.
    #[serde(default)]
    pub backfill: bool,
}

/// `VACUUM (ANALYZE)` of the app's database; nothing runs until `enabled = true`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VacuumConfig {
    pub enabled: bool,
    pub schedule: Schedule,
    /// A table whose lock cannot be had within this long is skipped, so the app never waits.
    pub lock_timeout: HumanDuration,
    /// The longest one table's VACUUM may take.
    pub statement_timeout: HumanDuration,
}

impl Default for VacuumConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            schedule: "0 3 * * 3".parse().expect("built-in schedule is valid"),
            lock_timeout: HumanDuration::from_secs(5),
            statement_timeout: HumanDuration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<TokenConfig>,
    /// Serve a non-loopback listen with neither users nor tokens (anyone who can reach the
    /// port sees everything); without it such a config refuses to start.
    pub allow_anonymous: bool,
    /// `/metrics` without a token even when tokens are configured.
    pub public_metrics: bool,
    /// A session unused this long ends.
    pub session_idle: HumanDuration,
    /// A session ends this long after the login, used or not.
    pub session_lifetime: HumanDuration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            tokens: Vec::new(),
            allow_anonymous: false,
            public_metrics: false,
            session_idle: HumanDuration::from_secs(12 * 3600),
            session_lifetime: HumanDuration::from_secs(7 * 86_400),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password_hash: Secret,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub token: Secret,
    #[serde(default)]
    pub scope: TokenScope,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    #[default]
    Read,
    Write,
}

/// How alerts are paced, independent of the channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Flap damping: more than this many DOWN transitions of one check within `flap_window`
    /// and further transitions are recorded but not sent until it has been stable again.
    pub flap_threshold: u32,
    pub flap_window: HumanDuration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            flap_threshold: 3,
            flap_window: HumanDuration::from_secs(3600),
        }
    }
}

/// How long history is kept, per resolution.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Raw samples and check results.
    pub raw: HumanDuration,
    /// 5-minute roll-ups (min / avg / max / count).
    pub five_minute: HumanDuration,
    /// 1-hour roll-ups.
    pub hourly: HumanDuration,
    /// When retention runs (deletes what is older than its period, gives space back).
    pub retention_schedule: Schedule,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            raw: HumanDuration::from_secs(7 * 86_400),
            five_minute: HumanDuration::from_secs(90 * 86_400),
            hourly: HumanDuration::from_secs(2 * 365 * 86_400),
            retention_schedule: "15 3 * * *".parse().expect("built-in schedule is valid"),
        }
    }
}

/// A silence or maintenance window from the config. Matchers left out match anything.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceConfig {
    /// Check or source name; a trailing `*` matches a prefix (`pm2:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// Check kind: `http`, `system`, `pm2`, `systemd`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<crate::rules::alert::Severity>,
    /// A one-off silence ends at this RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// A recurring window starts at each occurrence of this schedule ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// ... and lasts this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<HumanDuration>,
    #[serde(default)]
    pub comment: String,
}

/// An outbound dead-man ping (Healthchecks-style): `url` while opswatch is healthy, `url/fail`
/// while it is not, so a watcher outside the box notices when opswatch dies or stalls.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// The ping URL carries the check's credential in its path: treated as a secret.
    pub url: Secret,
    #[serde(default = "every_1m")]
    pub every: HumanDuration,
}

fn every_1m() -> HumanDuration {
    HumanDuration::from_secs(60)
}

/// `[status_page]`: the public, read-only page at `/status` (404 unless enabled).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusPageConfig {
    pub enabled: bool,
    pub title: String,
    /// HTTP checks shown, by name; `None`: every HTTP check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            title: "Service status".to_owned(),
            checks: None,
        }
    }
}
