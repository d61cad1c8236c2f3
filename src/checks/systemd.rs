//! systemd units, read with `systemctl`.
//!
//! # `systemctl show`, not D-Bus
//!
//! `systemctl show -p …` returns the same properties as the `org.freedesktop.systemd1` D-Bus
//! API (it is a D-Bus client itself), works for any user that may run systemctl, and needs no
//! D-Bus crate, no connection state and no async bus plumbing. A poll every few seconds costs one
//! short-lived process, which is fine for a handful of units. Output is parsed as `Name=Value`
//! lines split on the first `=`, one block per unit separated by blank lines, so the order of
//! the properties (systemd's own, not the requested one) does not matter.
//!
//! Timestamps: systemctl prints them in the caller's time zone (`Mon 2026-11-23 14:02:11 UTC`),
//! so the child runs with `TZ=UTC` and `LC_ALL=C`; `@<unix seconds>` (`--timestamp=unix`,
//! systemd ≥ 248) is accepted too, but not requested, to keep older systems working.
//!
//! Nothing here was run against a real systemd (the reference machine has none): the format
//! comes from the systemd documentation, see `reference/systemd/README.md`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

/// The properties [`poll`] asks for.
pub const SHOW_PROPERTIES: &str =
    "Id,LoadState,ActiveState,SubState,NRestarts,MainPID,MemoryCurrent,ActiveEnterTimestamp";

/// State of one unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitStatus {
    /// From [`parse_show`]: systemd's `Id` (canonical name, aliases resolved: `ssh` →
    /// `ssh.service`). From [`poll`]: the name as requested.
    pub unit: String,
    /// `loaded`, `not-found` (unknown unit: systemctl still exits 0), `masked`, `error`…
    pub load_state: String,
    /// `active`, `reloading`, `inactive`, `failed`, `activating`, `deactivating`…
    pub active_state: String,
    /// Type-specific: `running`, `exited`, `dead`, `failed`, `auto-restart`…
    pub sub_state: String,
    /// Automatic restarts done by `Restart=` (not manual ones); `None` before systemd 235.
    pub n_restarts: Option<i64>,
    /// `None` when there is no main process (`MainPID=0`).
    pub main_pid: Option<i64>,
    /// `MemoryCurrent`; `None` for `[not set]` (no accounting, unit stopped) or `u64::MAX`.
    pub memory_bytes: Option<u64>,
    /// Last time the unit entered `active`, ms since the Unix epoch; `None` if never.
    pub active_enter_ms: Option<i64>,
}

/// Why systemd could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SystemdError {
    /// No `systemctl`, or the system was not booted with systemd (containers…).
    #[error("systemd is not available: {0}")]
    NotAvailable(String),
    #[error("systemctl did not finish within {0:?}")]
    Timeout(Duration),
    #[error("systemctl failed: {0}")]
    Failed(String),
    #[error("could not run systemctl: {0}")]
    Io(String),
}

/// Parses `systemctl show -p … unit1 unit2…`: one block of `Name=Value` lines per unit,
/// separated by blank lines. Blocks without any known property are skipped.
pub fn parse_show(output: &str) -> Vec<UnitStatus> {
    let mut out = Vec::new();
    let mut block: HashMap<&str, &str> = HashMap::new();
    for line in output.lines().chain(std::iter::once("")) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !block.is_empty() {
                out.push(unit_from_block(&block));
                block.clear();
            }
            continue;
        }
        // Split on the first `=` only: values may contain `=`.
        if let Some((key, value)) = line.split_once('=') {
            block.insert(key.trim(), value.trim());
        }
    }
    out
}

fn unit_from_block(block: &HashMap<&str, &str>) -> UnitStatus {
    let text = |k: &str| block.get(k).map_or_else(String::new, |v| (*v).to_owned());
    UnitStatus {
        unit: text("Id"),
        load_state: text("LoadState"),
        active_state: text("ActiveState"),
        sub_state: text("SubState"),
        n_restarts: block
            .get("NRestarts")
            .and_then(|v| parse_unset_u64(v))
            .map(|n| n as i64),
        main_pid: block
            .get("MainPID")
            .and_then(|v| parse_unset_u64(v))
            .filter(|&p| p > 0)
            .map(|p| p as i64),
        memory_bytes: block.get("MemoryCurrent").and_then(|v| parse_unset_u64(v)),
        active_enter_ms: block
            .get("ActiveEnterTimestamp")
            .and_then(|v| parse_timestamp(v)),
    }
}

/// A numeric property: `None` for empty, `[not set]`, `infinity` and `u64::MAX` (unset).
pub fn parse_unset_u64(value: &str) -> Option<u64> {
    value.trim().parse::<u64>().ok().filter(|&v| v != u64::MAX)
}

