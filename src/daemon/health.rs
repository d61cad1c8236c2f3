//! opswatch's own liveness, kept in memory so that `/health` never waits on the store or a
//! check: background tasks write timestamps here, the handler only reads them.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How often the store is probed with a real write.
pub const STORE_PROBE_EVERY: Duration = Duration::from_secs(5);
/// A probe slower than this counts as a failure.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// With no successful probe for this long the store counts as down even if no probe failed
/// (a probe stuck on a lock never reports).
const STORE_STALE_AFTER_MS: i64 = 20_000;
/// After a write failed because the store could not take it (full disk, I/O error, lock held
/// too long), the store counts as down for this long even if a small probe write got through
/// in between: on a full disk a one-page write may fit where a check's transaction does not.
const STORE_FAULT_HOLD_MS: i64 = 20_000;
/// After opswatch ran out of descriptors or memory (a check or `accept` failed with EMFILE,
/// ENFILE, ENOMEM), it counts as unhealthy for this long.
const LOCAL_FAULT_HOLD_MS: i64 = 60_000;
/// How often the scheduler proves it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const SCHEDULER_STALE_AFTER_MS: i64 = 30_000;
/// A channel whose oldest pending alert has waited this long counts as failing (PRODUCT.md:
/// "an alert undelivered for 5 minutes"), whatever the reason (5xx, timeouts, 429s).
pub const UNDELIVERED_FAILING_MS: i64 = 5 * 60_000;

