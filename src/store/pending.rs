//! Check results waiting to be written: a steady probe result (nothing but the result is new)
//! is queued in memory and written by one background writer in batches, so a probe never
//! waits on the store. While the store does not take writes (another process holds SQLite's
//! write lock, the disk is full, PostgreSQL is restarting) results wait here and go in as one
//! batch once it does: a lock of a minute loses no result, and no check skips a probe because
//! its write was stuck behind the lock.
//!
//! Bounded: past [`MAX_PENDING`] results the oldest are dropped (counted and logged), so a
//! store that never comes back cannot exhaust memory. Pending results die with the process.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ResultRow, Store, on_writer};

/// At most this many results wait in memory (about 200 bytes each): an hour of 14 checks
/// probing every second.
const MAX_PENDING: usize = 50_000;
/// Results per statement: eight parameters each stays under SQLite's limit of 32,766.
const BATCH: usize = 2_000;
/// Once a result wakes the writer, it waits this long for the rest of the round: checks with
/// the same `every` probe together, and one statement for all their results is one round trip
/// to the store's connection, where a statement each cost a round trip per result (and on
/// SQLite a wake-up of the connection's thread each; BENCHMARKS.md, issue 10).
const GATHER: Duration = Duration::from_millis(250);
/// After a failed write, the writer tries again this often.
const RETRY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct PendingResults {
    rows: Mutex<VecDeque<(i64, ResultRow)>>,
    wake: tokio::sync::Notify,
    /// Whether a background writer runs; without one (CLI, unit tests) a result is written
    /// at once by the caller.
    background: AtomicBool,
    dropped: AtomicU64,
}

impl PendingResults {
    fn push(&self, check_id: i64, result: ResultRow) {
        let Ok(mut rows) = self.rows.lock() else {
            return;
        };
        if rows.len() >= MAX_PENDING {
            rows.pop_front();
            if self
                .dropped
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(1_000)
            {
                tracing::error!(
                    max = MAX_PENDING,
                    "the store has not taken check results for a long time; dropping the oldest"
                );
            }
        }
        rows.push_back((check_id, result));
    }

    fn take(&self, n: usize) -> Vec<(i64, ResultRow)> {
        let Ok(mut rows) = self.rows.lock() else {
            return Vec::new();
        };
        let n = n.min(rows.len());
        rows.drain(..n).collect()
    }

