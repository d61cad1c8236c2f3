//! Reloading the config without a restart (SIGHUP, `POST /api/v1/reload`).
//!
//! Design: a supervised restart of everything the config shapes. The config-dependent tasks
//! (the scheduler's jobs, the channels' dispatchers) run as one *generation* under a child of
//! the process's cancellation token. A reload parses and validates the file, builds the new
//! channels and job list (so anything that can be refused is refused before anything stops),
//! stops the old generation (runs in flight finish; deliveries in flight finish and are marked
//! sent), starts a new generation on a new [`AppState`] that shares the store, health,
//! metrics and live readings, and swaps the router the listener serves.
//!
//! What survives, and why nothing re-alerts: check state, open incidents, host conditions, the
//! outbox and cursors live in the store, and the jobs read them back on their first run (see
//! `rules::http::CheckMemory`). What a restart would lose is the rhythm of interval jobs: a
//! new generation would probe every check at once. So every job's last start is remembered
//! across generations and a job that already ran waits until it is due again (a probe is
//! neither doubled nor skipped by a reload).
//!
//! An invalid file changes nothing: the old generation keeps running and the reason (file,
//! key, reason) is logged and answered. `server.listen` is bound once: a changed address is
//! reported and takes effect at the next restart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::daemon::scheduler::{Job, Scheduler, Trigger};
use crate::daemon::sd_notify;
use crate::daemon::state::AppState;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;

/// Asks the running `serve` for a reload. Empty (every request refused) until `serve` starts.
#[derive(Clone, Default)]
pub struct Handle(Arc<OnceLock<mpsc::Sender<oneshot::Sender<Outcome>>>>);

/// What a reload did.
pub type Outcome = Result<Applied, Refused>;

/// A reload that took effect.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The file that was read; absent when opswatch runs on built-in defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Jobs now scheduled (checks, pollers, digests, reports, heartbeat).
    pub jobs: usize,
    /// Alert channels now delivering.
    pub channels: usize,
    /// From the request to the new generation running, in milliseconds.
    pub took_ms: f64,
}

/// Why a reload did not take effect; the previous config keeps running.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The new file is invalid: `FILE:LINE:COL: key a.b: reason` per problem.
    #[error("{0}")]
    Invalid(ConfigError),
    /// The file is valid but could not be put in place (a channel or job could not be set up).
    #[error("{0}")]
    Failed(String),
    /// Nothing to reload from (opswatch was not started by `opswatch serve`).
    #[error("this opswatch cannot reload: {0}")]
    Unavailable(&'static str),
}

impl Handle {
    /// Requests a reload and waits for its outcome.
    pub async fn request(&self) -> Outcome {
        let Some(tx) = self.0.get() else {
            return Err(Refused::Unavailable("it is not running `serve`"));
        };
        let (reply, answer) = oneshot::channel();
        tx.send(reply)
            .await
            .map_err(|_| Refused::Unavailable("it is shutting down"))?;
        answer
            .await
            .unwrap_or(Err(Refused::Unavailable("it is shutting down")))
    }
}

/// Where the config is re-read from.
#[derive(Debug, Clone)]
pub struct Source {
    /// `--config` / `OPSWATCH_CONFIG`; `None`: the built-in defaults.
    pub path: Option<PathBuf>,
    /// `serve --listen`, which wins over the file.
    pub listen_override: Option<SocketAddr>,
}

/// When each job last started, by job name, across generations.
type Starts = Arc<Mutex<HashMap<String, Instant>>>;

/// The config-dependent tasks of one config.
struct Generation {
    app: AppState,
    token: CancellationToken,
    tasks: JoinSet<()>,
}

/// What a generation is made of, built (and possibly refused) before anything stops.
struct Parts {
    app: AppState,
    channels: Vec<Channel>,
    scheduler: Scheduler,
}

impl Parts {
    fn build(app: AppState) -> anyhow::Result<Self> {
        let channels = Channel::all_from(&app.config, DEFAULT_REQUEST_TIMEOUT)?;
        let scheduler = crate::jobs::scheduler(&app)?;
        Ok(Self {
            app,
            channels,
            scheduler,
        })
    }
}

