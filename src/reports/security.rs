//! The monthly security report (failed and new SSH logins, listening ports, pending upgrades,
//! a pending reboot, certificate expiry, secret file permissions, `vm.swappiness`, failed
//! dashboard logins) and the daily certificate-expiry check. Every finding says what to do.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Datelike as _, NaiveDateTime, Utc};
use serde::Serialize;

use super::{Finding, Kind, Report, fmt_time, push_findings, this_host};
use crate::daemon::state::AppState;
use crate::rules::condition::{Assessment, Level};

const DAY_MS: i64 = 86_400_000;
/// `apt-get -s` costs seconds of CPU; past this it is abandoned.
const APT_TIMEOUT: Duration = Duration::from_secs(180);
/// The runbook's value for `vm.swappiness`.
const RUNBOOK_SWAPPINESS: u32 = 10;

// ---------------------------------------------------------------------------------------------
// SSH logins.

/// One sshd event of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshEvent {
    Failed { user: String, source: String },
    Accepted { user: String, source: String },
}

/// Parses one auth-log line (traditional syslog or RFC 3339 timestamps, `sshd`,
/// `sshd-session` or `sshd-auth`). `now` fixes the year of traditional lines, which have
/// none (a date ahead of `now` belongs to the year before).
pub fn parse_auth_line(line: &str, now: DateTime<Utc>) -> Option<(i64, SshEvent)> {
    let (at, rest) = parse_stamp(line, now)?;
    // "host program[pid]: message"
    let rest = rest.trim_start();
    let (_host, rest) = rest.split_once(' ')?;
    let (program, message) = rest.split_once(": ")?;
    let program = program.split('[').next()?;
    if !matches!(program, "sshd" | "sshd-session" | "sshd-auth") {
        return None;
    }
    let event = if let Some(m) = message.strip_prefix("Failed ") {
        let (user, source) = user_and_source(m)?;
        SshEvent::Failed { user, source }
    } else if let Some(m) = message.strip_prefix("Accepted ") {
        let (user, source) = user_and_source(m)?;
        SshEvent::Accepted { user, source }
    } else {
        return None;
    };
    Some((at, event))
}

/// `password for invalid user admin from 203.0.113.5 port 52314 ssh2` → (admin, 203.0.113.5).
fn user_and_source(m: &str) -> Option<(String, String)> {
    let (_, after_for) = m.split_once(" for ")?;
    let after_for = after_for.strip_prefix("invalid user ").unwrap_or(after_for);
    let (user, after_from) = after_for.rsplit_once(" from ")?;
    let source = after_from.split(' ').next()?;
    Some((user.to_owned(), source.to_owned()))
}

