//! Helpers for the unit tests inside the crate.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::daemon::state::AppState;
use crate::store::Store;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// An app on a fresh SQLite file in its own temporary folder.
pub async fn app_on_temp_sqlite() -> AppState {
    let dir = std::env::temp_dir().join(format!(
        "opswatch-unit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/t.db", dir.display());
    let store = Store::open(&url).await.expect("test store opens");
    AppState::new(Config::default(), store)
}
