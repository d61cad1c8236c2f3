//! The outbox dispatcher: one task per channel takes the oldest pending delivery, sends it,
//! and marks it sent only after the channel confirmed.
//!
//! Retry policy: a 429 waits exactly what the channel asked for; network errors, timeouts and
//! 5xx back off along [`BACKOFF`] with ±20 % jitter; a channel that needs the operator (bad
//! token, bot blocked, chat not found) is marked unhealthy and re-tried every
//! [`UNHEALTHY_RETRY`] with the alerts kept queued; a message refused [`MAX_REJECTS`] times is
//! marked failed (it stays in the alert log).
//!
//! At-least-once window: a crash after the channel accepted a message but before the store
//! recorded it as sent makes the message go out again after restart. Everything else is
//! exactly once: the lease keeps two dispatchers off one row, and the row is marked sent in
//! the same statement that checks the lease.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Channel, Failure};
use crate::daemon::metrics::{AlertLabels, ChannelLabels};
use crate::daemon::state::AppState;
use crate::store::Backend;

/// Longer than the slowest send (request timeout 15 s, plus one plain-text resend).
const LEASE_MS: i64 = 45_000;
const BACKOFF: &[Duration] = &[
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
    Duration::from_secs(120),
    Duration::from_secs(300),
    Duration::from_secs(600),
];
const UNHEALTHY_RETRY: Duration = Duration::from_secs(60);
const MAX_REJECTS: i64 = 3;
/// How soon, then how often at most, a delivery the channel accepted is recorded again when
/// the store refused the write.
const MARK_RETRY_FIRST: Duration = Duration::from_millis(250);
const MARK_RETRY_MAX: Duration = Duration::from_secs(5);
/// Even with no wake-up, look at the queue this often (another instance may have written).
const IDLE_POLL: Duration = Duration::from_secs(30);

