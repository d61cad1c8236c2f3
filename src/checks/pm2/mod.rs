//! PM2 processes, read from the PM2 daemon's own sockets, without Node.
//!
//! - [`poll`] asks the daemon for its process list over `$PM2_HOME/rpc.sock` (`getMonitorData`,
//!   what `pm2 jlist` prints; [`axon_rpc`] over the [`amp`] framing): about a millisecond of
//!   CPU instead of the ~140 ms a `pm2 jlist` Node process costs.
//! - [`events`] subscribes to `$PM2_HOME/pub.sock`, where the daemon publishes `process:event`
//!   (`exit`, `online`, `restart overlimit`…) as they happen, so a crash loop is seen within
//!   a second instead of at the next poll.
//! - `pm2 jlist` remains only as a fallback for a socket that answers in something else than
//!   PM2's protocol (logged once, shown by `opswatch check`).
//!
//! Verified against PM2 **7.0.4** (npm, 2026-11) and **5.4.3** (`npm install pm2@5`): the same
//! framing, request, answer and event shapes (see the real-PM2 tests in `tests/it/pm2_socket.rs`).
//!
//! The answer holds, for every app, its complete environment (database URLs, tokens…) twice,
//! and so do the events (all of `pm2_env` except `env`). This module deserializes **only** the
//! fields listed in [`Pm2App`] (serde skips everything else without keeping it), never logs or
//! returns the raw bytes, and builds every error reason itself instead of quoting them.
//!
//! Nothing here starts a daemon (any `pm2` command would, even `pm2 --version`, hiding "PM2 is
//! down after a reboot" behind an empty list): a missing `rpc.sock` (removed by `pm2 kill`) or
//! a stale one that refuses connections is [`Pm2Error::DaemonNotRunning`], and the fallback only
//! runs `pm2 jlist` once a peer did answer on the socket.
//!
//! Reading another user's PM2 needs write permission on its sockets (PM2 makes them mode 775,
//! owned by the daemon's user and group) and search permission on the directories above them:
//! [`Pm2Error::PermissionDenied`] says so.

pub mod amp;
pub mod axon_rpc;
pub mod events;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// One PM2 process (one element of `pm2 jlist`; a cluster app has one per instance).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pm2App {
    pub name: String,
    pub pm_id: i64,
    /// `online`, `stopping`, `stopped`, `launching`, `errored`, `one-launch-status`, or
    /// `waiting restart` (with a space: between crash-loop restarts with a restart delay).
    pub status: String,
    /// OS pid of the running process; `None` when PM2 reports 0 or the status means nothing
    /// runs (`stopped`, `errored`, `waiting restart`, `one-launch-status`: PM2 then still
    /// shows the dead previous pid).
    pub pid: Option<i64>,
    /// Percent of one core (`monit.cpu`).
    pub cpu_pct: f64,
    /// RSS in bytes (`monit.memory`); 0 when not running.
    pub memory_bytes: u64,
    /// `now − pm2_env.pm_uptime` while `online`; `None` otherwise.
    pub uptime_ms: Option<i64>,
    /// `pm2_env.restart_time`: automatic **and** manual restarts since start/reset. A crash loop
    /// shows as growth between polls.
    pub restarts: i64,
    /// `pm2_env.unstable_restarts` (reset to 0 when the app becomes `errored`).
    pub unstable_restarts: i64,
    /// `fork_mode` or `cluster_mode`.
    pub exec_mode: String,
}

/// Why PM2 could not be read. Reasons are composed here, never copied from pm2's output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Pm2Error {
    /// `pm2` (or the `node` it needs) is not on PATH (only for the `pm2 jlist` fallback).
    #[error("pm2 is not installed: {0}")]
    NotInstalled(String),
    /// No PM2 daemon answers for that PM2_HOME (and none was started).
    #[error("the PM2 daemon is not running")]
    DaemonNotRunning,
    /// The PM2_HOME, its sockets (or the pm2 binary) are not accessible to this user; the
    /// reason says what to grant.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("PM2 did not answer within {0:?}")]
    Timeout(Duration),
    /// The daemon closed the connection before its answer was complete (killed or restarted
    /// in the middle of a request).
    #[error("the PM2 daemon closed the connection before answering")]
    Disconnected,
    /// Something answered on the socket, but not in PM2's protocol. [`poll`] then falls back
    /// to `pm2 jlist`.
    #[error("the PM2 socket does not speak PM2's protocol: {0}")]
    Protocol(String),
    /// pm2 ran and exited with a failure status.
    #[error("pm2 jlist failed: {0}")]
    Failed(String),
    /// pm2 exited 0 but its output held no process list.
    #[error("unreadable pm2 jlist output: {0}")]
    Unparsable(String),
    /// Anything else (could not spawn, no HOME to find PM2_HOME from…).
    #[error("could not read PM2: {0}")]
    Io(String),
}