fn parse_stamp(line: &str, now: DateTime<Utc>) -> Option<(i64, &str)> {
    let first = line.split(' ').next()?;
    if first.len() >= 19 && first.as_bytes()[4] == b'-' {
        // RFC 3339 (rsyslog high precision) or journalctl -o short-iso (+0000).
        let at = DateTime::parse_from_rfc3339(first)
            .or_else(|_| DateTime::parse_from_str(first, "%Y-%m-%dT%H:%M:%S%z"))
            .ok()?;
        return Some((at.timestamp_millis(), &line[first.len()..]));
    }
    // "Nov 20 03:14:05" or "Nov  5 03:14:05": 15 characters.
    let stamp = line.get(..15)?;
    let year = now.year();
    let parse = |y: i32| {
        NaiveDateTime::parse_from_str(&format!("{y} {stamp}"), "%Y %b %e %H:%M:%S")
            .ok()
            .map(|t| t.and_utc())
    };
    let mut at = parse(year)?;
    if at > now + chrono::Duration::days(1) {
        at = parse(year - 1)?;
    }
    Some((at.timestamp_millis(), &line[15..]))
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SshLogins {
    /// `auth log PATH`, `journal`, or why neither could be read.
    pub source: String,
    pub failed_total: u64,
    pub failed_by_user: Vec<(String, u64)>,
    pub failed_by_source: Vec<(String, u64)>,
    pub accepted_total: u64,
    /// Addresses that logged in successfully and never had before.
    pub new_sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn top10(map: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(10);
    v
}

/// Tallies sshd events from `lines` in `[since, until)`; returns the tally and the sources
/// that logged in.
pub fn tally_logins(
    lines: impl IntoIterator<Item = (i64, SshEvent)>,
    since_ms: i64,
    until_ms: i64,
) -> (SshLogins, Vec<String>) {
    let mut by_user = HashMap::new();
    let mut by_source = HashMap::new();
    let mut out = SshLogins::default();
    let mut accepted = Vec::new();
    for (at, e) in lines {
        if at < since_ms || at >= until_ms {
            continue;
        }
        match e {
            SshEvent::Failed { user, source } => {
                out.failed_total += 1;
                *by_user.entry(user).or_insert(0) += 1;
                *by_source.entry(source).or_insert(0) += 1;
            }
            SshEvent::Accepted { source, .. } => {
                out.accepted_total += 1;
                if !accepted.contains(&source) {
                    accepted.push(source);
                }
            }
        }
    }
    out.failed_by_user = top10(by_user);
    out.failed_by_source = top10(by_source);
    (out, accepted)
}

async fn ssh_logins(app: &AppState, since_ms: i64, until_ms: i64, remember: bool) -> SshLogins {
    let now = DateTime::<Utc>::from_timestamp_millis(until_ms).unwrap_or_else(Utc::now);
    let path = app.config.reports.security.auth_log.clone();
    let (source, events, error) = if path.exists() {
        let p = path.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut events = Vec::new();
            super::logscan::for_each_line_since(&p, since_ms, |l| {
                if let Some(e) = parse_auth_line(l, now) {
                    events.push(e);
                }
            })
            .map(|()| events)
        })
        .await;
        match read {
            Ok(Ok(events)) => (format!("auth log {}", path.display()), events, None),
            Ok(Err(e)) => (
                format!("auth log {}", path.display()),
                Vec::new(),
                Some(e.to_string()),
            ),
            Err(e) => (
                format!("auth log {}", path.display()),
                Vec::new(),
                Some(e.to_string()),
            ),
        }
    } else {
        match journal_lines(since_ms).await {
            Ok(text) => (
                "journal".to_owned(),
                text.lines()
                    .filter_map(|l| parse_auth_line(l, now))
                    .collect(),
                None,
            ),
            Err(e) => (
                "none".to_owned(),
                Vec::new(),
                Some(format!(
                    "{} does not exist and the journal cannot be read: {e}",
                    path.display()
                )),
            ),
        }
    };
    let (mut logins, accepted) = tally_logins(events, since_ms, until_ms);
    logins.source = source;
    logins.error = error;
    logins.new_sources = remember_new(app, "ssh_source", &accepted, until_ms, remember).await;
    logins
}

/// sshd's lines from the journal (Debian 12 has no auth.log by default).
async fn journal_lines(since_ms: i64) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("journalctl")
            .args([
                "_COMM=sshd",
                "_COMM=sshd-session",
                "_COMM=sshd-auth",
                "-o",
                "short-iso",
                "--no-pager",
                "-q",
                "--since",
                &format!("@{}", since_ms / 1000),
            ])
            .env("LC_ALL", "C")
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "journalctl: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Remembers `values`; returns those never seen before, except on the very first look (when
/// everything would be "new").
async fn remember_new(
    app: &AppState,
    kind: &str,
    values: &[String],
    now_ms: i64,
    remember: bool,
) -> Vec<String> {
    let host = this_host();
    if !remember {
        return match app.store.unknown_values(&host, kind, values).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    kind,
                    "cannot read known report values"
                );
                Vec::new()
            }
        };
    }
    let first_look = app
        .store
        .count_known_values(&host, kind)
        .await
        .map(|n| n == 0)
        .unwrap_or(true);
    match app.store.remember_values(&host, kind, values, now_ms).await {
        Ok(new) if !first_look => new,
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                kind,
                "cannot remember report values"
            );
            Vec::new()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Listening ports.

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub proto: String,
    pub address: String,
    pub port: u16,
    /// The process holding the socket (`comm`), when this user may see it.
    pub process: Option<String>,
    /// Not listening at the previous report.
    pub new: bool,
}