impl Generation {
    async fn start(
        parts: Parts,
        parent: &CancellationToken,
        starts: &Starts,
    ) -> anyhow::Result<Self> {
        let Parts {
            app,
            channels,
            scheduler,
        } = parts;
        let token = parent.child_token();
        let mut tasks = JoinSet::new();
        let started = async {
            crate::notify::dispatcher::spawn(&app, channels, &token, &mut tasks).await?;
            for check in crate::checks::configured(&app.config) {
                // On a full disk this write fails; opswatch still starts (with /health saying
                // why) and each check creates its row itself once the store takes writes again.
                let row = match app
                    .store
                    .ensure_check(check.name(), check.kind())
                    .await
                {
                    Ok(row) => row,
                    Err(e) if crate::store::storage_fault(&e).is_some() => {
                        tracing::error!(check = %check.name(), error = format!("{e:#}"), "cannot record the check yet");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // /metrics shows a check from the start, in the state it was left in.
                if row.state != crate::store::CheckState::Unknown {
                    app.metrics
                        .check_up
                        .get_or_create(&crate::jobs::updown::labels(check.as_ref()))
                        .set(i64::from(row.state != crate::store::CheckState::Down));
                }
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = started {
            token.cancel();
            tasks.abort_all();
            return Err(e);
        }
        let mut resumed = Scheduler::default();
        for job in scheduler.jobs() {
            resumed.add(resume(job.clone(), starts, &token));
        }
        resumed
            .resume_failure_streaks(&app, &crate::reports::this_host())
            .await;
        resumed.spawn(&app, &token, &mut tasks);
        crate::jobs::pm2_events::spawn(&app, &token, &mut tasks);
        Ok(Self { app, token, tasks })
    }

    /// Stops this generation: no new runs; runs and deliveries in flight finish, up to
    /// `grace`, after which they are abandoned.
    async fn stop(mut self, grace: Duration) {
        self.token.cancel();
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            tracing::warn!(
                left = self.tasks.len(),
                "work of the previous config still running at the end of the grace period; abandoning it"
            );
            self.tasks.abort_all();
        }
    }
}

/// `job`, keeping the rhythm of interval jobs across generations.
///
/// The scheduler starts an interval job at once and then every `every` after a run *began*.
/// A job that already ran under an earlier generation instead waits for its next slot (last
/// start + `every`), and every later run waits for the slot after the previous start: the
/// scheduler's ticks stay a constant offset ahead of the slots, so probes keep exactly their
/// interval (none doubled, none skipped). The wait happens inside the run, holding one of the
/// scheduler's permits; each run still gets the job's own timeout.
fn resume(mut job: Job, starts: &Starts, token: &CancellationToken) -> Job {
    let Trigger::Every(every) = job.trigger else {
        return job;
    };
    let now = Instant::now();
    let first_slot = starts
        .lock()
        .ok()
        .and_then(|s| s.get(&job.name).map(|last| *last + every))
        .filter(|slot| *slot > now)
        // Across generations only real time counts (a test's clock does not wake it).
        .map(|slot| (slot, i64::MAX));
    let every_ms = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let slot = Arc::new(Mutex::new(first_slot));
    let (inner, name, own_timeout) = (job.run.clone(), job.name.clone(), job.timeout);
    job.timeout = own_timeout + every;
    let (starts, token) = (starts.clone(), token.clone());
    job.run = Arc::new(move |app| {
        let (inner, name, starts, token, slot) = (
            inner.clone(),
            name.clone(),
            starts.clone(),
            token.clone(),
            slot.clone(),
        );
        Box::pin(async move {
            let wait_until = slot.lock().ok().and_then(|s| *s);
            if let Some((at, due_ms)) = wait_until.filter(|(at, _)| *at > Instant::now()) {
                // A test's clock already moved past the slot: no real wait.
                let mut moves = app.clock.watch_moves();
                if moves.is_none() || app.clock.now_ms() < due_ms {
                    tokio::select! {
                        // Stopped before its slot: this generation does not run it.
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep_until(at) => {}
                        _ = app.clock.moved_past(&mut moves, due_ms) => {}
                    }
                }
            }
            let started = Instant::now();
            let started_ms = app.clock.now_ms();
            if let Ok(mut s) = slot.lock() {
                *s = Some((started + every, started_ms.saturating_add(every_ms)));
            }
            if let Ok(mut s) = starts.lock() {
                s.insert(name, started);
            }
            tokio::time::timeout(own_timeout, inner(app))
                .await
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!(
                        "timed out after {}s",
                        own_timeout.as_secs_f64()
                    ))
                })
        })
    });
    job
}

/// Owns the running generation and replaces it on request.
pub struct Supervisor {
    current: Option<Generation>,
    source: Option<Source>,
    starts: Starts,
    router: watch::Sender<Router>,
    requests: mpsc::Receiver<oneshot::Sender<Outcome>>,
    hangup: Option<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
}

