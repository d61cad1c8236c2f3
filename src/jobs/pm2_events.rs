//! Listens to the PM2 daemon's event bus for as long as opswatch runs, so that a crash loop's
//! CRITICAL comes within about a second of the crashes instead of at the next poll.
//!
//! Two tasks: one reads events (reconnecting with a backoff while the daemon is down, never
//! starting one), one judges them. Between them a channel; the judge drains what queued while
//! it worked and keeps the highest restart count per process, so a burst of exits costs one
//! store write and one rule run per process, not one per event. Events the listener missed
//! (daemon down, restarting) are covered by the poller, which reads the same counters.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checks::pm2::{self, Pm2Error, events::EventStream, events::Pm2Event};
use crate::daemon::state::AppState;
use crate::store::now_ms;

/// First wait before reconnecting to a daemon that is down; doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// A connect attempt is a failed syscall, but a daemon down for hours needs no faster check
/// than the poller's.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Events waiting for the judge; the listener waits (the socket buffers) when it is full.
const QUEUE: usize = 1024;

/// Starts the listener when PM2 is watched (same condition as the poller).
pub fn spawn(app: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    if !app.config.pm2.enabled.unwrap_or_else(pm2::pm2_on_path) {
        return;
    }
    let Some(home) = app.config.pm2.home.clone().or_else(pm2::default_pm2_home) else {
        return;
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    tasks.spawn(listen(home, tx, shutdown.clone()));
    tasks.spawn(judge(app.clone(), rx, shutdown.clone()));
}

async fn listen(home: PathBuf, tx: mpsc::Sender<Pm2Event>, shutdown: CancellationToken) {
    let mut delay = RETRY_MIN;
    let mut last_error: Option<Pm2Error> = None;
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = EventStream::connect(&home) => c,
        };
        let error = match connected {
            Ok(mut stream) => {
                tracing::debug!(pm2_home = %home.display(), "listening to PM2 events");
                delay = RETRY_MIN;
                last_error = None;
                loop {
                    // Dropping `next` mid-frame is fine here: the stream goes with it.
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        e = stream.next() => e,
                    };
                    match next {
                        Ok(event) => {
                            if tx.send(event).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => break e,
                    }
                }
            }
            Err(e) => e,
        };
        // One line per change, not one per retry: a stopped daemon is the poller's alert.
        if last_error.as_ref() != Some(&error) {
            tracing::info!(pm2_home = %home.display(), error = %error, "not receiving PM2 events; retrying");
            last_error = Some(error);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(RETRY_MAX);
    }
}

async fn judge(app: AppState, mut rx: mpsc::Receiver<Pm2Event>, shutdown: CancellationToken) {
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = rx.recv() => match e { Some(e) => e, None => return },
        };
        let mut latest: BTreeMap<i64, Pm2Event> = BTreeMap::new();
        let mut keep = |e: Pm2Event| {
            if e.pm_id < 0 || e.name.is_empty() {
                return;
            }
            let restarts = latest
                .get(&e.pm_id)
                .map_or(e.restarts, |p| p.restarts.max(e.restarts));
            latest.insert(e.pm_id, Pm2Event { restarts, ..e });
        };
        keep(first);
        while let Ok(e) = rx.try_recv() {
            keep(e);
        }
        for e in latest.values() {
            tracing::debug!(app = %e.name, pm_id = e.pm_id, event = %e.event, restarts = e.restarts, "PM2 event");
            // PM2 sends `online` while the status it carries still says `launching`.
            let status = if e.event == "online" {
                "online"
            } else {
                &e.status
            };
            app.live.apply_pm2_event(e.pm_id, status, e.restarts);
            if let Err(err) = crate::rules::processes::evaluate_pm2_event(
                &app,
                &e.name,
                e.pm_id,
                e.restarts,
                now_ms(),
            )
            .await
            {
                tracing::warn!(app = %e.name, error = format!("{err:#}"), "judging a PM2 event failed");
            }
        }
    }
}