/// A timestamp property as ms since the epoch: `Mon 2026-11-23 14:02:11 UTC` (only UTC/GMT:
/// [`poll`] runs systemctl with `TZ=UTC`), with optional fractional seconds, or `@1795442531`
/// (`--timestamp=unix`). Empty / `n/a` / anything else → `None`.
pub fn parse_timestamp(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Some(unix) = value.strip_prefix('@') {
        let secs: f64 = unix.parse().ok()?;
        return Some((secs * 1000.0).round() as i64);
    }
    let mut parts = value.split_ascii_whitespace();
    let (_weekday, date, time, zone) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(zone, "UTC" | "GMT") {
        return None;
    }
    let naive =
        chrono::NaiveDateTime::parse_from_str(&format!("{date} {time}"), "%Y-%m-%d %H:%M:%S%.f")
            .ok()?;
    Some(naive.and_utc().timestamp_millis())
}

/// Parses `systemctl list-units --state=failed --plain --no-legend`: the first column of each
/// line (`app.service loaded failed failed My App`). A leading `●` marker is dropped.
pub fn parse_failed_units(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('●').trim_start();
            line.split_ascii_whitespace().next().map(str::to_owned)
        })
        .collect()
}

/// Reads the state of `units`. Returns one [`UnitStatus`] per requested unit, in order, with
/// `unit` set to the requested name. An unknown unit is not an error: it comes back with
/// `load_state == "not-found"`.
pub async fn poll(units: &[String], timeout: Duration) -> Result<Vec<UnitStatus>, SystemdError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec![
        "show".to_owned(),
        "--no-pager".to_owned(),
        format!("--property={SHOW_PROPERTIES}"),
        "--".to_owned(),
    ];
    args.extend(units.iter().cloned());
    let stdout = run_systemctl(&args, timeout).await?;
    let mut statuses = parse_show(&stdout);
    if statuses.len() != units.len() {
        return Err(SystemdError::Failed(format!(
            "systemctl show returned {} units for {} requested",
            statuses.len(),
            units.len()
        )));
    }
    for (status, name) in statuses.iter_mut().zip(units) {
        status.unit.clone_from(name);
    }
    Ok(statuses)
}

/// Names of the units systemd considers failed.
pub async fn failed_units(timeout: Duration) -> Result<Vec<String>, SystemdError> {
    let args = [
        "list-units",
        "--state=failed",
        "--plain",
        "--no-legend",
        "--no-pager",
    ]
    .map(str::to_owned);
    let stdout = run_systemctl(&args, timeout).await?;
    Ok(parse_failed_units(&stdout))
}

/// True when the system was booted with systemd (`sd_booted()`: `/run/systemd/system` exists).
pub fn booted_with_systemd() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

async fn run_systemctl(args: &[String], timeout: Duration) -> Result<String, SystemdError> {
    if !booted_with_systemd() {
        return Err(SystemdError::NotAvailable(
            "the system was not booted with systemd".to_owned(),
        ));
    }
    let run = async {
        let child = tokio::process::Command::new("systemctl")
            .args(args)
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => SystemdError::NotAvailable("systemctl not found".to_owned()),
                _ => SystemdError::Io(format!("spawning systemctl: {e}")),
            })?;
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| SystemdError::Io(format!("waiting for systemctl: {e}")))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(classify_failure(
                output.status.code(),
                &String::from_utf8_lossy(&output.stderr),
            ))
        }
    };
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(SystemdError::Timeout(timeout)))
}