    /// Puts a batch that could not be written back in front, in its order.
    fn put_back(&self, batch: Vec<(i64, ResultRow)>) {
        if let Ok(mut rows) = self.rows.lock() {
            for row in batch.into_iter().rev() {
                rows.push_front(row);
            }
            while rows.len() > MAX_PENDING {
                rows.pop_front();
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.lock().map_or(0, |r| r.len())
    }
}

impl Store {
    /// Queues a check result to be written soon (by the background writer, or now when there
    /// is none). An error means it was not written yet; it stays queued.
    pub(crate) async fn queue_result(
        &self,
        check_id: i64,
        result: &ResultRow,
    ) -> anyhow::Result<()> {
        self.pending.push(check_id, result.clone());
        if self.pending.background.load(Ordering::Acquire) {
            self.pending.wake.notify_one();
            return Ok(());
        }
        self.write_pending_results().await.map(|_| ())
    }

    /// Keeps a result whose transaction the store refused, for history: written with the
    /// next batch.
    pub(crate) fn keep_result_for_later(&self, check_id: i64, result: &ResultRow) {
        self.pending.push(check_id, result.clone());
        self.pending.wake.notify_one();
    }

    /// Results queued and not written yet.
    pub fn pending_results(&self) -> usize {
        self.pending.len()
    }

    /// Writes every queued result, a batch per statement. Returns how many were written;
    /// on an error the unwritten ones stay queued.
    pub async fn write_pending_results(&self) -> anyhow::Result<usize> {
        let mut written = 0;
        loop {
            let batch = self.pending.take(BATCH);
            if batch.is_empty() {
                return Ok(written);
            }
            // One statement, so no transaction: it goes in whole or not at all.
            let outcome = on_writer!(self, |pool| {
                // Not prepared for reuse: its text changes with the batch's length.
                super::checks::insert_results(batch.iter().map(|(id, result)| (*id, result)))
                    .build()
                    .persistent(false)
                    .execute(pool)
                    .await
                    .map(|_| ())
            });
            if let Err(e) = outcome {
                self.pending.put_back(batch);
                return Err(e.into());
            }
            written += batch.len();
        }
    }

    /// The background writer: writes queued results as they come, retrying every second
    /// while the store refuses them (`on_error` hears each failure). On `shutdown` it makes a
    /// last attempt and returns.
    pub async fn write_results_forever(
        &self,
        shutdown: CancellationToken,
        on_error: impl Fn(&anyhow::Error),
    ) {
        self.pending.background.store(true, Ordering::Release);
        let mut failing = false;
        loop {
            let failed = match self.write_pending_results().await {
                Ok(written) => {
                    if failing {
                        tracing::info!(written, "the store takes check results again");
                    }
                    false
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(
                            pending = self.pending.len(),
                            error = format!("{e:#}"),
                            "cannot write check results; keeping them until the store takes them"
                        );
                    }
                    on_error(&e);
                    true
                }
            };
            failing = failed;
            if shutdown.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.pending.wake.notified(), if !failed => {}
                // Idle, the writer sleeps until a result comes (`notify_one` keeps a permit
                // when nobody waits): no wake-up a second for an empty queue.
                _ = tokio::time::sleep(RETRY_EVERY), if failed => {}
            }
            if !failed && self.pending.len() > 0 {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(GATHER) => {}
                }
            }
        }
        self.pending.background.store(false, Ordering::Release);
        if let Err(e) = self.write_pending_results().await {
            tracing::warn!(
                left = self.pending.len(),
                error = format!("{e:#}"),
                "check results not written at shutdown"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BATCH;
    use crate::checks::CheckKind;
    use crate::store::ResultRow;

    fn result(at_ms: i64, ok: bool) -> ResultRow {
        ResultRow {
            at_ms,
            ok,
            latency_ms: ok.then_some(12),
            status_code: ok.then_some(200),
            error_kind: (!ok).then(|| "timeout".to_owned()),
            error: (!ok).then(|| "no answer in 5s".to_owned()),
            cert_expires_ms: None,
        }
    }

    #[tokio::test]
    async fn a_backlog_longer_than_a_batch_goes_in_whole_and_a_repeat_is_ignored() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let api = app
            .store
            .ensure_check("api", CheckKind::Http)
            .await
            .unwrap();
        let db = app.store.ensure_check("db", CheckKind::Tcp).await.unwrap();
        let n = BATCH as i64 + 7;
        for at in 1..=n {
            app.store
                .keep_result_for_later(api.id, &result(at, at % 3 != 0));
        }
        app.store.keep_result_for_later(db.id, &result(5, false));
        // The same check and time again: the store keeps the first.
        app.store.keep_result_for_later(api.id, &result(1, false));

        let written = app.store.write_pending_results().await.unwrap();
        assert_eq!(written, BATCH + 9);
        assert_eq!(app.store.pending_results(), 0);

        let (count, failed, first_ok): (i64, i64, bool) =
            crate::store::on_reader!(app.store, |pool| {
                sqlx::query_as(
                    "SELECT COUNT(*), SUM(CASE WHEN ok THEN 0 ELSE 1 END), \
                 MAX(CASE WHEN at_ms = 1 THEN ok END) FROM check_results WHERE check_id = $1",
                )
                .bind(api.id)
                .fetch_one(pool)
                .await
            })
            .unwrap();
        assert_eq!(count, n);
        assert_eq!(failed, n / 3);
        assert!(
            first_ok,
            "the repeat of at_ms = 1 replaced the first result"
        );
        let (kind, error): (String, String) = crate::store::on_reader!(app.store, |pool| {
            sqlx::query_as("SELECT error_kind, error FROM check_results WHERE check_id = $1")
                .bind(db.id)
                .fetch_one(pool)
                .await
        })
        .unwrap();
        assert_eq!(
            (kind.as_str(), error.as_str()),
            ("timeout", "no answer in 5s")
        );
    }
}
