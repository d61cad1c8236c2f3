//! The outbound heartbeat (`[heartbeat]`): a GET of `url` every `every` while opswatch is
//! healthy, of `url/fail` while it is not. It runs as a scheduler job on purpose: when the
//! process dies or the scheduler stalls the pings stop, which is what the watcher outside
//! notices.
//!
//! Unhealthy (PRODUCT.md): the store does not take writes, the scheduler is stalled, or a
//! channel is marked failing. The URL is a credential: no log line or error carries it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::HeartbeatConfig;
use crate::daemon::health::Health;
use crate::daemon::scheduler::{Job, Trigger};
use crate::store::now_ms;

/// A ping that takes longer counts as failed; well under the shortest `every` an operator
/// would pick, so pings never pile up.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the heartbeat should say "healthy" now.
pub fn healthy(health: &Health, now_ms: i64) -> bool {
    healthy_at(health, now_ms, now_ms)
}

/// The same with the channels judged at `clock_ms`, the app's clock (see
/// [`Health::report_at`]): a channel with an alert undelivered for 5 minutes is failing.
pub fn healthy_at(health: &Health, now_ms: i64, clock_ms: i64) -> bool {
    let report = health.report_at(now_ms, clock_ms);
    report.reasons.is_empty() && report.channels.values().all(|c| c.ok)
}

/// `url` with `/fail` appended to its path, keeping any query (`?status=…` style push URLs).
pub fn fail_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let path = format!("{}/fail", u.path().trim_end_matches('/'));
            u.set_path(&path);
            u.to_string()
        }
        Err(_) => format!("{}/fail", url.trim_end_matches('/')),
    }
}

/// The scheduler job for `cfg`.
pub fn job(cfg: &HeartbeatConfig) -> anyhow::Result<Job> {
    let client = reqwest::Client::builder()
        .timeout(PING_TIMEOUT)
        .user_agent(concat!("opswatch/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let ok_url: Arc<str> = cfg.url.expose().into();
    let fail_url: Arc<str> = fail_url(cfg.url.expose()).into();
    // Log a failing ping once, not on every beat; log again after it worked.
    let failing = Arc::new(AtomicBool::new(false));
    Ok(Job {
        name: "heartbeat".to_owned(),
        trigger: Trigger::Every(cfg.every.get()),
        timeout: PING_TIMEOUT + Duration::from_secs(5),
        run: Arc::new(move |app| {
            let (client, failing) = (client.clone(), failing.clone());
            let healthy = healthy_at(&app.health, now_ms(), app.clock.now_ms());
            let url = if healthy {
                ok_url.clone()
            } else {
                fail_url.clone()
            };
            Box::pin(async move {
                let outcome = match client.get(&*url).send().await {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("the watcher answered {}", r.status())),
                    // without_url: the reqwest error would otherwise print the URL.
                    Err(e) => Err(e.without_url().to_string()),
                };
                match outcome {
                    Ok(()) => {
                        if failing.swap(false, Ordering::Relaxed) {
                            tracing::info!(healthy, "heartbeat ping works again");
                        }
                    }
                    Err(why) => {
                        if !failing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(healthy, error = %why, "heartbeat ping failed");
                        }
                    }
                }
                Ok(())
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_url_appends_to_the_path_and_keeps_the_query() {
        assert_eq!(
            fail_url("https://hc-ping.example/abc"),
            "https://hc-ping.example/abc/fail"
        );
        assert_eq!(
            fail_url("https://hc-ping.example/abc/"),
            "https://hc-ping.example/abc/fail"
        );
        assert_eq!(
            fail_url("https://kuma.example/api/push/T0k?status=up"),
            "https://kuma.example/api/push/T0k/fail?status=up"
        );
    }

    #[test]
    fn a_failing_channel_or_store_is_unhealthy() {
        let h = Health::new("sqlite");
        h.record_store_ok(1_000);
        h.record_heartbeat(1_000);
        assert!(healthy(&h, 1_500));
        h.record_channel("telegram", false, Some("401 Unauthorized".into()));
        assert!(!healthy(&h, 1_500));
        h.record_channel("telegram", true, None);
        assert!(healthy(&h, 1_500));
        h.record_store_error("disk full".into());
        assert!(!healthy(&h, 1_500));
    }

    #[test]
    fn an_alert_undelivered_for_five_minutes_is_unhealthy() {
        let h = Health::new("sqlite");
        h.record_store_ok(1_000);
        h.record_heartbeat(1_000);
        h.record_channel("telegram", true, None);
        let queued = 1_000_000;
        h.record_pending_since([("telegram".to_owned(), queued)].into());
        assert!(healthy_at(&h, 1_500, queued + 299_999));
        assert!(!healthy_at(&h, 1_500, queued + 300_000));
        let report = h.report_at(1_500, queued + 300_000);
        assert_eq!(
            report.reasons,
            Vec::<String>::new(),
            "opswatch itself is fine"
        );
        let why = report.channels["telegram"].error.clone().unwrap();
        assert!(why.contains("undelivered for 5 min"), "{why}");
        h.record_pending_since(Default::default());
        assert!(healthy_at(&h, 1_500, queued + 300_000));
    }
}
