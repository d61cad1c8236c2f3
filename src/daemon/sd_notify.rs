//! The systemd notification protocol (`sd_notify(3)`), written out because it is one datagram:
//! `READY=1` once the store is migrated and the listener bound, `WATCHDOG=1` while the
//! scheduler's heartbeat is fresh, `RELOADING=1` … `READY=1` around a reload, `STOPPING=1`.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. A failure to notify is
//! logged once per message kind at debug level and never stops opswatch: the worst outcome is
//! that systemd times the start out, which says more than a crash would.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::daemon::health::HEARTBEAT_EVERY;
use crate::daemon::state::AppState;
use crate::store::now_ms;

/// Where systemd listens for notifications: `NOTIFY_SOCKET`, a path or, with a leading `@`,
/// an abstract socket name (what systemd itself hands out).
fn notify_addr() -> Option<io::Result<SocketAddr>> {
    let raw = std::env::var_os("NOTIFY_SOCKET")?;
    let bytes = raw.as_bytes();
    Some(match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None if bytes.starts_with(b"/") => SocketAddr::from_pathname(Path::new(&raw)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET is neither an absolute path nor an @abstract name",
        )),
    })
}

/// Sends `state` (newline-separated `KEY=VALUE` lines) to systemd. `Ok(false)`: not running
/// under a notifying service manager.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(addr) = notify_addr() else {
        return Ok(false);
    };
    let addr = addr?;
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

fn send(state: &str) {
    if let Err(e) = notify(state) {
        tracing::debug!(error = %e, message = state.lines().next().unwrap_or_default(), "cannot notify systemd");
    }
}

/// The store is migrated and the listener bound: systemd may consider the start done.
pub fn ready() {
    send("READY=1\nSTATUS=watching");
}

/// A reload starts; systemd shows the unit as "reloading" until [`reloaded`].
pub fn reloading() {
    // MONOTONIC_USEC lets systemd ≥ 253 match this message to the reload it asked for.
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = now.tv_sec as i128 * 1_000_000 + now.tv_nsec as i128 / 1_000;
    send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// A reload ended (applied or refused: the process runs either way); `status` says which.
pub fn reloaded(status: &str) {
    // One line: STATUS must not carry a newline into the next assignment.
    let status = status.replace('\n', " ");
    send(&format!("READY=1\nSTATUS={status}"));
}

/// Shutdown has begun.
pub fn stopping() {
    send("STOPPING=1");
}

/// The interval systemd expects `WATCHDOG=1` within, when the unit sets `WatchdogSec=` and the
/// watchdog is meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Pings the systemd watchdog while the scheduler's heartbeat is fresh. When the scheduler
/// stalls the pings stop and systemd restarts opswatch (`WatchdogSec=` in the unit): the
/// heartbeat, not this task's own liveness, is what is vouched for.
pub fn spawn_watchdog(app: &AppState, shutdown: &CancellationToken, tasks: &mut JoinSet<()>) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    // Half the deadline, as sd_watchdog_enabled(3) advises, and no slower than the heartbeat
    // so that a fresh heartbeat is passed on at once.
    let every = (interval / 2).min(HEARTBEAT_EVERY);
    let (app, shutdown) = (app.clone(), shutdown.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if app.health.scheduler_ok(now_ms()) {
                        send("WATCHDOG=1");
                    }
                }
            }
        }
    });
}
