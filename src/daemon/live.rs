//! The latest reading of each collector, kept in memory for the API and dashboard "now"
//! views (history is in the store).

use std::sync::RwLock;

use serde::Serialize;

use crate::checks::pm2::Pm2App;
use crate::checks::system::HostSnapshot;
use crate::checks::systemd::UnitStatus;

/// What a collector last saw, or why it could not look.
#[derive(Debug, Clone, Serialize)]
pub struct Reading<T> {
    pub at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub items: Vec<T>,
}

#[derive(Debug, Default)]
pub struct Live {
    pub host: RwLock<Option<HostSnapshot>>,
    pub pm2: RwLock<Option<Reading<Pm2App>>>,
    pub systemd: RwLock<Option<Reading<UnitStatus>>>,
    /// Every failed unit on the host (`systemctl --failed`), watched or not.
    pub systemd_failed: RwLock<Vec<String>>,
    /// Held while PM2 rules run: the poller and the event listener judge the same conditions.
    pub pm2_rules: tokio::sync::Mutex<()>,
    /// The processes the scheduled restart restarted: their own restarts are not warned about.
    pub planned_restarts: crate::jobs::restart::Planned,
}

impl Live {
    pub fn set_host(&self, snapshot: HostSnapshot) {
        if let Ok(mut h) = self.host.write() {
            *h = Some(snapshot);
        }
    }

    pub fn set_pm2(&self, reading: Reading<Pm2App>) {
        if let Ok(mut p) = self.pm2.write() {
            *p = Some(reading);
        }
    }

    /// Applies a PM2 event to the last reading, so that the API and dashboard show a restart
    /// as it happens; the next poll brings the rest (pid, memory, uptime) up to date.
    pub fn apply_pm2_event(&self, pm_id: i64, status: &str, restarts: i64) {
        if let Ok(mut p) = self.pm2.write()
            && let Some(app) = p
                .as_mut()
                .and_then(|r| r.items.iter_mut().find(|a| a.pm_id == pm_id))
        {
            app.status = status.to_owned();
            app.restarts = app.restarts.max(restarts);
            if status != "online" {
                // Exited: no process, so no pid or uptime until the next poll sees the new one.
                app.pid = None;
                app.uptime_ms = None;
            }
        }
    }

    pub fn set_systemd_failed(&self, units: Vec<String>) {
        if let Ok(mut f) = self.systemd_failed.write() {
            *f = units;
        }
    }

    pub fn set_systemd(&self, reading: Reading<UnitStatus>) {
        if let Ok(mut s) = self.systemd.write() {
            *s = Some(reading);
        }
    }
}