impl Supervisor {
    /// Starts the first generation for `app` and listens for SIGHUP at once (before readiness
    /// is reported: SIGHUP's default action would end the process). `source: None` (tests
    /// calling `launch`) refuses reloads.
    pub async fn start(
        app: &AppState,
        source: Option<Source>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload only through the API");
                None
            }
        };
        let (tx, requests) = mpsc::channel(4);
        let _ = app.reload.0.set(tx);
        let starts = Starts::default();
        let first = Generation::start(Parts::build(app.clone())?, shutdown, &starts).await?;
        Ok(Self {
            current: Some(first),
            source,
            starts,
            router: watch::Sender::new(crate::web::router(app.clone())),
            requests,
            hangup,
            shutdown: shutdown.clone(),
        })
    }

    /// The router to serve: it forwards every request to the current generation's router.
    pub fn router(&self) -> Router {
        let current = self.router.subscribe();
        Router::new().fallback_service(tower::service_fn(move |request| {
            let router = current.borrow().clone();
            async move { tower::ServiceExt::oneshot(router, request).await }
        }))
    }

    /// Serves reload requests until shutdown, then stops the current generation.
    pub async fn run(mut self, grace: Duration) {
        loop {
            let hangup = async {
                match self.hangup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            // A panic in the generation's own tasks (a dispatcher, the PM2 listener, a
            // scheduler loop; not a job run, which is contained) goes up to `serve`, which
            // stops opswatch rather than run on without it.
            let panicked = async {
                match self.current.as_mut() {
                    Some(g) => loop {
                        match g.tasks.join_next().await {
                            Some(Err(e)) if e.is_panic() => break e.into_panic(),
                            Some(_) => {}
                            None => std::future::pending::<()>().await,
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                payload = panicked => std::panic::resume_unwind(payload),
                Some(()) = hangup => {
                    let _ = self.reload(grace).await;
                }
                Some(reply) = self.requests.recv() => {
                    let outcome = self.reload(grace).await;
                    let _ = reply.send(outcome);
                }
            }
        }
        if let Some(current) = self.current.take() {
            current.stop(grace).await;
        }
    }

    async fn reload(&mut self, grace: Duration) -> Outcome {
        sd_notify::reloading();
        let began = std::time::Instant::now();
        let outcome = self.replace(grace).await.map(|mut applied| {
            applied.took_ms = began.elapsed().as_secs_f64() * 1000.0;
            applied
        });
        match &outcome {
            Ok(a) => {
                tracing::info!(
                    jobs = a.jobs,
                    channels = a.channels,
                    took_ms = a.took_ms,
                    "config reloaded"
                );
                sd_notify::reloaded("watching (config reloaded)");
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; the running config stays");
                sd_notify::reloaded("watching (config reload refused: see the log)");
            }
        }
        outcome
    }

    async fn replace(&mut self, grace: Duration) -> Outcome {
        let Some(source) = &self.source else {
            return Err(Refused::Unavailable(
                "it was started without a config source",
            ));
        };
        let Some(current) = self.current.take() else {
            return Err(Refused::Unavailable("it is shutting down"));
        };
        let mut config = match Config::load(source.path.as_deref()) {
            Ok(c) => c,
            Err(e) => {
                self.current = Some(current);
                return Err(Refused::Invalid(e));
            }
        };
        let bound = current.app.config.server.listen;
        let wanted = source.listen_override.unwrap_or(config.server.listen);
        if wanted != bound {
            tracing::warn!(%bound, new = %wanted, "server.listen changed: it takes effect at the next restart");
        }
        config.server.listen = bound;
        let parts = match Parts::build(current.app.with_config(config)) {
            Ok(p) => p,
            Err(e) => {
                self.current = Some(current);
                return Err(Refused::Failed(format!("{e:#}")));
            }
        };
        let (jobs, channels) = (parts.scheduler.jobs().len(), parts.channels.len());
        let new_app = parts.app.clone();
        let old_app = current.app.clone();
        current.stop(grace).await;
        match Generation::start(parts, &self.shutdown, &self.starts).await {
            Ok(next) => {
                self.current = Some(next);
                drop(self.router.send_replace(crate::web::router(new_app)));
                Ok(Applied {
                    file: source.path.clone(),
                    jobs,
                    channels,
                    took_ms: 0.0,
                })
            }
            Err(e) => {
                // The new config passed every check but could not start (the store refused
                // a write): go back to the old one rather than run nothing.
                let why = format!("{e:#}");
                match Parts::build(old_app) {
                    Ok(parts) => match Generation::start(parts, &self.shutdown, &self.starts).await
                    {
                        Ok(old) => self.current = Some(old),
                        Err(e) => tracing::error!(
                            error = format!("{e:#}"),
                            "cannot restart the previous config either; checks are not running"
                        ),
                    },
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "cannot rebuild the previous config; checks are not running"
                    ),
                }
                Err(Refused::Failed(why))
            }
        }
    }
}
