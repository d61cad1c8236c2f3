//! `opswatch serve`: the store, the background tasks and the web server in one process, tied
//! to one cancellation token so that a signal stops them all in order.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon::health::{STORE_PROBE_EVERY, STORE_PROBE_TIMEOUT};
pub use crate::daemon::reload::Source;
use crate::daemon::reload::Supervisor;
use crate::daemon::state::AppState;
use crate::store::{Store, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("{0:#}")]
    Store(anyhow::Error),
    #[error("{0:#}")]
    Setup(anyhow::Error),
    #[error("the web server failed: {0}")]
    Web(std::io::Error),
    /// A task of the daemon itself (not a job: those are contained) panicked. Rather than
    /// run on without it (no results written, no alerts sent), opswatch stops and lets the
    /// service manager start it again.
    #[error("a background task panicked: {0}; stopping")]
    Panicked(String),
}

/// Binds `config.server.listen`, runs until SIGINT/SIGTERM, then shuts down cleanly. Without
/// a `source` a reload is refused.
pub async fn run(config: Config, source: Option<Source>) -> Result<(), ServeError> {
    crate::daemon::resources::raise_nofile_limit();
    let addr = config.server.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr,
            reason: match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "the address is already in use (is opswatch already running?)".to_owned()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (ports below 1024 need privileges)".to_owned()
                }
                _ => e.to_string(),
            },
        })?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    launch_reloadable(config, source, listener, shutdown).await
}

/// Runs opswatch on an already bound listener until `shutdown` is cancelled.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    launch_reloadable(config, None, listener, shutdown).await
}

/// [`launch`], re-reading the config from `source` on SIGHUP or `POST /api/v1/reload`.
pub async fn launch_reloadable(
    config: Config,
    source: Option<Source>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let store = Store::open_as(config.storage.url.expose(), &config.host)
        .await
        .map_err(ServeError::Store)?;
    run_app(AppState::new(config, store), source, listener, shutdown).await
}

/// Runs an app whose store is open: the in-process test harness (`tests/it/support/app.rs`)
/// builds the app itself, with a manual clock, and keeps a handle to it.
pub async fn run_app(
    app: AppState,
    source: Option<Source>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let grace = app.config.server.shutdown_grace.get();
    if !app.config.auth.users.is_empty() {
        // The dummy hash for unknown users costs one hash: pay it now, not in the first login.
        let passwords = app.auth.passwords.clone();
        tokio::task::spawn_blocking(move || passwords.warm_up());
    }
    // One probe and one heartbeat before the first request, so /health is right from the
    // start (a pinger must never see a false 503 while opswatch boots).
    probe_store(&app).await;
    app.health.record_heartbeat(now_ms());

    let mut tasks = JoinSet::new();
    tasks.spawn(probe_store_forever(app.clone(), shutdown.clone()));
    tasks.spawn({
        let (app, shutdown) = (app.clone(), shutdown.clone());
        async move {
            let on_error = |e: &anyhow::Error| {
                if let Some(fault) = crate::store::storage_fault(e) {
                    app.health.record_write_fault(now_ms(), fault);
                }
            };
            app.store.write_results_forever(shutdown, on_error).await;
        }
    });
    // Runs left `running` by a previous process were cut short by its end.
    if let Err(e) = app
        .store
        .mark_interrupted_job_runs(&crate::reports::this_host(), now_ms())
        .await
    {
        tracing::warn!(error = format!("{e:#}"), "cannot mark interrupted job runs");
    }
    // The checks, jobs and channels run under the reload supervisor (daemon/reload.rs), which
    // replaces them when the config is reloaded.
    let supervisor = Supervisor::start(&app, source, &shutdown)
        .await
        .map_err(ServeError::Setup)?;
    crate::daemon::sd_notify::spawn_watchdog(&app, &shutdown, &mut tasks);

    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "opswatch is listening");
    }
    // The store is migrated and the listener bound: the web server below only starts
    // accepting what the kernel already queues.
    crate::daemon::sd_notify::ready();
    let web = crate::web::serve_router(app.clone(), supervisor.router(), listener, {
        let shutdown = shutdown.clone();
        async move { shutdown.cancelled().await }
    });
    tasks.spawn(supervisor.run(grace));
    let mut web = std::pin::pin!(web);
    let mut panicked = None;
    let outcome = tokio::select! {
        r = &mut web => r,
        what = first_panic(&mut tasks) => {
            tracing::error!(panic = %what, "a background task panicked; stopping");
            panicked = Some(what);
            shutdown.cancel();
            tokio::time::timeout(grace, &mut web).await.unwrap_or(Ok(()))
        }
        _ = shutdown.cancelled() => {
            match tokio::time::timeout(grace, &mut web).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(grace_s = grace.as_secs_f64(), "requests still open at the end of the grace period");
                    Ok(())
                }
            }
        }
    };
    shutdown.cancel();
    crate::daemon::sd_notify::stopping();
    drain(&mut tasks, grace).await;
    app.store.close().await;
    if let Some(what) = panicked {
        return Err(ServeError::Panicked(what));
    }
    outcome.map_err(ServeError::Web)
}

/// Waits until one of `tasks` panics; tasks that end normally (a watchdog without systemd)
/// are fine. Jobs never show here: each run is its own task (`daemon/job_run.rs`).
async fn first_panic(tasks: &mut JoinSet<()>) -> String {
    loop {
        match tasks.join_next().await {
            Some(Err(e)) if e.is_panic() => {
                return crate::daemon::job_run::panic_message(e.into_panic());
            }
            Some(_) => {}
            None => std::future::pending::<()>().await,
        }
    }
}

async fn drain(tasks: &mut JoinSet<()>, grace: Duration) {
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all_done).await.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "background work still running at the end of the grace period; abandoning it"
        );
        tasks.abort_all();
    }
}

async fn probe_store(app: &AppState) {
    let was_ok = app.health.store_ok(now_ms());
    let outcome = tokio::time::timeout(STORE_PROBE_TIMEOUT, app.store.probe(now_ms())).await;
    let now = now_ms();
    match outcome {
        Ok(Ok(())) => {
            app.health.record_store_ok(now);
            if !was_ok {
                tracing::debug!("store is reachable");
            }
        }
        Ok(Err(e)) => {
            if was_ok {
                tracing::error!(error = format!("{e:#}"), "store probe failed");
            }
            app.health.record_store_error(format!("{e:#}"));
        }
        Err(_) => {
            if was_ok {
                tracing::error!("store probe timed out");
            }
            app.health.record_store_error(format!(
                "probe timed out after {}s",
                STORE_PROBE_TIMEOUT.as_secs()
            ));
        }
    }
    app.metrics
        .store_up
        .set(i64::from(app.health.store_ok(now)));
}

async fn probe_store_forever(app: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(STORE_PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => probe_store(&app).await,
        }
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = ctrl_c.await;
            shutdown.cancel();
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
