//! The scheduled restart (`[restart]`, off unless `enabled = true`): restarts the listed PM2
//! apps and systemd units, waits `verify_after`, runs every HTTP and process check once, and
//! raises one CRITICAL per failure. The DOWNs it causes itself are expected: while it runs,
//! HTTP and process alerts are silenced (recorded in the alert log, not sent).
//!
//! The restarts it causes are expected too: the process rules would otherwise warn "X
//! restarted" for every app it restarted, for an hour, into the digest. So the restart tells
//! the rules ([`Planned`]) which processes it restarts and, once verified, the restart counter
//! each one stood at afterwards: a restart of one of them up to that count is its own (the
//! warning is recorded once in the alert log as silenced, and not counted into the digest);
//! a restart beyond it, or of any other process, is someone else's and warned about as usual.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;

use crate::checks::{pm2, systemd};
use crate::daemon::state::AppState;
use crate::rules::alert::Severity;
use crate::store::{NewAlert, NewSilence};

/// How long one `pm2 restart` or `systemctl restart` may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Alert kinds the restart mutes while it runs.
const MUTED_KINDS: [&str; 3] = ["http", "pm2", "systemd"];

/// How long the rules remember a planned restart: as long as they warn about a restart.
const REMEMBER_MS: i64 = 3_600_000;

/// The planned restarts of the last hour, for the process rules (`rules::processes`).
#[derive(Debug, Default)]
pub struct Planned(Mutex<Vec<Window>>);

#[derive(Debug)]
struct Window {
    from_ms: i64,
    /// `pm2:web`, `systemd:nginx.service`; `pm2:*` for `pm2 = ["all"]`.
    sources: Vec<String>,
    /// Once verified: the restart counter of each restarted process (by its condition's id:
    /// `pm2:web#0`, `systemd:nginx.service`) right after it. `None` while the restart runs
    /// (every restart of its processes is then its own).
    after: Option<BTreeMap<String, i64>>,
    /// Processes (ids as in `after`) whose silenced warning is already in the alert log.
    logged: BTreeSet<String>,
}

/// What the rules should make of a process's recent restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restarted {
    /// Not restarted by a planned restart within the hour: as usual.
    NotPlanned,
    /// Restarted by the planned restart that began at `from_ms`; `by_others` restarts since
    /// then are someone else's. `first` is true once per process and restart (log it).
    Planned {
        from_ms: i64,
        by_others: i64,
        first: bool,
    },
}

fn covers(sources: &[String], source: &str) -> bool {
    sources.iter().any(|s| match s.strip_suffix('*') {
        Some(prefix) => source.starts_with(prefix),
        None => s == source,
    })
}

impl Planned {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        // Every change under this lock is a push, a retain or an insert: a panic elsewhere
        // cannot leave it half done.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A restart of `sources` begins at `from_ms`.
    pub fn begin(&self, sources: Vec<String>, from_ms: i64) {
        let mut w = self.lock();
        w.retain(|w| w.from_ms > from_ms - REMEMBER_MS);
        w.push(Window {
            from_ms,
            sources,
            after: None,
            logged: BTreeSet::new(),
        });
    }

    /// The restart that began at `from_ms` is verified: each process's counter after it.
    pub fn verified(&self, from_ms: i64, after: BTreeMap<String, i64>) {
        if let Some(w) = self.lock().iter_mut().find(|w| w.from_ms == from_ms) {
            w.after = Some(after);
        }
    }

    /// Whether `source` (the instance `id`, restart counter now `current`) was restarted by a
    /// planned restart within the hour before `now_ms`.
    pub fn judge(&self, source: &str, id: &str, current: i64, now_ms: i64) -> Restarted {
        let mut windows = self.lock();
        let Some(w) = windows
            .iter_mut()
            .rev()
            .find(|w| w.from_ms > now_ms - REMEMBER_MS && covers(&w.sources, source))
        else {
            return Restarted::NotPlanned;
        };
        let by_others = match w.after.as_ref().and_then(|a| a.get(id)) {
            // A counter below the one seen after the restart was reset: all of it is new.
            Some(after) if current >= *after => current - after,
            Some(_) => current,
            // Still restarting, or not seen by the verification: the restarts are its own.
            None => 0,
        };
        Restarted::Planned {
            from_ms: w.from_ms,
            by_others,
            first: w.logged.insert(id.to_owned()),
        }
    }
}

