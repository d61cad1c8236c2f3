//! TCP port checks (`[[tcp]]`): a connection to `address` either opens within the timeout or
//! it does not. Enough to watch a database, a cache or a mail server that answers no HTTP.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Check, CheckKind, Details, Failure, FailureKind, Observation, Timing};
use crate::config::{Config, HumanDuration};

/// One `[[tcp]]` block.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheckConfig {
    pub name: String,
    /// `HOST:PORT`: `127.0.0.1:5432`, `db.internal:6379`, `[::1]:25`.
    pub address: String,
    #[serde(default = "every_5m")]
    pub every: HumanDuration,
    #[serde(default = "timeout_10s")]
    pub timeout: HumanDuration,
    /// Consecutive failed connections before the check is DOWN.
    #[serde(default = "two")]
    pub failures: u32,
    /// Reminder while still down; off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<HumanDuration>,
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

/// The checks of every `[[tcp]]` block.
pub fn checks(config: &Config) -> Vec<Arc<dyn Check>> {
    config
        .tcp
        .iter()
        .map(|c| Arc::new(TcpProbe { config: c.clone() }) as Arc<dyn Check>)
        .collect()
}

pub struct TcpProbe {
    pub config: TcpCheckConfig,
}

impl TcpProbe {
    async fn observe(&self) -> Observation {
        let at_ms = super::now_ms();
        let started = Instant::now();
        let timeout = self.config.timeout;
        let failure = match tokio::time::timeout(timeout.get(), self.connect()).await {
            Ok(Ok(())) => None,
            Ok(Err(f)) => Some(f),
            Err(_) => Some(Failure::new(
                FailureKind::Timeout,
                format!("no connection within {timeout}"),
            )),
        };
        Observation {
            at_ms,
            latency_ms: Some(super::millis(started.elapsed())),
            failure,
            details: Details::default(),
        }
    }

    /// Resolves the address, then tries each of its addresses until one accepts. The
    /// connection is closed at once: an open port is all this check asks.
    async fn connect(&self) -> Result<(), Failure> {
        let address = self.config.address.as_str();
        let targets: Vec<_> = tokio::net::lookup_host(address)
            .await
            .map_err(|e| Failure::new(FailureKind::Dns, format!("DNS lookup failed: {e}")))?
            .collect();
        let mut last = None;
        for target in targets {
            match tokio::net::TcpStream::connect(target).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some((target, e)),
            }
        }
        Err(match last {
            // Out of descriptors or memory here says nothing about the target: an error of
            // opswatch (never a DOWN), as for HTTP checks.
            Some((target, e)) if is_local_exhaustion(&e) => Failure::new(
                FailureKind::Local,
                format!("opswatch could not probe {target} (out of descriptors or memory): {e}"),
            ),
            Some((target, e)) => Failure::new(
                FailureKind::Connect,
                format!("connection to {target} failed: {e}"),
            ),
            None => Failure::new(FailureKind::Dns, format!("{address} has no address")),
        })
    }
}

/// EMFILE, ENFILE, ENOMEM, ENOBUFS: this process or host ran out of something.
fn is_local_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 12 | 105))
}

impl Check for TcpProbe {
    fn kind(&self) -> CheckKind {
        CheckKind::Tcp
    }

    fn name(&self) -> &str {
        &self.config.name
    }

    fn timing(&self) -> Timing {
        Timing {
            every: self.config.every,
            timeout: self.config.timeout,
            failures: self.config.failures,
            remind_every: self.config.remind_every,
        }
    }

    fn probe(&self) -> BoxFuture<'_, Observation> {
        Box::pin(self.observe())
    }

    fn target_line(&self) -> String {
        self.config.address.clone()
    }

    fn target_label(&self) -> &'static str {
        "Address"
    }

    fn target(&self) -> serde_json::Value {
        let c = &self.config;
        json!({
            "address": c.address,
            "every": c.every,
            "timeout": c.timeout,
            "failures": c.failures,
        })
    }

    fn hint(&self) -> String {
        self.config.hint.clone().unwrap_or_else(|| {
            format!(
                "Check that the service behind {} runs (`systemctl status` / `pm2 status`), \
                 that it listens on that address (`ss -ltn`), and that no firewall drops the \
                 connection.",
                self.config.address
            )
        })
    }

    fn problems(&self) -> Vec<(String, String)> {
        match split_host_port(&self.config.address) {
            Ok(_) => Vec::new(),
            Err(why) => vec![("address".to_owned(), why.to_owned())],
        }
    }

    fn summary(&self, seen: &Observation) -> String {
        format!("connected in {} ms", seen.latency_ms.unwrap_or_default())
    }
}

/// `HOST:PORT` with a non-empty host and a port from 1 to 65535; an IPv6 host in brackets.
fn split_host_port(address: &str) -> Result<(&str, u16), &'static str> {
    const HOW: &str = "must be HOST:PORT, e.g. \"127.0.0.1:5432\" or \"[::1]:5432\"";
    let (host, port) = address.rsplit_once(':').ok_or(HOW)?;
    let port: u16 = port.parse().map_err(|_| HOW)?;
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if port == 0 || bare.is_empty() || bare.contains(char::is_whitespace) {
        return Err(HOW);
    }
    if host.starts_with('[') != host.ends_with(']') || (bare == host && host.contains(':')) {
        return Err(HOW);
    }
    Ok((bare, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_opswatchs_own_failure_not_the_targets() {
        for errno in [24, 23, 12, 105] {
            assert!(is_local_exhaustion(&std::io::Error::from_raw_os_error(
                errno
            )));
        }
        // ECONNREFUSED and EHOSTUNREACH are about the target.
        for errno in [111, 113] {
            assert!(!is_local_exhaustion(&std::io::Error::from_raw_os_error(
                errno
            )));
        }
    }

    #[test]
    fn addresses_are_host_and_port() {
        assert_eq!(split_host_port("127.0.0.1:5432"), Ok(("127.0.0.1", 5432)));
        assert_eq!(
            split_host_port("db.internal:6379"),
            Ok(("db.internal", 6379))
        );
        assert_eq!(split_host_port("[::1]:25"), Ok(("::1", 25)));
        for bad in [
            "127.0.0.1",
            ":5432",
            "db:0",
            "db:99999",
            "::1:25",
            "[::1:25",
            "a b:1",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad} was accepted");
        }
    }
}