#[derive(Deserialize)]
pub(crate) struct RawApp {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient_num")]
    pm_id: Option<f64>,
    #[serde(default, deserialize_with = "lenient_num")]
    pid: Option<f64>,
    #[serde(default)]
    pm2_env: Option<RawEnv>,
    #[serde(default)]
    monit: Option<RawMonit>,
}

/// The few `pm2_env` fields we need; the environment variables next to them are skipped.
#[derive(Deserialize)]
struct RawEnv {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient_num")]
    pm_uptime: Option<f64>,
    #[serde(default, deserialize_with = "lenient_num")]
    restart_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient_num")]
    unstable_restarts: Option<f64>,
    #[serde(default)]
    exec_mode: Option<String>,
    #[serde(default, deserialize_with = "lenient_num")]
    pm_id: Option<f64>,
}

#[derive(Deserialize)]
struct RawMonit {
    #[serde(default, deserialize_with = "lenient_num")]
    memory: Option<f64>,
    #[serde(default, deserialize_with = "lenient_num")]
    cpu: Option<f64>,
}

/// A number that PM2 may print as an integer, a float, a numeric string or null.
pub(crate) fn lenient_num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    struct V;
    impl<'a> serde::de::Visitor<'a> for V {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number, a numeric string or null")
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v as f64))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    d.deserialize_any(V)
}

/// Statuses in which the app is not running and PM2 will not start it by itself. Starting up
/// (`launching`) or between restarts (`waiting restart`) is not down: a crash loop catches
/// those if they last.
const DOWN: &[&str] = &["stopped", "errored", "one-launch-status"];

/// Whether an app in PM2 `status` is down: an operator has to act.
pub fn is_down_status(status: &str) -> bool {
    DOWN.contains(&status)
}

impl Pm2App {
    /// Whether the app is down: an operator has to act.
    pub fn is_down(&self) -> bool {
        is_down_status(&self.status)
    }
}

/// Statuses in which PM2 shows a pid that no longer runs (or 0).
const NOT_RUNNING: &[&str] = &["stopped", "errored", "waiting restart", "one-launch-status"];

