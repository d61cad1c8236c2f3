//! Helpers for the unit tests inside the crate.

use std::path::PathBuf;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::daemon::state::AppState;
use crate::store::Store;

static NEXT: AtomicU64 = AtomicU64::new(0);
static SWEEP: Once = Once::new();

const PREFIX: &str = "opswatch-unit-";

/// An app on a fresh SQLite file in its own temporary folder.
///
/// The folders of one test process live under `opswatch-unit-PID`; an `AppState` cannot own a
/// `TempDir`, so instead the first call of each process removes the folders of test processes
/// that are gone. At most one run's files are ever left behind.
pub async fn app_on_temp_sqlite() -> AppState {
    SWEEP.call_once(remove_folders_of_finished_runs);
    let dir = run_folder().join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/t.db", dir.display());
    let store = Store::open(&url).await.expect("test store opens");
    AppState::new(Config::default(), store)
}

fn run_folder() -> PathBuf {
    std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()))
}

fn remove_folders_of_finished_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        // Older runs named folders `PID-N`; both forms start with the pid.
        let pid = pid.split('-').next().unwrap_or(pid);
        let alive = pid.parse::<u32>().is_ok_and(|pid| {
            pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