/// Maps a failed systemctl run to an error (first stderr line, shortened: systemctl's messages
/// carry no secrets).
pub fn classify_failure(code: Option<i32>, stderr: &str) -> SystemdError {
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let short: String = first.chars().take(200).collect();
    if first.contains("not been booted with systemd") || first.contains("Failed to connect to bus")
    {
        return SystemdError::NotAvailable(short);
    }
    let status = code.map_or_else(
        || "killed by a signal".to_owned(),
        |c| format!("exit code {c}"),
    );
    SystemdError::Failed(if short.is_empty() {
        status
    } else {
        format!("{status}: {short}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running-service example of the reference (constructed from the systemd docs), with
    /// the properties in systemd's order, not the requested one.
    const RUNNING: &str = "MainPID=48211
Result=success
NRestarts=3
ExecMainStartTimestamp=Mon 2026-11-23 14:02:11 UTC
ExecMainStartTimestampMonotonic=9123456789
CPUUsageNSec=81234567000
MemoryCurrent=183500800
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
";

    /// What `poll` asks for, for a running unit, an unknown one (reference: exit 0,
    /// `not-found`, `MainPID=0`, `NRestarts=0`, empty timestamps), a crash-looping one and a
    /// failed one with an old systemd printing `u64::MAX` and no `NRestarts`.
    const SHOW_FOUR: &str = "Id=app.service
NRestarts=3
MainPID=48211
MemoryCurrent=183500800
LoadState=loaded
ActiveState=active
SubState=running
ActiveEnterTimestamp=Mon 2026-11-23 14:02:11 UTC

Id=nosuch.service
NRestarts=0
MainPID=0
MemoryCurrent=[not set]
LoadState=not-found
ActiveState=inactive
SubState=dead
ActiveEnterTimestamp=

Id=worker.service
NRestarts=17
MainPID=0
MemoryCurrent=[not set]
LoadState=loaded
ActiveState=activating
SubState=auto-restart
ActiveEnterTimestamp=Mon 2026-11-23 13:59:58.123456 UTC

Id=old.service
MainPID=0
MemoryCurrent=18446744073709551615
LoadState=loaded
ActiveState=failed
SubState=failed
ActiveEnterTimestamp=@1795442531
";

    #[test]
    fn reference_running_example() {
        let units = parse_show(RUNNING);
        assert_eq!(
            units,
            vec![UnitStatus {
                unit: String::new(), // Id was not asked for in that example
                load_state: "loaded".into(),
                active_state: "active".into(),
                sub_state: "running".into(),
                n_restarts: Some(3),
                main_pid: Some(48211),
                memory_bytes: Some(183_500_800),
                active_enter_ms: None,
            }]
        );
    }

    #[test]
    fn several_units() {
        let units = parse_show(SHOW_FOUR);
        assert_eq!(units.len(), 4);
        let app = &units[0];
        assert_eq!(app.unit, "app.service");
        assert_eq!(app.n_restarts, Some(3));
        assert_eq!(app.main_pid, Some(48211));
        assert_eq!(app.memory_bytes, Some(183_500_800));
        // 2026-11-23T14:02:11Z
        assert_eq!(app.active_enter_ms, Some(1_795_442_531_000));

        let missing = &units[1];
        assert_eq!(
            (
                missing.load_state.as_str(),
                missing.active_state.as_str(),
                missing.sub_state.as_str()
            ),
            ("not-found", "inactive", "dead")
        );
        assert_eq!((missing.main_pid, missing.memory_bytes), (None, None));
        assert_eq!(
            (missing.n_restarts, missing.active_enter_ms),
            (Some(0), None)
        );

        let looping = &units[2];
        assert_eq!(looping.sub_state, "auto-restart");
        assert_eq!(looping.n_restarts, Some(17));
        assert_eq!(looping.active_enter_ms, Some(1_795_442_398_123));

        let old = &units[3];
        assert_eq!(
            old.n_restarts, None,
            "NRestarts is absent before systemd 235"
        );
        assert_eq!(old.memory_bytes, None, "u64::MAX means unset");
        assert_eq!(old.active_enter_ms, Some(1_795_442_531_000));
    }

    #[test]
    fn value_with_equals_and_crlf_and_extra_blank_lines() {
        let units = parse_show("\n\nId=a.service\r\nSubState=x=y\r\n\n\n\nId=b.service\n");
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].sub_state, "x=y");
        assert_eq!(units[1].unit, "b.service");
        assert!(parse_show("").is_empty());
    }

    #[test]
    fn unset_numbers_and_timestamps() {
        assert_eq!(parse_unset_u64("[not set]"), None);
        assert_eq!(parse_unset_u64(""), None);
        assert_eq!(parse_unset_u64("infinity"), None);
        assert_eq!(parse_unset_u64("18446744073709551615"), None);
        assert_eq!(parse_unset_u64("0"), Some(0));
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("n/a"), None);
        assert_eq!(
            parse_timestamp("Mon 2026-11-23 15:02:11 CET"),
            None,
            "not UTC"
        );
        assert_eq!(parse_timestamp("Thu 1970-01-01 00:00:01 UTC"), Some(1000));
    }

    #[test]
    fn failed_units_list() {
        // Reference (constructed): `UNIT LOAD ACTIVE SUB DESCRIPTION`.
        let out = "app.service loaded failed failed My App\n\
                   ● other.service loaded failed failed Other thing\n\
                   \n";
        assert_eq!(
            parse_failed_units(out),
            vec!["app.service", "other.service"]
        );
        assert!(parse_failed_units("").is_empty());
    }

    #[test]
    fn failures() {
        assert!(matches!(
            classify_failure(
                Some(1),
                "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
                 Failed to connect to bus: Host is down\n"
            ),
            SystemdError::NotAvailable(_)
        ));
        assert_eq!(
            classify_failure(Some(1), "Failed to get properties: Invalid unit name\n"),
            SystemdError::Failed("exit code 1: Failed to get properties: Invalid unit name".into())
        );
    }

    /// This machine has no systemd: both calls must say so instead of failing otherwise.
    #[tokio::test]
    async fn no_systemd_here_is_not_available() {
        if booted_with_systemd() {
            return;
        }
        let units = vec!["ssh.service".to_owned()];
        assert!(matches!(
            poll(&units, Duration::from_secs(5)).await,
            Err(SystemdError::NotAvailable(_))
        ));
        assert!(matches!(
            failed_units(Duration::from_secs(5)).await,
            Err(SystemdError::NotAvailable(_))
        ));
        assert_eq!(poll(&[], Duration::from_secs(5)).await, Ok(vec![]));
    }
}
