//! Which jobs a running opswatch has: one line per job kind, built from the config.

use crate::app::AppState;
use crate::scheduler::Scheduler;

/// The scheduler with every job the config asks for.
pub fn scheduler(_app: &AppState) -> Scheduler {
    Scheduler::default()
}