/// Parses `/proc/net/{tcp,udp}{,6}` text: listening TCP (state 0A) and bound UDP (07)
/// sockets, as (address, port, inode).
pub fn parse_proc_net(text: &str, udp: bool) -> Vec<(String, u16, u64)> {
    let want = if udp { "07" } else { "0A" };
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != want {
            continue;
        }
        let Some((addr, port)) = f[1].split_once(':') else {
            continue;
        };
        let (Ok(port), Some(addr), Ok(inode)) = (
            u16::from_str_radix(port, 16),
            hex_address(addr),
            f[9].parse::<u64>(),
        ) else {
            continue;
        };
        out.push((addr, port, inode));
    }
    out
}

/// Kernel hex addresses: IPv4 one little-endian word, IPv6 four of them.
fn hex_address(hex: &str) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::swap_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    match words.as_slice() {
        [w] => Some(std::net::Ipv4Addr::from(*w).to_string()),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            Some(format!("[{}]", std::net::Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Socket inode → process name, from `/proc/*/fd` (only processes this user may inspect).
fn socket_owners() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let mut comm = None;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse::<u64>().ok())
            {
                let comm = comm.get_or_insert_with(|| {
                    std::fs::read_to_string(p.path().join("comm"))
                        .map(|c| c.trim().to_owned())
                        .unwrap_or_default()
                });
                out.insert(inode, comm.clone());
            }
        }
    }
    out
}