/// Starts one delivery task per channel.
pub async fn spawn(
    app: &AppState,
    channels: Vec<Channel>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if app.store.backend() == Backend::Sqlite {
        // Only one process dispatches from a SQLite store: leases left now are from a crash.
        // On a full disk this write fails; the leases then simply run out.
        match app.store.release_all_leases().await {
            Ok(0) => {}
            Ok(freed) => tracing::info!(
                deliveries = freed,
                "resuming deliveries interrupted by a crash"
            ),
            Err(e) if crate::store::storage_fault(&e).is_some() => {
                note_store_error(app, &e);
                tracing::error!(
                    error = format!("{e:#}"),
                    "cannot release the leases of a previous run; they expire on their own"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let overrides = app.store.list_channels().await?;
    let owner: Arc<str> = format!("{}-{}", std::process::id(), app.clock.now_ms()).into();
    for channel in channels {
        let name = channel.name();
        if let (Channel::Telegram(t), Some(row)) =
            (&channel, overrides.iter().find(|c| c.name == name))
            && let Some(chat) = &row.chat_id_override
        {
            t.set_chat_id(chat.clone());
        }
        let healthy = overrides
            .iter()
            .find(|c| c.name == name)
            .is_none_or(|c| c.healthy);
        app.health.record_channel(&name, healthy, None);
        app.metrics
            .channel_up
            .get_or_create(&ChannelLabels {
                channel: name.clone(),
            })
            .set(i64::from(healthy));
        tasks.spawn(deliver_forever(
            app.clone(),
            channel,
            owner.clone(),
            shutdown.clone(),
        ));
    }
    Ok(())
}

async fn deliver_forever(
    app: AppState,
    channel: Channel,
    owner: Arc<str>,
    shutdown: CancellationToken,
) {
    let name = channel.name();
    let mut wake = app.outbox_wake.subscribe();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let wait = match deliver_one(&app, &channel, &name, &owner).await {
            Ok(Some(pause)) => pause,
            Ok(None) => match app.store.next_delivery_due(&name).await {
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due - app.clock.now_ms()).unwrap_or(0))
                        .min(IDLE_POLL)
                }
                Ok(None) => IDLE_POLL,
                Err(e) => {
                    note_store_error(&app, &e);
                    tracing::warn!(channel = %name, error = format!("{e:#}"), "cannot read the outbox");
                    BACKOFF[0]
                }
            },
            Err(e) => {
                note_store_error(&app, &e);
                tracing::warn!(channel = %name, error = format!("{e:#}"), "cannot use the outbox");
                BACKOFF[0]
            }
        };
        update_depth(&app).await;
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// For run-now commands: sends what is due on each channel now, pacing as the daemon does,
/// and gives up on a channel at its first failure (the row stays queued for `serve`) or after
/// `within`.
pub async fn deliver_due_now(app: &AppState, channels: &[Channel], within: Duration) {
    let owner = format!("cli-{}-{}", std::process::id(), app.clock.now_ms());
    let deadline = tokio::time::Instant::now() + within;
    for channel in channels {
        let name = channel.name();
        while tokio::time::Instant::now() < deadline {
            match deliver_one(app, channel, &name, &owner).await {
                Ok(Some(pause)) if !pause.is_zero() => tokio::time::sleep(pause).await,
                // Zero pause: the attempt failed and was rescheduled; leave it to `serve`.
                Ok(Some(_)) | Ok(None) => break,
                Err(e) => {
                    tracing::warn!(channel = %name, error = format!("{e:#}"), "cannot use the outbox");
                    break;
                }
            }
        }
    }
}

/// Sends the head of the queue if it is due. `Ok(Some(pause))`: something was attempted,
/// look again after `pause`; `Ok(None)`: nothing was due.
async fn deliver_one(
    app: &AppState,
    channel: &Channel,
    name: &str,
    owner: &str,
) -> anyhow::Result<Option<Duration>> {
    let Some(claimed) = app
        .store
        .claim_next_delivery(name, owner, app.clock.now_ms(), LEASE_MS)
        .await?
    else {
        return Ok(None);
    };
    let alert = &claimed.alert;
    match channel.send(alert).await {
        Ok(delivered) => {
            if !record_delivered(app, claimed.outbox_id, owner, name).await {
                tracing::warn!(channel = %name, alert = alert.id, "lease lost while sending; another dispatcher owns the row");
            }
            app.metrics
                .alerts_sent
                .get_or_create(&AlertLabels {
                    channel: name.to_owned(),
                    severity: alert.severity.as_str().to_owned(),
                })
                .inc();
            if let Some(chat) = delivered.migrated_to {
                tracing::warn!(channel = %name, new_chat_id = %chat, "Telegram group was upgraded; following its new chat id");
                app.store
                    .set_chat_id_override(name, &chat, app.clock.now_ms())
                    .await?;
            }
            set_health(app, name, true, None).await;
            Ok(Some(channel.pace()))
        }
        Err(failure) => {
            let reason = failure.to_string();
            tracing::warn!(channel = %name, alert = alert.id, attempt = claimed.attempts, error = %reason, "delivery failed; will retry");
            let next = match &failure {
                Failure::RetryAfter(wait) => *wait + Duration::from_millis(100),
                Failure::Transient(_) => backoff(claimed.attempts),
                Failure::Unhealthy(_) => {
                    set_health(app, name, false, Some(&reason)).await;
                    UNHEALTHY_RETRY
                }
                Failure::Rejected(_) if claimed.attempts >= MAX_REJECTS => {
                    app.store
                        .fail_delivery(claimed.outbox_id, owner, &reason)
                        .await?;
                    return Ok(Some(Duration::ZERO));
                }
                Failure::Rejected(_) => backoff(claimed.attempts),
            };
            let next_ms =
                app.clock.now_ms() + i64::try_from(next.as_millis()).unwrap_or(i64::MAX / 2);
            app.store
                .reschedule_delivery(claimed.outbox_id, owner, next_ms, &reason)
                .await?;
            Ok(Some(Duration::ZERO))
        }
    }
}

/// The channel accepted the message: records that, however long the store takes to take
/// writes again (a full disk). Giving up instead would leave the row pending, and once our
/// lease ran out the message would be sent a second time. False if our lease was lost.
async fn record_delivered(app: &AppState, outbox_id: i64, owner: &str, name: &str) -> bool {
    let mut pause = MARK_RETRY_FIRST;
    let mut warned = false;
    loop {
        match app
            .store
            .mark_delivered(outbox_id, owner, app.clock.now_ms())
            .await
        {
            Ok(kept) => {
                if warned {
                    tracing::info!(channel = %name, outbox = outbox_id, "delivery recorded after the store came back");
                }
                return kept;
            }
            Err(e) => {
                note_store_error(app, &e);
                if !warned {
                    tracing::error!(channel = %name, outbox = outbox_id, error = format!("{e:#}"), "sent, but cannot record it yet; retrying until the store takes writes");
                    warned = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MARK_RETRY_MAX);
            }
        }
    }
}

/// Shows a store that does not take writes in `/health`.
fn note_store_error(app: &AppState, e: &anyhow::Error) {
    if let Some(fault) = crate::store::storage_fault(e) {
        app.health.record_write_fault(crate::store::now_ms(), fault);
    }
}

/// The delay before attempt `attempts + 1`, with ±20 % jitter so that many queued alerts do
/// not retry in lockstep.
fn backoff(attempts: i64) -> Duration {
    let idx = usize::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(BACKOFF.len() - 1);
    let base = BACKOFF[idx].as_millis() as f64;
    let jitter = 0.8 + 0.4 * pseudo_random();
    Duration::from_millis((base * jitter) as u64)
}

/// Good enough for jitter; not for anything that needs unpredictability.
fn pseudo_random() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1000) / 1000.0
}

async fn set_health(app: &AppState, name: &str, healthy: bool, error: Option<&str>) {
    if app.health.channel_ok(name) == Some(healthy) && healthy {
        return;
    }
    app.health
        .record_channel(name, healthy, error.map(str::to_owned));
    app.metrics
        .channel_up
        .get_or_create(&ChannelLabels {
            channel: name.to_owned(),
        })
        .set(i64::from(healthy));
    if let Err(e) = app
        .store
        .set_channel_health(name, healthy, error, app.clock.now_ms())
        .await
    {
        tracing::warn!(channel = %name, error = format!("{e:#}"), "cannot record channel health");
    }
}

async fn update_depth(app: &AppState) {
    if let Ok(since) = app.store.outbox_pending_since().await {
        let configured = since
            .into_iter()
            .filter(|(c, _)| app.channels.contains(c))
            .collect();
        app.health.record_pending_since(configured);
    }
    if let Ok(depths) = app.store.outbox_depth().await {
        for name in &app.channels {
            let depth = depths
                .iter()
                .find(|(c, _)| c == name)
                .map_or(0, |(_, n)| *n);
            app.metrics
                .outbox_depth
                .get_or_create(&ChannelLabels {
                    channel: name.clone(),
                })
                .set(depth);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for (attempt, base) in [(1, 5_000.0), (2, 15_000.0), (7, 600_000.0), (50, 600_000.0)] {
            let d = backoff(attempt).as_millis() as f64;
            assert!(d >= base * 0.8 && d <= base * 1.2, "attempt {attempt}: {d}");
        }
    }
}
