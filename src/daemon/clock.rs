//! Where a running opswatch reads the time. Rules, the digest, reminders, silences, the
//! dispatcher's retry times and retention take "now" from the app's [`Clock`], so tests can
//! move time themselves instead of waiting for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// The system clock in production; a clock the test moves by hand in tests.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<ManualClock>),
}

/// A clock's reading and a signal to the interval jobs that it moved, so that a job due on
/// the moved clock runs at once instead of after its interval of real time.
#[derive(Debug)]
pub struct ManualClock {
    at: AtomicI64,
    moved: watch::Sender<()>,
}

impl ManualClock {
    fn set(&self, at_ms: i64) {
        self.at.store(at_ms, Ordering::SeqCst);
        self.moved.send_replace(());
    }
}

impl Clock {
    /// A clock that stands at `start_ms` (unix epoch milliseconds) until moved.
    pub fn manual(start_ms: i64) -> Self {
        Self::Manual(Arc::new(ManualClock {
            at: AtomicI64::new(start_ms),
            moved: watch::Sender::new(()),
        }))
    }

    /// Milliseconds since the unix epoch, the store's time unit.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => crate::store::now_ms(),
            Self::Manual(m) => m.at.load(Ordering::SeqCst),
        }
    }

    /// Completes once this clock reads `due_ms` or later after being moved by hand; never
    /// on the system clock (its jobs wait for real time). Moves made before the call count
    /// from the first one after `watch` was taken.
    pub async fn moved_past(&self, watch: &mut Option<watch::Receiver<()>>, due_ms: i64) {
        let Some(rx) = watch else {
            return std::future::pending().await;
        };
        loop {
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
            if self.now_ms() >= due_ms {
                return;
            }
        }
    }

    /// What [`moved_past`](Self::moved_past) waits on: `None` on the system clock.
    pub fn watch_moves(&self) -> Option<watch::Receiver<()>> {
        match self {
            Self::System => None,
            Self::Manual(m) => Some(m.moved.subscribe()),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    ///
    /// # Panics
    /// On the system clock: a test that thinks it controls time must not silently wait.
    pub fn advance(&self, by: Duration) {
        match self {
            Self::System => panic!("the system clock cannot be advanced"),
            Self::Manual(m) => {
                let by = i64::try_from(by.as_millis()).expect("a sane duration");
                m.set(m.at.load(Ordering::SeqCst) + by);
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
            Self::Manual(m) => m.set(at_ms),
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

    #[tokio::test]
    async fn a_move_wakes_a_waiter_only_once_the_due_time_is_reached() {
        let clock = Clock::manual(1_000);
        let mut watch = clock.watch_moves();
        let wait = clock.moved_past(&mut watch, 3_000);
        tokio::pin!(wait);
        clock.advance(Duration::from_millis(1_000));
        let early = tokio::time::timeout(Duration::from_millis(50), &mut wait).await;
        assert!(early.is_err(), "woke before the due time");
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the move past the due time woke the waiter");
    }

    #[test]
    fn the_system_clock_is_now() {
        let before = crate::store::now_ms();
        let now = Clock::System.now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}