/// Every listening TCP and bound UDP socket, with its process.
pub fn listening_sockets() -> Vec<Listener> {
    let owners = socket_owners();
    let mut out = Vec::new();
    for (file, proto, udp) in [
        ("/proc/net/tcp", "tcp", false),
        ("/proc/net/tcp6", "tcp", false),
        ("/proc/net/udp", "udp", true),
        ("/proc/net/udp6", "udp", true),
    ] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (address, port, inode) in parse_proc_net(&text, udp) {
            out.push(Listener {
                proto: proto.to_owned(),
                address,
                port,
                process: owners.get(&inode).cloned().filter(|c| !c.is_empty()),
                new: false,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr == "[::1]"
}

// ---------------------------------------------------------------------------------------------
// Packages, reboot, kernel, files.

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Upgrades {
    /// `apt`, or what was found instead.
    pub manager: String,
    pub pending: Option<u64>,
    pub security: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts `Inst` lines of `apt-get -s` output, and those from a security suite.
pub fn count_apt_simulation(out: &str) -> (u64, u64) {
    let inst: Vec<&str> = out.lines().filter(|l| l.starts_with("Inst ")).collect();
    let security = inst
        .iter()
        .filter(|l| l.contains("-security") || l.contains("Debian-Security"))
        .count();
    (inst.len() as u64, security as u64)
}

/// Pending upgrades via `LC_ALL=C apt-get -s dist-upgrade` (a simulation: no root, nothing
/// changes; costs seconds of CPU, which is why only this monthly job runs it).
async fn pending_upgrades() -> Upgrades {
    if which("apt-get").is_none() {
        let other = ["dnf", "yum", "zypper", "pacman", "apk"]
            .into_iter()
            .find(|m| which(m).is_some());
        return Upgrades {
            manager: other.unwrap_or("unknown").to_owned(),
            pending: None,
            security: None,
            error: Some("not apt: pending upgrades are not checked on this system".to_owned()),
        };
    }
    let run = tokio::process::Command::new("apt-get")
        .args(["-s", "dist-upgrade"])
        .env("LC_ALL", "C")
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(APT_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => {
            let (pending, security) = count_apt_simulation(&String::from_utf8_lossy(&out.stdout));
            Upgrades {
                manager: "apt".to_owned(),
                pending: Some(pending),
                security: Some(security),
                error: None,
            }
        }
        Ok(Ok(out)) => Upgrades {
            manager: "apt".to_owned(),
            pending: None,
            security: None,
            error: Some(format!(
                "apt-get -s dist-upgrade failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        },
        Ok(Err(e)) => Upgrades {
            manager: "apt".to_owned(),
            pending: None,
            security: None,
            error: Some(format!("cannot run apt-get: {e}")),
        },
        Err(_) => Upgrades {
            manager: "apt".to_owned(),
            pending: None,
            security: None,
            error: Some(format!("apt-get took more than {}s", APT_TIMEOUT.as_secs())),
        },
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SecretFile {
    pub path: String,
    /// Octal permission bits, e.g. `600`.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub world_readable: bool,
    pub world_writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

pub fn secret_file(path: &Path) -> SecretFile {
    match std::fs::metadata(path) {
        Ok(m) => {
            let mode = m.mode() & 0o7777;
            SecretFile {
                path: path.display().to_string(),
                mode: Some(format!("{mode:o}")),
                owner: Some(user_name(m.uid())),
                world_readable: mode & 0o004 != 0,
                world_writable: mode & 0o002 != 0,
                error: None,
            }
        }
        Err(e) => SecretFile {
            path: path.display().to_string(),
            mode: None,
            owner: None,
            world_readable: false,
            world_writable: false,
            error: Some(e.to_string()),
        },
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CertExpiry {
    pub check: String,
    pub expires_ms: Option<i64>,
    pub days_left: Option<i64>,
}

/// Failed dashboard logins since `since_ms` (recorded by `POST /login`); `None` when the store
/// cannot say.
pub async fn failed_dashboard_logins_since(app: &AppState, since_ms: i64) -> Option<i64> {
    match app.store.count_failed_logins(since_ms, i64::MAX).await {
        Ok(count) => Some(count.total),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot count failed logins for the security report"
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report.

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Security {
    pub host: String,
    pub since_ms: i64,
    pub until_ms: i64,
    pub ssh: SshLogins,
    pub listeners: Vec<Listener>,
    pub upgrades: Upgrades,
    pub reboot_required: Option<Vec<String>>,
    pub certificates: Vec<CertExpiry>,
    pub secret_files: Vec<SecretFile>,
    pub swappiness: Option<u32>,
    pub failed_dashboard_logins: Option<i64>,
}

/// The window a security report covers: one period of its schedule (the gap between its two
/// latest occurrences, a month by default) back from `until_ms`.
fn since(app: &AppState, until_ms: i64) -> i64 {
    let until = DateTime::<Utc>::from_timestamp_millis(until_ms).unwrap_or_else(Utc::now);
    let s = &app.config.reports.security.schedule;
    let period = s.last_at_or_before(until).and_then(|latest| {
        s.last_at_or_before(latest - chrono::Duration::milliseconds(1))
            .map(|before| (latest - before).num_milliseconds())
    });
    until_ms - period.unwrap_or(30 * DAY_MS).clamp(DAY_MS, 31 * DAY_MS)
}

pub async fn certificates(app: &AppState, now_ms: i64) -> anyhow::Result<Vec<CertExpiry>> {
    let mut out = Vec::new();
    for h in app
        .config
        .http
        .iter()
        .filter(|h| h.url.starts_with("https://"))
    {
        let exp = app.store.latest_cert_expiry(&h.name).await?.map(|(_, e)| e);
        out.push(CertExpiry {
            check: h.name.clone(),
            expires_ms: exp,
            days_left: exp.map(|e| (e - now_ms).div_euclid(DAY_MS)),
        });
    }
    Ok(out)
}

/// Gathers the report; `remember` records the login sources and ports seen (scheduled runs).
pub async fn gather(app: &AppState, until_ms: i64, remember: bool) -> anyhow::Result<Security> {
    let since_ms = since(app, until_ms);
    let ssh = ssh_logins(app, since_ms, until_ms, remember).await;
    let mut listeners = tokio::task::spawn_blocking(listening_sockets).await?;
    let keys: Vec<String> = listeners
        .iter()
        .map(|l| format!("{} {}:{}", l.proto, l.address, l.port))
        .collect();
    let new = remember_new(app, "listener", &keys, until_ms, remember).await;
    for (l, k) in listeners.iter_mut().zip(&keys) {
        l.new = new.contains(k);
    }
    let reboot_required = Path::new("/var/run/reboot-required").exists().then(|| {
        std::fs::read_to_string("/var/run/reboot-required.pkgs")
            .map(|p| p.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    });
    Ok(Security {
        host: this_host(),
        since_ms,
        until_ms,
        ssh,
        listeners,
        upgrades: pending_upgrades().await,
        reboot_required,
        certificates: certificates(app, until_ms).await?,
        secret_files: app
            .config
            .reports
            .security
            .secret_files
            .iter()
            .map(|p| secret_file(p))
            .collect(),
        swappiness: std::fs::read_to_string("/proc/sys/vm/swappiness")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        failed_dashboard_logins: failed_dashboard_logins_since(app, since_ms).await,
    })
}

fn findings(s: &Security, warn_days: u32) -> Vec<Finding> {
    let mut out = Vec::new();
    if s.ssh.failed_total >= 100 {
        out.push(Finding::new(
            format!("{} failed SSH logins", s.ssh.failed_total),
            "allow keys only (PasswordAuthentication no), and rate-limit SSH with fail2ban or the firewall",
        ));
    }
    for src in &s.ssh.new_sources {
        out.push(Finding::new(
            format!("successful SSH login from a new address {src}"),
            "confirm it was one of you; if not, rotate the keys in ~/.ssh/authorized_keys and look at `last`",
        ));
    }
    if let Some(e) = &s.ssh.error {
        out.push(Finding::new(
            format!("SSH logins not read: {e}"),
            "set [reports.security] auth_log, or add opswatch's user to the adm / systemd-journal group",
        ));
    }
    for l in s.listeners.iter().filter(|l| l.new) {
        out.push(Finding::new(
            format!(
                "new listening port {} {}:{} ({})",
                l.proto,
                l.address,
                l.port,
                l.process.as_deref().unwrap_or("process unknown")
            ),
            if is_loopback(&l.address) {
                "loopback only; confirm you expect it"
            } else {
                "reachable from outside unless firewalled: close it or bind it to 127.0.0.1 if it is not meant to be public"
            },
        ));
    }
    match (&s.upgrades.security, &s.upgrades.pending, &s.upgrades.error) {
        (Some(sec), Some(all), _) if *all > 0 => out.push(Finding::new(
            format!("{all} package upgrades pending, {sec} of them security"),
            "apt-get update && apt-get upgrade (security ones first: unattended-upgrades)",
        )),
        (_, _, Some(e)) => out.push(Finding::new(
            format!("pending upgrades not checked: {e}"),
            "check them with the system's package manager",
        )),
        _ => {}
    }
    if let Some(pkgs) = &s.reboot_required {
        out.push(Finding::new(
            format!(
                "a reboot is pending{}",
                if pkgs.is_empty() {
                    String::new()
                } else {
                    format!(" (for {})", pkgs.join(", "))
                }
            ),
            "reboot in a quiet hour so the new kernel or libraries are used",
        ));
    }
    for c in &s.certificates {
        match c.days_left {
            Some(d) if d < i64::from(warn_days) => out.push(Finding::new(
                format!("the certificate of {} expires in {d} days", c.check),
                "renew it (certbot renew) and check that renewal runs by itself",
            )),
            None => out.push(Finding::new(
                format!("no certificate seen yet for {}", c.check),
                "wait for its first probe; if it stays unseen, check the URL",
            )),
            _ => {}
        }
    }
    for f in &s.secret_files {
        let who = f.owner.as_deref().unwrap_or("?");
        if let Some(e) = &f.error {
            out.push(Finding::new(
                format!("secret file {} cannot be checked: {e}", f.path),
                "fix the path in [reports.security] secret_files",
            ));
        } else if f.world_writable || f.world_readable {
            out.push(Finding::new(
                format!(
                    "secret file {} is world-{} (mode {}, owner {who})",
                    f.path,
                    if f.world_writable {
                        "writable"
                    } else {
                        "readable"
                    },
                    f.mode.as_deref().unwrap_or("?")
                ),
                format!("chmod 600 {} (owner {who} keeps access)", f.path),
            ));
        }
    }
    if let Some(v) = s.swappiness
        && v != RUNBOOK_SWAPPINESS
    {
        out.push(Finding::new(
            format!("vm.swappiness is {v}, the runbook says {RUNBOOK_SWAPPINESS}"),
            "echo 'vm.swappiness=10' > /etc/sysctl.d/99-swappiness.conf && sysctl --system",
        ));
    }
    out
}

pub fn render(s: &Security) -> Report {
    render_with(s, 21)
}

pub fn render_with(s: &Security, warn_days: u32) -> Report {
    let findings = findings(s, warn_days);
    let mut t = format!(
        "Monthly security report for {} — {} to {}\n",
        s.host,
        fmt_time(s.since_ms),
        fmt_time(s.until_ms)
    );
    t.push_str(&format!(
        "\nSSH ({}): {} failed logins, {} successful\n",
        s.ssh.source, s.ssh.failed_total, s.ssh.accepted_total
    ));
    let list = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.ssh.failed_by_user.is_empty() {
        t.push_str(&format!("  by user: {}\n", list(&s.ssh.failed_by_user)));
        t.push_str(&format!("  by source: {}\n", list(&s.ssh.failed_by_source)));
    }
    if !s.ssh.new_sources.is_empty() {
        t.push_str(&format!(
            "  new login sources: {}\n",
            s.ssh.new_sources.join(", ")
        ));
    }
    t.push_str(&format!("\nListening ports: {}\n", s.listeners.len()));
    for l in &s.listeners {
        t.push_str(&format!(
            "  {} {}:{} {}{}\n",
            l.proto,
            l.address,
            l.port,
            l.process.as_deref().unwrap_or("?"),
            if l.new { "  NEW" } else { "" }
        ));
    }
    match (s.upgrades.pending, s.upgrades.security) {
        (Some(p), Some(sec)) => t.push_str(&format!(
            "\nPending upgrades ({}): {p}, security {sec}\n",
            s.upgrades.manager
        )),
        _ => t.push_str(&format!(
            "\nPending upgrades ({}): {}\n",
            s.upgrades.manager,
            s.upgrades.error.as_deref().unwrap_or("unknown")
        )),
    }
    t.push_str(&format!(
        "Reboot required: {}\n",
        if s.reboot_required.is_some() {
            "yes"
        } else {
            "no"
        }
    ));
    t.push_str("\nCertificates:\n");
    if s.certificates.is_empty() {
        t.push_str("  no HTTPS checks\n");
    }
    for c in &s.certificates {
        match (c.expires_ms, c.days_left) {
            (Some(e), Some(d)) => {
                t.push_str(&format!(
                    "  {}: expires {} ({d} days)\n",
                    c.check,
                    fmt_time(e)
                ));
            }
            _ => t.push_str(&format!("  {}: not seen yet\n", c.check)),
        }
    }
    t.push_str("\nSecret files:\n");
    if s.secret_files.is_empty() {
        t.push_str("  none configured ([reports.security] secret_files)\n");
    }
    for f in &s.secret_files {
        t.push_str(&format!(
            "  {}: {} owner {}\n",
            f.path,
            f.mode.as_deref().unwrap_or("missing"),
            f.owner.as_deref().unwrap_or("?")
        ));
    }
    t.push_str(&format!(
        "\nvm.swappiness: {}\n",
        s.swappiness
            .map_or_else(|| "unknown".to_owned(), |v| v.to_string())
    ));
    t.push_str(&format!(
        "Failed dashboard logins: {}\n",
        s.failed_dashboard_logins
            .map_or_else(|| "not recorded yet".to_owned(), |n| n.to_string())
    ));
    push_findings(&mut t, &findings);
    let upgrades = match (s.upgrades.pending, s.upgrades.security) {
        (Some(p), Some(sec)) => format!("{p} upgrades ({sec} security)"),
        _ => "upgrades not checked".to_owned(),
    };
    let new_ports = s.listeners.iter().filter(|l| l.new).count();
    let headline = vec![
        format!(
            "SSH: {} failed logins, {} new login sources",
            s.ssh.failed_total,
            s.ssh.new_sources.len()
        ),
        format!(
            "Ports: {} listening, {new_ports} new · {upgrades}",
            s.listeners.len()
        ),
    ];
    Report {
        kind: Kind::Security,
        summary: format!(
            "{} findings; {} failed SSH logins, {upgrades}",
            findings.len(),
            s.ssh.failed_total
        ),
        headline,
        findings,
        body: serde_json::to_value(s).unwrap_or_default(),
        text: t,
    }
}

/// The daily certificate check: per HTTPS check, WARNING under `tls_warn_days` left,
/// CRITICAL under `tls_crit_days` (from the certificate its latest probe saw).
pub async fn check_tls_expiry(app: &AppState) -> anyhow::Result<()> {
    let now = crate::store::now_ms();
    let cfg = &app.config.reports.security;
    for c in certificates(app, now).await? {
        let (Some(days), Some(exp)) = (c.days_left, c.expires_ms) else {
            continue;
        };
        let level = if days < i64::from(cfg.tls_crit_days) {
            Level::Critical
        } else if days < i64::from(cfg.tls_warn_days) {
            Level::Warning
        } else {
            Level::Ok
        };
        let a = Assessment {
            key: format!("tls:{}", c.check),
            source: c.check.clone(),
            kind: "tls",
            level,
            value: days as f64,
            unit: " days",
            title: format!("Certificate of {} expires in {days} days", c.check),
            value_text: format!("{days} days left (until {})", fmt_time(exp)),
            threshold_text: format!(
                "warning under {} days, critical under {}",
                cfg.tls_warn_days, cfg.tls_crit_days
            ),
            hint: "Renew the certificate (certbot renew) and check that automatic renewal runs."
                .to_owned(),
            body: None,
            resolved_title: format!("Certificate of {} renewed ({days} days left)", c.check),
        };
        crate::rules::condition::apply(app, a, now).await?;
    }
    Ok(())
}

/// Counts per key, for tests and callers that want a map.
pub fn as_map(v: &[(String, u64)]) -> BTreeMap<String, u64> {
    v.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const SAMPLE: &str = include_str!("../../tests/fixtures/host/auth-sample.log");

    #[test]
    fn the_reference_auth_lines_are_tallied() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
        let events: Vec<_> = SAMPLE
            .lines()
            .filter_map(|l| parse_auth_line(l, now))
            .collect();
        let (t, accepted) = tally_logins(events, 0, i64::MAX);
        // Traditional: 2 "Failed" lines; RFC 3339: 1 more; "maximum authentication attempts"
        // is not a login attempt of its own.
        assert_eq!(t.failed_total, 3);
        assert_eq!(as_map(&t.failed_by_user)["admin"], 2);
        assert_eq!(as_map(&t.failed_by_user)["root"], 1);
        assert_eq!(as_map(&t.failed_by_source)["203.0.113.5"], 2);
        assert_eq!(t.accepted_total, 2);
        assert_eq!(accepted, ["192.0.2.10"]);
    }

    #[test]
    fn syslog_dates_without_a_year_wrap_at_new_year() {
        let now = Utc.with_ymd_and_hms(2027, 1, 2, 0, 0, 0).unwrap();
        let (at, _) = parse_auth_line(
            "Dec 31 23:00:00 web1 sshd-session[5]: Failed password for root from 2001:db8::5 port 22 ssh2",
            now,
        )
        .unwrap();
        assert_eq!(
            at,
            Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn proc_net_listeners_decode_ipv4_and_ipv6() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:238C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 65255 1 x\n   1: 0100007F:1538 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 6236 1 x\n";
        assert_eq!(
            parse_proc_net(tcp, false),
            [("127.0.0.1".to_owned(), 9100, 65255)]
        );
        let tcp6 = "  sl header\n   0: 00000000000000000000000000000000:0C1C 00000000000000000000000000000000:0000 0A 0 0 0 0 0 77 1\n";
        assert_eq!(parse_proc_net(tcp6, false), [("[::]".to_owned(), 3100, 77)]);
    }

    #[test]
    fn apt_simulation_counts_security_apart() {
        let out = "Reading package lists...\nInst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])\nInst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\nConf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n";
        assert_eq!(count_apt_simulation(out), (2, 1));
    }
}
