//! Run-now commands: what the runbooks did by hand, done once from the command line.

use std::process::ExitCode;

use crate::rules::alert::{Alert, Severity};
use std::time::Duration;

use crate::checks::pm2;
use crate::checks::system::SystemSampler;
use crate::config::Config;
use crate::config::SystemConfig;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;
use crate::rules::condition::{Level, Limits};
use crate::store::now_ms;

/// `opswatch alert test`: one test alert through every configured channel, reported per
/// channel; exit 1 if any channel failed.
pub async fn alert_test(config: &Config) -> ExitCode {
    let channels = match Channel::all_from(config, DEFAULT_REQUEST_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opswatch: {e:#}");
            return ExitCode::from(1);
        }
    };
    if channels.is_empty() {
        eprintln!(
            "opswatch: no channel is configured: add [telegram] or [[webhook]] to the config"
        );
        return ExitCode::from(1);
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let alert = Alert {
        id: 0,
        severity: Severity::Info,
        source: "opswatch".to_owned(),
        kind: "test".to_owned(),
        title: format!("Test alert from opswatch on {}", host.trim()),
        value: None,
        threshold: None,
        hint: Some("Nothing to do: this confirms alerts reach you.".to_owned()),
        body: None,
        created_ms: now_ms(),
    };
    let mut failed = false;
    for channel in &channels {
        match channel.send(&alert).await {
            Ok(delivered) => {
                println!("ok    {}", channel.name());
                if let Some(chat) = delivered.migrated_to {
                    println!(
                        "      the group moved to chat id {chat}: update chat_id in the config"
                    );
                }
            }
            Err(e) => {
                failed = true;
                println!("FAIL  {}: {e}", channel.name());
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One line of the `opswatch check` table.
struct Row {
    name: String,
    kind: String,
    level: Level,
    detail: String,
}

/// `opswatch check`: every check once (HTTP endpoints, host thresholds, PM2 apps), a table,
/// exit 1 if anything is critical. Nothing is stored and nothing is sent.
pub async fn check(config: &Config) -> ExitCode {
    let checks = crate::checks::configured(config);
    let mut running = tokio::task::JoinSet::new();
    for (i, check) in checks.iter().enumerate() {
        let check = check.clone();
        running.spawn(async move { (i, check.probe().await) });
    }
    let mut seen: Vec<_> = running.join_all().await;
    seen.sort_by_key(|(i, _)| *i);
    let mut rows: Vec<Row> = checks
        .iter()
        .zip(seen.into_iter().map(|(_, o)| o))
        .map(|(check, o)| Row {
            name: check.name().to_owned(),
            kind: check.kind().as_str().to_owned(),
            level: if o.ok() { Level::Ok } else { Level::Critical },
            detail: match o.error() {
                Some(e) => e.to_owned(),
                None => check.summary(&o),
            },
        })
        .collect();
    if config.system.enabled {
        rows.extend(host_rows(&config.system).await);
    }
    if config.pm2.enabled.unwrap_or_else(pm2::pm2_on_path) {
        rows.extend(pm2_rows(config).await);
    }

    println!("{:<24} {:<8} {:<6} DETAIL", "CHECK", "KIND", "STATE");
    for r in &rows {
        let state = match r.level {
            Level::Ok => "ok",
            Level::Warning => "WARN",
            Level::Critical => "FAIL",
        };
        println!("{:<24} {:<8} {:<6} {}", r.name, r.kind, state, r.detail);
    }
    if rows.iter().any(|r| r.level == Level::Critical) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Host thresholds on one sample (no sustain window: this is a look, not a rule).
async fn host_rows(cfg: &SystemConfig) -> Vec<Row> {
    let sampled = tokio::task::spawn_blocking(|| SystemSampler::new().sample()).await;
    let snapshot = match sampled {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return vec![row(
                "host",
                "system",
                Level::Critical,
                format!("cannot sample: {e:#}"),
            )];
        }
        Err(e) => {
            return vec![row(
                "host",
                "system",
                Level::Critical,
                format!("cannot sample: {e}"),
            )];
        }
    };
    let level = |value: f64, warn: f64, crit: f64| {
        Limits {
            warn: Some(warn),
            crit: Some(crit),
            hysteresis_pct: 0.0,
        }
        .next(Level::Ok, value, value)
    };
    let mut rows = Vec::new();
    for m in &snapshot.mounts {
        let over = cfg.mounts.get(&m.mount);
        if over.is_some_and(|o| o.ignore) {
            continue;
        }
        let warn = over.and_then(|o| o.disk_warn).unwrap_or(cfg.disk_warn);
        let crit = over.and_then(|o| o.disk_crit).unwrap_or(cfg.disk_crit);
        rows.push(row(
            &format!("disk {}", m.mount),
            "system",
            level(m.used_pct, warn, crit),
            format!("{:.0} % used (warn {warn}, crit {crit})", m.used_pct),
        ));
    }
    let mem = snapshot.memory.used_pct;
    rows.push(row(
        "memory",
        "system",
        level(mem, cfg.memory_warn, cfg.memory_crit),
        format!("{mem:.1} % used"),
    ));
    match &snapshot.swap {
        Some(swap) => rows.push(row(
            "swap",
            "system",
            level(swap.used_pct, cfg.swap_warn, cfg.swap_crit),
            format!("{:.1} % used", swap.used_pct),
        )),
        None => rows.push(row(
            "swap",
            "system",
            Level::Ok,
            "no swap on this host".to_owned(),
        )),
    }
    let scale = if cfg.load_per_core {
        snapshot.cpus.max(1) as f64
    } else {
        1.0
    };
    let load = snapshot.load.five;
    rows.push(row(
        "load",
        "system",
        level(load, cfg.load_warn * scale, cfg.load_crit * scale),
        format!("{load:.2} (5 min), {} cores", snapshot.cpus),
    ));
    rows
}

async fn pm2_rows(config: &Config) -> Vec<Row> {
    let asked = config.pm2.enabled == Some(true) || config.pm2.home.is_some();
    let read = pm2::poll_with(
        std::path::Path::new("pm2"),
        config.pm2.home.as_deref(),
        Duration::from_secs(20),
    )
    .await;
    match read {
        Ok((apps, via)) => via_row(&via)
            .into_iter()
            .chain(apps.iter().map(|a| {
                let down = a.is_down();
                row(
                    &format!("pm2:{}", a.name),
                    "pm2",
                    if down { Level::Critical } else { Level::Ok },
                    format!("{}, {} restarts", a.status, a.restarts),
                )
            }))
            .collect(),
        Err(e) => vec![row(
            "pm2",
            "pm2",
            if asked { Level::Critical } else { Level::Ok },
            e.to_string(),
        )],
    }
}

/// Says so when PM2 had to be read with `pm2 jlist` (its socket speaks another protocol).
fn via_row(via: &pm2::Via) -> Option<Row> {
    match via {
        pm2::Via::Socket => None,
        pm2::Via::Jlist { reason } => Some(row(
            "pm2",
            "pm2",
            Level::Warning,
            format!(
                "read with `pm2 jlist`: the daemon's socket does not speak PM2's protocol ({reason})"
            ),
        )),
    }
}

fn row(name: &str, kind: &str, level: Level, detail: String) -> Row {
    Row {
        name: name.to_owned(),
        kind: kind.to_owned(),
        level,
        detail,
    }
}