impl RawApp {
    pub(crate) fn into_app(self, now_ms: i64) -> Pm2App {
        let env = self.pm2_env;
        let monit = self.monit;
        let status = env
            .as_ref()
            .and_then(|e| e.status.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let pid = self
            .pid
            .map(|p| p as i64)
            .filter(|&p| p > 0 && !NOT_RUNNING.contains(&status.as_str()));
        let uptime_ms = match env.as_ref().and_then(|e| e.pm_uptime) {
            Some(started) if status == "online" => Some((now_ms - started as i64).max(0)),
            _ => None,
        };
        let env_num = |f: fn(&RawEnv) -> Option<f64>| env.as_ref().and_then(f);
        Pm2App {
            name: self.name.unwrap_or_default(),
            pm_id: self.pm_id.or(env_num(|e| e.pm_id)).map_or(-1, |v| v as i64),
            pid,
            cpu_pct: monit.as_ref().and_then(|m| m.cpu).unwrap_or(0.0),
            memory_bytes: monit
                .as_ref()
                .and_then(|m| m.memory)
                .map_or(0, |m| m.max(0.0) as u64),
            uptime_ms,
            restarts: env_num(|e| e.restart_time).map_or(0, |v| v as i64),
            unstable_restarts: env_num(|e| e.unstable_restarts).map_or(0, |v| v as i64),
            exec_mode: env.and_then(|e| e.exec_mode).unwrap_or_default(),
            status,
        }
    }
}

/// Parses the stdout of `pm2 jlist`. The JSON array is normally the last line, but lines such
/// as `[PM2] Spawning PM2 daemon…` or the first-run ASCII banner (possibly with ANSI colours)
/// can come before it, and `[PM2]` starts with `[` too: so each line that starts with `[` is
/// tried as the start of the array, from the last one up, and the first that parses wins.
pub fn parse_jlist(stdout: &str, now_ms: i64) -> Result<Vec<Pm2App>, Pm2Error> {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    for line in stdout.split_inclusive('\n') {
        if line.starts_with('[') {
            starts.push(offset);
        }
        offset += line.len();
    }
    let mut first_error = None;
    for &start in starts.iter().rev() {
        let candidate = stdout[start..].trim_end();
        match serde_json::from_str::<Vec<RawApp>>(candidate) {
            Ok(raw) => return Ok(raw.into_iter().map(|r| r.into_app(now_ms)).collect()),
            Err(e) => {
                // Keep the error of a candidate that looked like the JSON array; the `[PM2]`
                // lines are expected failures. Never quote the text: it may hold secrets.
                let looks_like_json = candidate.starts_with("[{")
                    || candidate.starts_with("[\n")
                    || candidate == "[]";
                if looks_like_json && first_error.is_none() {
                    first_error = Some(format!(
                        "{:?} error at line {} column {}",
                        e.classify(),
                        e.line(),
                        e.column()
                    ));
                }
            }
        }
    }
    Err(Pm2Error::Unparsable(first_error.unwrap_or_else(|| {
        format!(
            "no JSON process list in {} lines of output",
            stdout.lines().count()
        )
    })))
}

/// The PM2_HOME pm2 itself would use: `$PM2_HOME`, else `$HOME/.pm2`.
pub fn default_pm2_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("PM2_HOME").filter(|h| !h.is_empty()) {
        return Some(PathBuf::from(home));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".pm2"))
}

/// Whether a PM2 daemon answers on `<home>/rpc.sock`, without starting one.
pub async fn daemon_running(home: &Path) -> Result<(), Pm2Error> {
    axon_rpc::connect(home, &home.join("rpc.sock"))
        .await
        .map(drop)
}

/// The error for a PM2_HOME or socket this user may not use, saying what to grant. PM2 makes
/// its sockets mode 775 owned by the daemon's user and primary group (or `PM2_SOCKET_USER` /
/// `PM2_SOCKET_GROUP` when set in the daemon's environment): connecting needs write permission
/// on the socket, i.e. membership of that group, plus search (x) permission on every
/// directory above it (`/home/deploy` is 700 on recent Debian).
pub(crate) fn access_denied(home: &Path, socket: &Path) -> Pm2Error {
    use std::os::unix::fs::MetadataExt;
    let who = match std::fs::metadata(socket) {
        Ok(m) => format!(
            "{} is owned by group {} with mode {:o}",
            socket.display(),
            group_name(m.gid()).unwrap_or_else(|| m.gid().to_string()),
            m.mode() & 0o777
        ),
        Err(_) => format!("{} cannot be searched", home.display()),
    };
    Pm2Error::PermissionDenied(format!(
        "cannot connect to {} ({who}): add opswatch's user to the socket's group (the PM2 \
         user's group, e.g. `usermod -aG deploy opswatch`), keep the socket group-writable \
         (PM2 makes it 775) and give that group search (x) permission on {} and each directory \
         above it",
        socket.display(),
        home.display()
    ))
}

/// The name of group `gid` from `/etc/group`, if listed there.
fn group_name(gid: u32) -> Option<String> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let id = f.nth(1)?;
        (id.parse::<u32>().ok()? == gid).then(|| name.to_owned())
    })
}

/// How a process list was read.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// The daemon's RPC socket.
    Socket,
    /// `pm2 jlist`, because the socket answered in something else than PM2's protocol.
    Jlist { reason: String },
}

/// Reads the process list (the `pm2` on PATH for the fallback). See [`poll_with`].
pub async fn poll(home: Option<&Path>, timeout: Duration) -> Result<Vec<Pm2App>, Pm2Error> {
    poll_with(Path::new("pm2"), home, timeout)
        .await
        .map(|(apps, _)| apps)
}

/// Set once the fallback was logged, so that a daemon speaking something else is one log
/// line per process, not one per poll.
static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

