//! Where a running opswatch reads the time. Rules, the digest, reminders, silences, the
//! dispatcher's retry times and retention take "now" from the app's [`Clock`], so tests can
//! move time themselves instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// The system clock in production; a clock the test moves by hand in tests.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A clock that stands at `start_ms` (unix epoch milliseconds) until moved.
    pub fn manual(start_ms: i64) -> Self {
        Self::Manual(Arc::new(AtomicI64::new(start_ms)))
    }

    /// Milliseconds since the unix epoch, the store's time unit.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => crate::store::now_ms(),
            Self::Manual(at) => at.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    ///
    /// # Panics
    /// On the system clock: a test that thinks it controls time must not silently wait.
    pub fn advance(&self, by: Duration) {
        match self {
            Self::System => panic!("the system clock cannot be advanced"),
            Self::Manual(at) => {
                let by = i64::try_from(by.as_millis()).expect("a sane duration");
                at.fetch_add(by, Ordering::SeqCst);
            }
        }
    }

    /// Sets a manual clock to `at_ms`.
    ///
    /// # Panics
    /// On the system clock.
    pub fn set(&self, at_ms: i64) {
        match self {
            Self::System => panic!("the system clock cannot be set"),
            Self::Manual(at) => at.store(at_ms, Ordering::SeqCst),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now_ms(), 6_000);
        let shared = clock.clone();
        shared.set(42);
        assert_eq!(clock.now_ms(), 42);
    }

    #[test]
    fn the_system_clock_is_now() {
        let before = crate::store::now_ms();
        let now = Clock::System.now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}
