//! The state every part of a running opswatch shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::daemon::health::Health;
use crate::daemon::metrics::Metrics;
use crate::store::{Backend, Store};

/// Cheap to clone; handed to the router and to every background task.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    /// The validated config this process runs with.
    pub config: Config,
    /// opswatch's own history.
    pub store: Store,
    /// Liveness of the store and scheduler, read by `/health` without touching the store.
    pub health: Arc<Health>,
    /// Everything `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// Names of the configured channels (`telegram`, `webhook:NAME`): each alert gets one
    /// outbox row per channel.
    pub channels: Vec<String>,
    /// The latest host, PM2 and systemd readings.
    pub live: Arc<crate::daemon::live::Live>,
    /// Every scheduled job and when it runs next (`GET /api/v1/jobs`).
    pub jobs: crate::daemon::job_run::JobBoard,
    /// Bumped when an alert was written, so the dispatcher sends it at once.
    pub outbox_wake: tokio::sync::watch::Sender<u64>,
    /// Where rules, the digest, silences, the dispatcher and retention read the time.
    pub clock: crate::daemon::clock::Clock,
    /// Asks the running `serve` to re-read its config (`POST /api/v1/reload`, like SIGHUP).
    pub reload: crate::daemon::reload::Handle,
    /// API token digests and the bounded password checker.
    pub auth: crate::web::auth::Auth,
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Self {
        Self::with_clock(config, store, crate::daemon::clock::Clock::System)
    }

    /// An app whose time comes from `clock` (tests pass a manual one).
    pub fn with_clock(
        mut config: Config,
        store: Store,
        clock: crate::daemon::clock::Clock,
    ) -> Self {
        // Only the tokens' digests stay in memory (`auth`): the plain tokens are dropped here.
        let auth = crate::web::auth::Auth::from_config(&config);
        for t in &mut config.auth.tokens {
            t.token = crate::config::Secret::new("");
        }
        let backend = match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let channels = crate::notify::channel_names(&config);
        Self(Arc::new(App {
            config,
            store,
            health: Arc::new(Health::new(backend)),
            metrics: Arc::new(Metrics::new()),
            channels,
            live: Default::default(),
            jobs: Default::default(),
            outbox_wake: tokio::sync::watch::Sender::new(0),
            clock,
            reload: Default::default(),
            auth,
        }))
    }

    /// The state of a reloaded config: everything that outlives a config (the store, health,
    /// metrics, live readings, the outbox wake-up, the reload handle) is shared with `self`.
    pub fn with_config(&self, mut config: Config) -> Self {
        let auth = crate::web::auth::Auth::from_config(&config);
        for t in &mut config.auth.tokens {
            t.token = crate::config::Secret::new("");
        }
        Self(Arc::new(App {
            channels: crate::notify::channel_names(&config),
            config,
            store: self.store.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            live: self.live.clone(),
            // The new generation's scheduler fills its own board (last runs stay in the store).
            jobs: Default::default(),
            outbox_wake: self.outbox_wake.clone(),
            reload: self.reload.clone(),
            clock: self.clock.clone(),
            auth,
        }))
    }
}

impl App {
    /// Tells the dispatcher that the outbox has something new.
    pub fn wake_dispatcher(&self) {
        self.outbox_wake.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