/// What a restart found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub restarted: Vec<String>,
    /// One line per failure (a command that failed, a check that did not come back).
    pub failures: Vec<String>,
}

pub async fn run(app: &AppState) -> anyhow::Result<Outcome> {
    let cfg = app.config.restart.clone();
    // The app's clock, as the rules that read these silences and the window use.
    let started = app.clock.now_ms();
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
    app.live
        .planned_restarts
        .begin(planned_sources(&cfg.pm2, &cfg.units), started);
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
    let (failures, after) = verify_all(app).await;
    out.failures.extend(failures);
    app.live.planned_restarts.verified(started, after);
    for id in silences {
        let _ = app.store.expire_silence(id, app.clock.now_ms()).await;
    }
    let now = app.clock.now_ms();
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

/// The rules' sources of what `pm2` and `units` restart.
fn planned_sources(pm2: &[String], units: &[String]) -> Vec<String> {
    let mut out: Vec<String> = pm2
        .iter()
        .map(|n| {
            if n == "all" {
                "pm2:*".to_owned()
            } else {
                format!("pm2:{n}")
            }
        })
        .collect();
    for u in units {
        out.push(format!("systemd:{u}"));
        // systemd names a unit with its suffix (`Id=nginx.service`); the config may not.
        if !u.contains('.') {
            out.push(format!("systemd:{u}.service"));
        }
    }
    out
}

/// Every HTTP check, the restarted PM2 apps (all of them for `"all"`) and every restarted or
/// watched systemd unit, once; one line per failure, and the restart counter of each process
/// seen (by the rules' source).
async fn verify_all(app: &AppState) -> (Vec<String>, BTreeMap<String, i64>) {
    let mut failures = Vec::new();
    let mut after = BTreeMap::new();
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
                    after.insert(
                        format!(
                            "pm2:{}",
                            crate::store::series::pm2_instance(&a.name, a.pm_id)
                        ),
                        a.restarts,
                    );
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
                for u in &units {
                    if let Some(n) = u.n_restarts {
                        after.insert(format!("systemd:{}", u.unit), n);
                    }
                }
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
    (failures, after)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_restarted_processes_up_to_their_count_after_the_restart_are_its_own() {
        let p = Planned::default();
        let t = 1_800_000_000_000;
        p.begin(planned_sources(&["web".into()], &["nginx".into()]), t);
        // While it runs, any restart of its processes is its own; others are not covered.
        assert!(matches!(
            p.judge("pm2:web", "pm2:web#0", 4, t + 1_000),
            Restarted::Planned {
                by_others: 0,
                first: true,
                ..
            }
        ));
        assert_eq!(p.judge("pm2:api", "pm2:api#1", 9, t), Restarted::NotPlanned);
        assert!(matches!(
            p.judge("systemd:nginx.service", "systemd:nginx.service", 1, t),
            Restarted::Planned { .. }
        ));
        p.verified(t, BTreeMap::from([("pm2:web#0".to_owned(), 5)]));
        assert!(matches!(
            p.judge("pm2:web", "pm2:web#0", 5, t + 60_000),
            Restarted::Planned {
                by_others: 0,
                first: false,
                ..
            }
        ));
        // Someone restarted it again after the verification.
        assert!(matches!(
            p.judge("pm2:web", "pm2:web#0", 6, t + 120_000),
            Restarted::Planned { by_others: 1, .. }
        ));
        // An hour later the restart is forgotten.
        assert_eq!(
            p.judge("pm2:web", "pm2:web#0", 6, t + REMEMBER_MS),
            Restarted::NotPlanned
        );
        let all = Planned::default();
        all.begin(planned_sources(&["all".into()], &[]), t);
        assert!(matches!(
            all.judge("pm2:api", "pm2:api#1", 3, t),
            Restarted::Planned { .. }
        ));
    }
}
