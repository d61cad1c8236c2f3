//! The state every part of a running opswatch shares.

use std::ops::Deref;
use std::sync::Arc;

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
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
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Self {
        let backend = match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        Self(Arc::new(App {
            config,
            store,
            health: Health::new(backend),
            metrics: Metrics::new(),
        }))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