/// Reads the process list of `home` (default: [`default_pm2_home`]) from its daemon's RPC
/// socket, or with `<pm2_bin> jlist` when the socket speaks another protocol. Never starts a
/// daemon. `pm2_bin` allows an absolute path (nvm installs, minimal PATH under systemd).
pub async fn poll_with(
    pm2_bin: &Path,
    home: Option<&Path>,
    timeout: Duration,
) -> Result<(Vec<Pm2App>, Via), Pm2Error> {
    let home = match home {
        Some(h) => h.to_path_buf(),
        None => default_pm2_home().ok_or_else(|| {
            Pm2Error::Io("neither PM2_HOME nor HOME is set; configure the PM2 home".to_owned())
        })?,
    };
    match axon_rpc::get_monitor_data(&home, timeout).await {
        Ok(raw) => {
            let now = now_ms();
            Ok((
                raw.into_iter().map(|r| r.into_app(now)).collect(),
                Via::Socket,
            ))
        }
        Err(Pm2Error::Protocol(reason)) => {
            if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    pm2_home = %home.display(),
                    %reason,
                    "the PM2 RPC socket does not speak PM2's protocol; reading PM2 with `pm2 jlist` instead"
                );
            }
            let apps = jlist(pm2_bin, &home, timeout).await?;
            Ok((apps, Via::Jlist { reason }))
        }
        Err(e) => Err(e),
    }
}

/// Runs `<pm2_bin> jlist` for `home` and parses it. Only called once a peer answered on the
/// daemon's socket (so pm2 finds a daemon and starts none). The child gets no shell, `PM2_HOME`
/// set explicitly, and is killed on timeout.
async fn jlist(pm2_bin: &Path, home: &Path, timeout: Duration) -> Result<Vec<Pm2App>, Pm2Error> {
    let run = async {
        let child = tokio::process::Command::new(pm2_bin)
            .arg("jlist")
            .env("PM2_HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(pm2_bin, &e))?;
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| Pm2Error::Io(format!("waiting for pm2: {e}")))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            parse_jlist(&stdout, now_ms())
        } else {
            Err(classify_failure(output.status.code(), &stderr, home))
        }
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => result,
        // Dropping `run` drops the child, and `kill_on_drop` kills it.
        Err(_) => Err(Pm2Error::Timeout(timeout)),
    }
}

fn spawn_error(bin: &Path, e: &std::io::Error) -> Pm2Error {
    match e.kind() {
        ErrorKind::NotFound => Pm2Error::NotInstalled(format!("{} not found", bin.display())),
        ErrorKind::PermissionDenied => {
            Pm2Error::PermissionDenied(format!("cannot execute {}", bin.display()))
        }
        _ => Pm2Error::Io(format!("spawning {}: {e}", bin.display())),
    }
}

/// Maps a failed `pm2 jlist` to an error. Only recognised markers are looked at; nothing of
/// stderr is copied except Node's error codes (`EACCES`, `ENOSPC`…).
pub fn classify_failure(code: Option<i32>, stderr: &str, home: &Path) -> Pm2Error {
    if code == Some(127) {
        if stderr.contains("node") && stderr.contains("No such file or directory") {
            return Pm2Error::NotInstalled("node is not on PATH (pm2 needs it)".to_owned());
        }
        return Pm2Error::NotInstalled("pm2 exited 127 (command not found)".to_owned());
    }
    let codes = node_error_codes(stderr);
    if codes.iter().any(|c| c == "EACCES" || c == "EPERM") {
        return Pm2Error::PermissionDenied(format!(
            "pm2 cannot use PM2_HOME {} ({})",
            home.display(),
            codes.join(", ")
        ));
    }
    let status = match code {
        Some(c) => format!("exit code {c}"),
        None => "killed by a signal".to_owned(),
    };
    Pm2Error::Failed(if codes.is_empty() {
        status
    } else {
        format!("{status} ({})", codes.join(", "))
    })
}

/// Distinct Node errno codes (`Error: EACCES: …`) found in `stderr`, at most three.
fn node_error_codes(stderr: &str) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.trim_start().strip_prefix("Error: ") else {
            continue;
        };
        let code: String = rest.chars().take_while(char::is_ascii_uppercase).collect();
        if code.len() >= 4
            && code.starts_with('E')
            && rest[code.len()..].starts_with(':')
            && !codes.contains(&code)
            && codes.len() < 3
        {
            codes.push(code);
        }
    }
    codes
}

