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
    pub health: Health,
    /// Everything `/metrics` exports.
    pub metrics: Metrics,
    /// Names of the configured channels (`telegram`, `webhook:NAME`): each alert gets one
    /// outbox row per channel.
    pub channels: Vec<String>,
    /// The latest host, PM2 and systemd readings.
    pub live: crate::daemon::live::Live,
    /// Bumped when an alert was written, so the dispatcher sends it at once.
    pub outbox_wake: tokio::sync::watch::Sender<u64>,
    /// API token digests and the bounded password checker.
    pub auth: crate::web::auth::Auth,
}

impl AppState {
    pub fn new(mut config: Config, store: Store) -> Self {
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
            health: Health::new(backend),
            metrics: Metrics::new(),
            channels,
            live: Default::default(),
            outbox_wake: tokio::sync::watch::Sender::new(0),
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
