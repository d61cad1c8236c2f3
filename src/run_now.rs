//! Run-now commands: what the runbooks did by hand, done once from the command line.

use std::process::ExitCode;

use crate::alert::{Alert, Severity};
use crate::checks::http::HttpProbe;
use crate::config::Config;
use crate::notify::Channel;
use crate::notify::telegram::DEFAULT_REQUEST_TIMEOUT;
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

/// `opswatch check`: every check once, a table, exit 1 if anything is failing.
pub async fn check(config: &Config) -> ExitCode {
    let mut probes = Vec::new();
    for cfg in &config.http {
        match HttpProbe::new(cfg.clone()) {
            Ok(p) => probes.push(std::sync::Arc::new(p)),
            Err(e) => {
                eprintln!("opswatch: {}: {e:#}", cfg.name);
                return ExitCode::from(1);
            }
        }
    }
    let mut running = tokio::task::JoinSet::new();
    for (i, probe) in probes.iter().enumerate() {
        let probe = probe.clone();
        running.spawn(async move { (i, probe.probe().await) });
    }
    let mut results: Vec<_> = running.join_all().await;
    results.sort_by_key(|(i, _)| *i);
    let results = results.into_iter().map(|(_, r)| r);
    let mut critical = false;
    println!("{:<24} {:<8} {:<6} DETAIL", "CHECK", "KIND", "STATE");
    for (probe, r) in probes.iter().zip(results) {
        critical |= !r.ok;
        let detail = match (&r.error, r.status_code) {
            (Some(e), _) => e.clone(),
            (None, Some(code)) => format!("HTTP {code} in {} ms", r.latency_ms.unwrap_or_default()),
            (None, None) => String::new(),
        };
        let state = if r.ok { "ok" } else { "FAIL" };
        println!("{:<24} {:<8} {:<6} {detail}", probe.name(), "http", state);
    }
    if probes.is_empty() {
        println!("(no checks configured)");
    }
    if critical {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