/// Whether an executable `pm2` is on PATH.
pub fn pm2_on_path() -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join("pm2"))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Observed PM2 7.0.4 output (../../tests/fixtures/pm2, copied from the reference).
    const CRASH_LOOP: &str = include_str!("../../../tests/fixtures/pm2/jlist-crash-loop.json");
    const ERRORED: &str =
        include_str!("../../../tests/fixtures/pm2/jlist-errored-and-stopped.json");
    const VERSIONING: &str = include_str!("../../../tests/fixtures/pm2/jlist-with-versioning.json");
    const NO_DAEMON: &str = include_str!("../../../tests/fixtures/pm2/jlist-no-daemon.stdout");
    const BANNER: &str = include_str!("../../../tests/fixtures/pm2/jlist-first-run-banner.stdout");
    const BANNER_ANSI: &str =
        include_str!("../../../tests/fixtures/pm2/jlist-first-run-banner-ansi.stdout");
    const DENIED_OUT: &str =
        include_str!("../../../tests/fixtures/pm2/jlist-permission-denied.stdout");
    const DENIED_ERR: &str =
        include_str!("../../../tests/fixtures/pm2/jlist-permission-denied.stderr");

    /// 2026-11-23T15:08:45.990Z, 20 s after `web` started.
    const NOW: i64 = 1_795_446_525_990;

    /// The samples are pretty-printed; pm2 prints one line without trailing newline.
    fn one_line(json: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        serde_json::to_string(&v).unwrap()
    }

    /// name, pm_id, status, pid, restarts, unstable_restarts
    type Summary<'a> = (&'a str, i64, &'a str, Option<i64>, i64, i64);

    fn summary(apps: &[Pm2App]) -> Vec<Summary<'_>> {
        apps.iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.pm_id,
                    a.status.as_str(),
                    a.pid,
                    a.restarts,
                    a.unstable_restarts,
                )
            })
            .collect()
    }

    #[test]
    fn crash_loop_sample() {
        for text in [CRASH_LOOP.to_owned(), one_line(CRASH_LOOP)] {
            let apps = parse_jlist(&text, NOW).unwrap();
            assert_eq!(
                summary(&apps),
                vec![
                    ("web", 0, "online", Some(9234), 1, 0),
                    ("worker", 1, "stopped", None, 0, 0),
                    ("api-cluster", 2, "online", Some(9239), 1, 0),
                    ("api-cluster", 3, "online", Some(9258), 1, 0),
                    ("crash", 6, "online", Some(9912), 5, 5),
                ]
            );
            let web = &apps[0];
            assert_eq!(web.memory_bytes, 51_953_664);
            assert_eq!(web.cpu_pct, 0.0);
            assert_eq!(web.uptime_ms, Some(20_000)); // pm_uptime 1795446505990
            assert_eq!(web.exec_mode, "fork_mode");
            assert_eq!(apps[1].uptime_ms, None);
            assert_eq!(apps[1].memory_bytes, 0);
            assert_eq!(apps[2].exec_mode, "cluster_mode");
        }
    }

    #[test]
    fn errored_and_stopped_sample() {
        let apps = parse_jlist(ERRORED, NOW).unwrap();
        let crash = apps.iter().find(|a| a.name == "crash").unwrap();
        // errored: pid 0, restart_time kept at 15, unstable_restarts reset, created_at null.
        assert_eq!(crash.status, "errored");
        assert_eq!(crash.pid, None);
        assert_eq!(crash.restarts, 15);
        assert_eq!(crash.unstable_restarts, 0);
        assert_eq!(crash.uptime_ms, None);
        assert_eq!(crash.memory_bytes, 0);
        let worker = apps.iter().find(|a| a.name == "worker").unwrap();
        assert_eq!((worker.status.as_str(), worker.pid), ("stopped", None));
    }

    #[test]
    fn versioning_sample_and_float_cpu() {
        let apps = parse_jlist(&one_line(VERSIONING), NOW).unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].name, "billing");
        assert_eq!(apps[0].cpu_pct, 0.4);
        assert_eq!(apps[0].memory_bytes, 52_461_568);
        assert_eq!(apps[0].pid, Some(7983));
    }

    #[test]
    fn spawn_lines_and_banner_before_the_json() {
        assert_eq!(parse_jlist(NO_DAEMON, NOW).unwrap(), vec![]);
        assert_eq!(parse_jlist(BANNER, NOW).unwrap(), vec![]);
        assert_eq!(parse_jlist(BANNER_ANSI, NOW).unwrap(), vec![]);
        // The same prefixes before a real list.
        let with_apps = format!(
            "{}\n{}",
            NO_DAEMON.trim_end_matches("[]").trim_end(),
            one_line(CRASH_LOOP)
        );
        assert_eq!(parse_jlist(&with_apps, NOW).unwrap().len(), 5);
        let with_banner = format!(
            "{}{}",
            BANNER_ANSI.trim_end_matches("[]"),
            one_line(ERRORED)
        );
        assert_eq!(parse_jlist(&with_banner, NOW).unwrap().len(), 5);
    }

    #[test]
    fn permission_denied_sample() {
        // stdout: the banner only, no JSON.
        let e = parse_jlist(DENIED_OUT, NOW).unwrap_err();
        assert!(matches!(e, Pm2Error::Unparsable(_)), "{e:?}");
        // exit 1 + EACCES stack traces on stderr.
        let e = classify_failure(Some(1), DENIED_ERR, Path::new("/home/deploy/.pm2"));
        assert_eq!(
            e,
            Pm2Error::PermissionDenied(
                "pm2 cannot use PM2_HOME /home/deploy/.pm2 (EACCES)".to_owned()
            )
        );
    }

    #[test]
    fn other_failures() {
        let home = Path::new("/h");
        assert!(matches!(
            classify_failure(Some(127), "/usr/bin/env: 'node': No such file or directory\n", home),
            Pm2Error::NotInstalled(r) if r.contains("node")
        ));
        assert!(matches!(
            classify_failure(Some(127), "sh: 1: pm2: not found\n", home),
            Pm2Error::NotInstalled(_)
        ));
        assert_eq!(
            classify_failure(
                Some(1),
                "[PM2][ERROR] DATABASE_URL=postgres://secret\n",
                home
            ),
            Pm2Error::Failed("exit code 1".to_owned())
        );
        assert_eq!(
            classify_failure(
                Some(1),
                "Error: ENOSPC: no space left on device, write\n",
                home
            ),
            Pm2Error::Failed("exit code 1 (ENOSPC)".to_owned())
        );
        assert_eq!(
            classify_failure(None, "", home),
            Pm2Error::Failed("killed by a signal".to_owned())
        );
    }

    #[test]
    fn unparsable_output_never_quotes_the_input() {
        let secret = "hunter2-secret";
        for text in [
            format!(r#"[{{"name":"a","pm2_env":{{"API_TOKEN":"{secret}"#),
            format!(r#"[{{"name":{{"x":"{secret}"}}}}]"#),
            format!("garbage {secret}"),
            String::new(),
        ] {
            let e = parse_jlist(&text, NOW).unwrap_err();
            assert!(matches!(e, Pm2Error::Unparsable(_)), "{e:?}");
            assert!(!e.to_string().contains(secret), "{e}");
        }
    }

    #[test]
    fn secrets_are_not_kept() {
        let apps = parse_jlist(CRASH_LOOP, NOW).unwrap();
        let debug = format!("{apps:?}");
        let json = serde_json::to_string(&apps).unwrap();
        for s in [&debug, &json] {
            assert!(!s.contains("DATABASE_URL") && !s.contains("redacted") && !s.contains("PATH"));
        }
    }

    #[test]
    fn lenient_numbers_and_missing_fields() {
        let text = r#"[{"name":"x","pm_id":"3","pid":"42","monit":{"memory":1.5e3,"cpu":"2.5"},
            "pm2_env":{"status":"waiting restart","restart_time":7,"pm_uptime":null}},
            {"pm2_env":{"pm_id":9}}]"#;
        let apps = parse_jlist(text, NOW).unwrap();
        assert_eq!(apps[0].pm_id, 3);
        assert_eq!(
            apps[0].pid, None,
            "waiting restart shows the dead previous pid"
        );
        assert_eq!(apps[0].memory_bytes, 1500);
        assert_eq!(apps[0].cpu_pct, 2.5);
        assert_eq!(apps[0].restarts, 7);
        assert_eq!(apps[1].pm_id, 9);
        assert_eq!(apps[1].status, "unknown");
        assert_eq!(apps[1].name, "");
    }

    #[tokio::test]
    async fn missing_daemon_is_detected_without_running_pm2() {
        let dir = tempfile::tempdir().unwrap();
        // A pm2 binary that does not exist: DaemonNotRunning must come before any spawn.
        let bin = dir.path().join("no-such-pm2");
        let e = poll_with(&bin, Some(dir.path()), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e, Pm2Error::DaemonNotRunning);
        // A stale socket file (daemon killed hard) refuses connections.
        let sock = dir.path().join("rpc.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        assert!(sock.exists());
        let e = poll_with(&bin, Some(dir.path()), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e, Pm2Error::DaemonNotRunning);
    }

    /// A peer on `rpc.sock` that answers every connection with an HTTP error (not PM2).
    fn serve_garbage(dir: &Path) -> tokio::task::JoinHandle<()> {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::UnixListener::bind(dir.join("rpc.sock")).unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        })
    }

    #[tokio::test]
    async fn a_socket_speaking_something_else_falls_back_to_jlist() {
        let dir = tempfile::tempdir().unwrap();
        let server = serve_garbage(dir.path());
        let e = poll_with(
            &dir.path().join("no-such-pm2"),
            Some(dir.path()),
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Pm2Error::NotInstalled(_)), "{e:?}");

        // A fake pm2 that hangs: killed at the timeout.
        use std::os::unix::fs::PermissionsExt;
        let fake = dir.path().join("slow-pm2");
        std::fs::write(&fake, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = std::time::Instant::now();
        let e = poll_with(&fake, Some(dir.path()), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(e, Pm2Error::Timeout(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(5));

        // A fake pm2 that prints a list.
        let ok = dir.path().join("ok-pm2");
        std::fs::write(
            &ok,
            "#!/bin/sh\n[ \"$1\" = jlist ] || exit 2\nprintf '[PM2] hello\\n[{\"name\":\"%s\",\"pm_id\":0}]' \"$(basename \"$PM2_HOME\")\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (apps, via) = poll_with(&ok, Some(dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
        let expected = dir.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(apps[0].name, expected, "PM2_HOME is passed to pm2");
        assert!(matches!(via, Via::Jlist { .. }), "{via:?}");
        server.abort();
    }

    #[tokio::test]
    async fn a_socket_this_user_may_not_use_says_what_to_grant() {
        let dir = tempfile::tempdir().unwrap();
        let e = access_denied(dir.path(), &dir.path().join("rpc.sock"));
        let text = e.to_string();
        assert!(matches!(e, Pm2Error::PermissionDenied(_)));
        for needed in ["group", "775", "search (x)"] {
            assert!(text.contains(needed), "{text}");
        }
    }

    /// Cost of one poll over the socket (bench/pm2_socket.sh, figure 1). Needs a running PM2
    /// under `OPSWATCH_BENCH_PM2_HOME`; prints one result line.
    #[test]
    #[ignore = "needs a PM2 daemon with apps; run by bench/pm2_socket.sh"]
    fn poll_cost() {
        fn thread_cpu_ns() -> u64 {
            // First field of schedstat: ns this thread spent on a CPU.
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_ascii_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        }
        let home = PathBuf::from(std::env::var_os("OPSWATCH_BENCH_PM2_HOME").unwrap());
        // One thread does everything, so its CPU time is the poll's.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let no_pm2 = Path::new("/nonexistent/pm2");
        let timeout = Duration::from_secs(10);
        let (apps, via) = rt
            .block_on(poll_with(no_pm2, Some(&home), timeout))
            .unwrap();
        assert_eq!(via, Via::Socket);
        let n = 100u32;
        let (wall, cpu) = (std::time::Instant::now(), thread_cpu_ns());
        let mut worst = Duration::ZERO;
        for _ in 0..n {
            let t = std::time::Instant::now();
            let got = rt
                .block_on(poll_with(no_pm2, Some(&home), timeout))
                .unwrap();
            worst = worst.max(t.elapsed());
            assert_eq!(got.0.len(), apps.len());
        }
        let cpu_us = (thread_cpu_ns() - cpu) as f64 / 1000.0 / f64::from(n);
        let wall_us = wall.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!(
            "{n} polls, {} apps: {wall_us:.0} µs wall, {cpu_us:.0} µs CPU per poll, worst {} µs wall",
            apps.len(),
            worst.as_micros()
        );
    }
}
