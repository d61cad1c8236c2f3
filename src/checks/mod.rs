//! Checks: each file turns one part of the world into observations and does nothing else. A
//! check knows nothing of the store, the rules or the channels.
//!
//! Up/down checks (an endpoint, a port, ...) share one shape: a kind is one file here that
//! implements [`Check`] for its config blocks, plus one line in [`register_kinds!`] below.
//! `serve` (the jobs and the store rows), `opswatch check`, `config check --connect`, the API
//! and `/metrics` iterate [`configured`]; none of them names a kind. The state machine and the
//! alert texts they share live in `rules/updown.rs`; a kind brings only its own wording
//! ([`Check::hint`], [`Check::target_label`], [`Check::summary`]).

pub mod app_db;
pub mod disputes;
pub mod http;
pub mod pm2;
pub mod postgres;
pub mod system;
pub mod systemd;
pub mod tcp;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{Config, HumanDuration};

/// What one probe of a check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When the probe started, unix epoch ms.
    pub at_ms: i64,
    /// How long the probe took (to the failure, when it failed).
    pub latency_ms: Option<i64>,
    /// Why it failed; `None` when the check passed.
    pub failure: Option<Failure>,
    /// What else the probe learnt, for the history and the charts.
    pub details: Details,
}

impl Observation {
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The failure's text, if it failed.
    pub fn error(&self) -> Option<&str> {
        self.failure.as_ref().map(|f| f.text.as_str())
    }
}

/// Facts only some kinds observe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// The HTTP status answered.
    pub status_code: Option<i64>,
    /// `notAfter` of the TLS certificate presented, unix epoch ms.
    pub cert_expires_ms: Option<i64>,
}

/// Why a probe failed: a kind, as stored and shown (`error_kind`), and one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub text: String,
}

impl Failure {
    pub fn new(kind: FailureKind, text: impl Into<String>) -> Self {
        Self {
            kind,
            text: text.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Timeout,
    Dns,
    Connect,
    Tls,
    Status,
    Body,
    /// opswatch itself ran out of descriptors or memory: says nothing about the target.
    Local,
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Status => "status",
            Self::Body => "body",
            Self::Local => "local",
            Self::Other => "other",
        }
    }
}

/// When an up/down check runs and when it counts as DOWN: the keys every such config block
/// has (`every`, `timeout`, `failures`, `remind_every`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub every: HumanDuration,
    pub timeout: HumanDuration,
    /// Consecutive failed probes before the check is DOWN.
    pub failures: u32,
    /// A reminder while still DOWN; none when unset.
    pub remind_every: Option<HumanDuration>,
}

/// One configured up/down check, ready to probe.
pub trait Check: Send + Sync + 'static {
    fn kind(&self) -> CheckKind;
    /// Unique across all kinds (the config refuses a clash).
    fn name(&self) -> &str;
    fn timing(&self) -> Timing;
    /// Probes once within `timing().timeout`. Never fails: every outcome is an observation.
    fn probe(&self) -> BoxFuture<'_, Observation>;
    /// What is probed, in one line with secrets redacted (`https://example.com/health`,
    /// `127.0.0.1:5432`): shown by `config check --connect` and in alerts.
    fn target_line(&self) -> String;
    /// What [`target_line`](Self::target_line) is, as alerts label it (`URL`, `Address`).
    fn target_label(&self) -> &'static str;
    /// What is probed and how, as the API shows it (secrets redacted).
    fn target(&self) -> serde_json::Value;
    /// The runbook text sent with a DOWN: the configured `hint`, or this kind's default.
    fn hint(&self) -> String;
    /// What the config cannot say by types about this block: (key below the block, reason),
    /// e.g. `("url", "is not a URL")`. Names and timing are checked for every kind alike.
    fn problems(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// A passing observation in a few words (`HTTP 200 in 12 ms`), for RESOLVED alerts and
    /// the `opswatch check` table.
    fn summary(&self, seen: &Observation) -> String;
}

/// Declares the up/down check kinds: one line per kind, `Variant = "name" => builder`, where
/// the name is the config section and the stored kind, and the builder turns a config into
/// that kind's checks.
macro_rules! register_kinds {
    ($($variant:ident = $name:literal => $build:path),+ $(,)?) => {
        /// The kind of an up/down check, as stored in `checks.kind`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CheckKind {
            $($variant),+
        }

        impl CheckKind {
            /// Every kind, in registration order.
            pub const ALL: &[CheckKind] = &[$(CheckKind::$variant),+];

            /// The stored name, also the config section (`[[http]]`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckKind::$variant => $name),+
                }
            }

            fn build(self, config: &Config) -> Vec<Arc<dyn Check>> {
                match self {
                    $(CheckKind::$variant => $build(config)),+
                }
            }
        }
    };
}

register_kinds! {
    Http = "http" => http::checks,
    Tcp = "tcp" => tcp::checks,
}

impl CheckKind {
    pub fn parse(s: &str) -> Result<Self, UnknownKind> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for CheckKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check kind {0:?}")]
pub struct UnknownKind(pub String);

/// Every up/down check the config declares, of every kind, in registration order.
pub fn configured(config: &Config) -> Vec<Arc<dyn Check>> {
    CheckKind::ALL
        .iter()
        .flat_map(|kind| kind.build(config))
        .collect()
}

/// Milliseconds since the unix epoch: when a probe started.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Elapsed time in whole milliseconds.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name_and_nothing_else_does() {
        for kind in CheckKind::ALL {
            assert_eq!(CheckKind::parse(kind.as_str()), Ok(*kind));
        }
        assert_eq!(
            CheckKind::parse("gopher"),
            Err(UnknownKind("gopher".to_owned()))
        );
    }
}
