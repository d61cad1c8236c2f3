//! The scheduled restart (`[restart]`, off unless `enabled = true`): restarts the listed PM2
//! apps and systemd units, waits `verify_after`, runs every HTTP and process check once, and
//! raises one CRITICAL per failure. The DOWNs it causes itself are expected: while it runs,
//! HTTP and process alerts are silenced (recorded in the alert log, not sent).

use std::time::Duration;

use anyhow::Context as _;

use crate::checks::{pm2, systemd};
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{NewAlert, NewSilence, now_ms};

/// How long one `pm2 restart` or `systemctl restart` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Alert kinds the restart mutes while it runs.
const MUTED_KINDS: [&str; 3] = ["http", "pm2", "systemd"];

/// What a restart found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub restarted: Vec<String>,
    /// One line per failure (a command that failed, a check that did not come back).
    pub failures: Vec<String>,
}

pub async fn run(app: &AppState) -> anyhow::Result<Outcome> {
    let cfg = app.config.restart.clone();
    let started = now_ms();
    let verify = cfg.verify_after.get();
    let mute_until =
        started + i64::try_from((verify + COMMAND_TIMEOUT * 2).as_millis()).unwrap_or(i64::MAX);
    let mut silences = Vec::new();
    for kind in MUTED_KINDS {
        let s = app
            .store
            .create_silence(
                &NewSilence {
                    check_name: None,
                    kind: Some(kind.to_owned()),
                    severity: None,
                    starts_ms: started,
                    ends_ms: mute_until,
                    comment: "scheduled restart ([restart])".to_owned(),
                    created_by: "opswatch restart".to_owned(),
                },
                started,
            )
            .await?;
        silences.push(s.id);
    }
    let mut out = Outcome::default();
    let home = app.config.pm2.home.clone();
    if !cfg.pm2.is_empty() {
        let mut args = vec!["restart".to_owned()];
        args.extend(cfg.pm2.iter().cloned());
        match command("pm2", &args, home.as_deref()).await {
            Ok(()) => out.restarted.push(format!("pm2 {}", cfg.pm2.join(" "))),
            Err(e) => out
                .failures
                .push(format!("pm2 restart {}: {e:#}", cfg.pm2.join(" "))),
        }
    }
    for unit in &cfg.units {
        match command("systemctl", &["restart".to_owned(), unit.clone()], None).await {
            Ok(()) => out.restarted.push(unit.clone()),
            Err(e) => out
                .failures
                .push(format!("systemctl restart {unit}: {e:#}")),
        }
    }
    tokio::time::sleep(verify).await;
    out.failures.extend(verify_all(app).await);
    for id in silences {
        let _ = app.store.expire_silence(id, now_ms()).await;
    }
    let now = now_ms();
    for (i, f) in out.failures.iter().enumerate() {
        let alert = NewAlert {
            dedup_key: format!("restart:{started}:{i}"),
            severity: Severity::Critical,
            source: "restart".to_owned(),
            kind: "restart".to_owned(),
            title: "Scheduled restart: something did not come back".to_owned(),
            value: Some(f.clone()),
            threshold: Some(format!("healthy {}s after the restart", verify.as_secs())),
            hint: Some(
                "Look at the app's logs (pm2 logs NAME / journalctl -u UNIT) and start it by hand."
                    .to_owned(),
            ),
            body: None,
            silenced: false,
        };
        app.store.record_alert(&alert, &app.channels, now).await?;
    }
    if !out.failures.is_empty() {
        app.wake_dispatcher();
        anyhow::bail!(
            "{} failures: {}",
            out.failures.len(),
            out.failures.join("; ")
        );
    }
    Ok(out)
}

/// Every HTTP check, the restarted PM2 apps (all of them for `"all"`) and every restarted or
/// watched systemd unit, once; one line per failure.
async fn verify_all(app: &AppState) -> Vec<String> {
    let mut failures = Vec::new();
    for check in crate::checks::configured(&app.config) {
        let seen = check.probe().await;
        if !seen.ok() {
            failures.push(format!(
                "{} is down: {}",
                check.name(),
                seen.error().unwrap_or("failed")
            ));
        }
    }
    let r = &app.config.restart;
    if !r.pm2.is_empty() {
        match pm2::poll(app.config.pm2.home.as_deref(), COMMAND_TIMEOUT).await {
            Ok(apps) => {
                let all = r.pm2.iter().any(|n| n == "all");
                for a in apps.iter().filter(|a| all || r.pm2.contains(&a.name)) {
                    if a.status != "online" {
                        failures.push(format!("pm2 {} is {}", a.name, a.status));
                    }
                }
                for name in r.pm2.iter().filter(|n| *n != "all") {
                    if !apps.iter().any(|a| &a.name == name) {
                        failures.push(format!("pm2 {name} is not known to PM2"));
                    }
                }
            }
            Err(e) => failures.push(format!("pm2: {e}")),
        }
    }
    let mut units = r.units.clone();
    units.extend(app.config.systemd.units.iter().cloned());
    units.sort();
    units.dedup();
    if !units.is_empty() {
        match systemd::poll(&units, COMMAND_TIMEOUT).await {
            Ok(units) => {
                for u in units.iter().filter(|u| u.active_state != "active") {
                    failures.push(format!(
                        "{} is {} ({})",
                        u.unit, u.active_state, u.sub_state
                    ));
                }
            }
            Err(e) => failures.push(format!("systemd: {e}")),
        }
    }
    failures
}

async fn command(
    program: &str,
    args: &[String],
    pm2_home: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    if let Some(home) = pm2_home {
        cmd.env("PM2_HOME", home);
    }
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("no answer within {}s", COMMAND_TIMEOUT.as_secs()))?
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        anyhow::bail!("exit {}: {last}", out.status.code().unwrap_or(-1));
    }
    Ok(())
}