#[derive(Debug)]
pub struct Health {
    started: Instant,
    backend: &'static str,
    /// Epoch ms of the last successful store probe; 0 before the first.
    store_ok_ms: AtomicI64,
    /// Why the last probe failed; `None` after a success.
    store_error: RwLock<Option<String>>,
    /// Epoch ms and reason of the last write that failed because the store could not take
    /// it, wherever it happened (a check, an alert, the outbox).
    write_fault: RwLock<Option<(i64, String)>>,
    /// Epoch ms and description of the last time opswatch itself ran out of descriptors or
    /// memory.
    local_fault: RwLock<Option<(i64, String)>>,
    /// (percent used, bytes free) of the filesystem under the SQLite store, when looked at.
    store_disk: RwLock<Option<(f64, u64)>>,
    /// Epoch ms of the scheduler's last heartbeat; 0 before the first.
    scheduler_tick_ms: AtomicI64,
    /// Delivery health per channel. A broken channel does not make opswatch unhealthy (it
    /// keeps alerts queued), but it is shown.
    channels: RwLock<BTreeMap<String, ChannelHealth>>,
    /// Per channel, the creation time (on the app's clock) of its oldest pending delivery;
    /// absent when nothing waits. Kept by the dispatcher after each attempt.
    pending_since: RwLock<BTreeMap<String, i64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChannelHealth {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The `/health` body.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub version: &'static str,
    pub uptime_s: u64,
    pub store: Component,
    pub scheduler: Component,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, ChannelHealth>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Component {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<&'static str>,
    /// Seconds since it last proved itself; absent if it never did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<f64>,
    /// Percent used of the filesystem under the SQLite store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_used_pct: Option<f64>,
    /// Bytes free there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_free_bytes: Option<u64>,
}

impl Health {
    pub fn new(backend: &'static str) -> Self {
        Self {
            started: Instant::now(),
            backend,
            store_ok_ms: AtomicI64::new(0),
            store_error: RwLock::new(None),
            write_fault: RwLock::new(None),
            store_disk: RwLock::new(None),
            local_fault: RwLock::new(None),
            scheduler_tick_ms: AtomicI64::new(0),
            channels: RwLock::new(BTreeMap::new()),
            pending_since: RwLock::new(BTreeMap::new()),
        }
    }

    /// Per configured channel with deliveries pending, when the oldest of them was queued
    /// (app clock); replaces what was known, so an emptied or removed channel is forgotten.
    pub fn record_pending_since(&self, oldest: BTreeMap<String, i64>) {
        if let Ok(mut p) = self.pending_since.write() {
            *p = oldest;
        }
    }

    /// The channels as `/health` shows them at `clock_ms` (the app's clock): as the
    /// dispatcher last recorded them, and failing when an alert has waited
    /// [`UNDELIVERED_FAILING_MS`] or more.
    fn channels_at(&self, clock_ms: i64) -> BTreeMap<String, ChannelHealth> {
        let mut channels = self.channels.read().map(|c| c.clone()).unwrap_or_default();
        let Ok(pending) = self.pending_since.read() else {
            return channels;
        };
        for (name, since) in pending.iter() {
            let waited = clock_ms - since;
            if waited < UNDELIVERED_FAILING_MS {
                continue;
            }
            let entry = channels.entry(name.clone()).or_insert(ChannelHealth {
                ok: true,
                error: None,
            });
            if entry.ok {
                entry.ok = false;
                entry.error = Some(format!("an alert undelivered for {} min", waited / 60_000));
            }
        }
        channels
    }

    pub fn record_channel(&self, name: &str, ok: bool, error: Option<String>) {
        if let Ok(mut c) = self.channels.write() {
            c.insert(name.to_owned(), ChannelHealth { ok, error });
        }
    }

    pub fn channel_ok(&self, name: &str) -> Option<bool> {
        self.channels.read().ok()?.get(name).map(|c| c.ok)
    }

    pub fn record_store_ok(&self, now_ms: i64) {
        self.store_ok_ms.store(now_ms, Ordering::Relaxed);
        if let Ok(mut e) = self.store_error.write() {
            *e = None;
        }
    }

    pub fn record_store_error(&self, why: String) {
        if let Ok(mut e) = self.store_error.write() {
            *e = Some(why);
        }
    }

    /// A write failed because the store could not take it (see [`crate::store::storage_fault`]).
    pub fn record_write_fault(&self, now_ms: i64, why: String) {
        if let Ok(mut f) = self.write_fault.write() {
            *f = Some((now_ms, why));
        }
    }

    /// The reason of a write fault recent enough to count.
    fn recent_write_fault(&self, now_ms: i64) -> Option<String> {
        let f = self.write_fault.read().ok()?;
        let (at, why) = f.as_ref()?;
        (now_ms - at <= STORE_FAULT_HOLD_MS).then(|| why.clone())
    }

    /// opswatch ran out of descriptors or memory doing `what`. Returns true when this starts a
    /// new episode (nothing recorded within the hold time), for logging once.
    pub fn record_local_fault(&self, now_ms: i64, what: String) -> bool {
        let Ok(mut f) = self.local_fault.write() else {
            return false;
        };
        let new = f
            .as_ref()
            .is_none_or(|(at, _)| now_ms - at > LOCAL_FAULT_HOLD_MS);
        *f = Some((now_ms, what));
        new
    }

    fn recent_local_fault(&self, now_ms: i64) -> Option<String> {
        let f = self.local_fault.read().ok()?;
        let (at, what) = f.as_ref()?;
        (now_ms - at <= LOCAL_FAULT_HOLD_MS).then(|| what.clone())
    }

    pub fn record_store_disk(&self, used_pct: f64, free_bytes: u64) {
        if let Ok(mut d) = self.store_disk.write() {
            *d = Some((used_pct, free_bytes));
        }
    }

    pub fn record_heartbeat(&self, now_ms: i64) {
        self.scheduler_tick_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn store_ok(&self, now_ms: i64) -> bool {
        let last = self.store_ok_ms.load(Ordering::Relaxed);
        let failed = self.store_error.read().map_or(true, |e| e.is_some());
        last > 0
            && now_ms - last <= STORE_STALE_AFTER_MS
            && !failed
            && self.recent_write_fault(now_ms).is_none()
    }

    pub fn scheduler_ok(&self, now_ms: i64) -> bool {
        let last = self.scheduler_tick_ms.load(Ordering::Relaxed);
        last > 0 && now_ms - last <= SCHEDULER_STALE_AFTER_MS
    }

    pub fn report(&self, now_ms: i64) -> HealthReport {
        self.report_at(now_ms, now_ms)
    }

    /// The report at `now_ms` (system time, what the probes record) with the channels seen
    /// at `clock_ms` (the app's clock, what alerts are stamped with; the same in production).
    pub fn report_at(&self, now_ms: i64, clock_ms: i64) -> HealthReport {
        let age = |at: i64| (at > 0).then(|| ((now_ms - at).max(0) as f64) / 1000.0);
        let store_at = self.store_ok_ms.load(Ordering::Relaxed);
        let tick_at = self.scheduler_tick_ms.load(Ordering::Relaxed);
        let store_ok = self.store_ok(now_ms);
        let scheduler_ok = self.scheduler_ok(now_ms);
        let mut reasons = Vec::new();
        if !store_ok {
            let why = self.store_error.read().ok().and_then(|e| e.clone());
            let why = why.or_else(|| {
                self.recent_write_fault(now_ms)
                    .map(|fault| format!("writes failing: {fault}"))
            });
            reasons.push(match why {
                Some(why) => format!("store: {why}"),
                None if store_at == 0 => "store: not probed yet".to_owned(),
                None => "store: no successful probe recently".to_owned(),
            });
        }
        if !scheduler_ok {
            reasons.push("scheduler: heartbeat stalled".to_owned());
        }
        if let Some(what) = self.recent_local_fault(now_ms) {
            reasons.push(format!("resources: out of descriptors or memory: {what}"));
        }
        let disk = self.store_disk.read().ok().and_then(|d| *d);
        HealthReport {
            status: if reasons.is_empty() {
                "ok"
            } else {
                "unavailable"
            },
            version: env!("CARGO_PKG_VERSION"),
            uptime_s: self.started.elapsed().as_secs(),
            store: Component {
                ok: store_ok,
                backend: Some(self.backend),
                age_s: age(store_at),
                disk_used_pct: disk.map(|d| d.0),
                disk_free_bytes: disk.map(|d| d.1),
            },
            scheduler: Component {
                ok: scheduler_ok,
                backend: None,
                age_s: age(tick_at),
                disk_used_pct: None,
                disk_free_bytes: None,
            },
            channels: self.channels_at(clock_ms),
            reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_probe_and_heartbeat_are_ok() {
        let h = Health::new("sqlite");
        h.record_store_ok(1_000);
        h.record_heartbeat(1_000);
        let r = h.report(2_000);
        assert_eq!(r.status, "ok");
        assert!(r.reasons.is_empty());
    }

    #[test]
    fn a_failed_probe_or_stale_heartbeat_is_unavailable() {
        let h = Health::new("sqlite");
        h.record_store_ok(1_000);
        h.record_heartbeat(1_000);
        h.record_store_error("disk I/O error".into());
        let r = h.report(1_500);
        assert_eq!(r.status, "unavailable");
        assert_eq!(r.reasons, vec!["store: disk I/O error"]);
        h.record_store_ok(40_000);
        assert_eq!(
            h.report(40_500).reasons,
            vec!["scheduler: heartbeat stalled"]
        );
    }

    #[test]
    fn a_failed_write_is_unavailable_until_writes_work_again() {
        let h = Health::new("sqlite");
        h.record_heartbeat(1_000);
        h.record_store_ok(1_000);
        h.record_write_fault(1_000, "database error: database or disk is full".into());
        h.record_store_ok(5_000);
        h.record_heartbeat(5_000);
        assert_eq!(
            h.report(5_000).reasons,
            vec!["store: writes failing: database error: database or disk is full"]
        );
        h.record_store_ok(25_000);
        h.record_heartbeat(25_000);
        assert!(h.report(25_000).reasons.is_empty());
    }

    #[test]
    fn never_probed_is_unavailable() {
        let h = Health::new("postgres");
        h.record_heartbeat(1_000);
        assert_eq!(h.report(1_000).reasons, vec!["store: not probed yet"]);
    }
}
