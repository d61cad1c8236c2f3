//! Process rules for PM2 apps and systemd units:
//! - stopped / errored (failed, inactive) on two polls in a row: CRITICAL, RESOLVED when it
//!   runs again;
//! - crash loop: the restart counter grew by more than [`CRASH_LOOP_RESTARTS`] within
//!   [`CRASH_LOOP_WINDOW_MS`] (from stored samples: PM2's counter only grows): CRITICAL;
//! - restarted within the last hour: WARNING, into the digest; except the restarts of a
//!   scheduled restart (`jobs::restart`), recorded once in the alert log as silenced.

use crate::checks::pm2::{Pm2App, Pm2Error};
use crate::checks::systemd::UnitStatus;
use crate::daemon::state::AppState;
use crate::store::series;

use super::condition::{Assessment, Level, Limits, apply};

/// Polls in a row that must see a process down before it is CRITICAL.
pub const STATUS_DOWN_POLLS: f64 = 2.0;
pub const CRASH_LOOP_RESTARTS: f64 = 5.0;
pub const CRASH_LOOP_WINDOW_MS: i64 = 5 * 60_000;
const RESTART_WARNING_WINDOW_MS: i64 = 3_600_000;

/// Restarts within `window_ms` before `now`, from the stored counter samples.
async fn restarts_within(
    app: &AppState,
    series: &str,
    now: i64,
    window_ms: i64,
    current: i64,
) -> anyhow::Result<f64> {
    let points = app
        .store
        .query_series(series, now - window_ms, now + 1)
        .await?;
    let lowest = points.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
    // A counter that went down was reset (`pm2 reset`, a new daemon): count from zero.
    Ok(if lowest.is_finite() && lowest <= current as f64 {
        current as f64 - lowest
    } else {
        0.0
    })
}

struct Process<'a> {
    /// `pm2:api` or `systemd:nginx.service`.
    source: String,
    kind: &'static str,
    name: &'a str,
    /// `online`, `stopped`, `errored`, `failed`, ...
    state: String,
    running: bool,
    restarts: Option<i64>,
    restart_series: String,
    hint_stopped: String,
    hint_restarts: String,
}

pub async fn evaluate_pm2(app: &AppState, apps: &[Pm2App], now: i64) -> anyhow::Result<()> {
    // The event listener evaluates the same conditions: one at a time, or both could raise.
    let _one_at_a_time = app.live.pm2_rules.lock().await;
    if app
        .store
        .find_condition("pm2:daemon")
        .await?
        .is_some_and(|c| c.level != Level::Ok)
    {
        let listed = format!("{} apps listed", apps.len());
        pm2_daemon(app, Level::Ok, listed, String::new(), now).await?;
    }
    for a in apps {
        let instance = series::pm2_instance(&a.name, a.pm_id);
        let p = pm2_process(&a.name, &instance, &a.status, a.restarts);
        evaluate(app, &p, &instance, now).await?;
    }
    Ok(())
}

/// A PM2 event (an app exited or came back, see `checks::pm2::events`): its restart counter is
/// stored and the crash-loop and restart rules run for that process now, rather than at the
/// next poll. The status rule ("down on two polls in a row") stays with the poller.
pub async fn evaluate_pm2_event(
    app: &AppState,
    name: &str,
    pm_id: i64,
    restarts: i64,
    now: i64,
) -> anyhow::Result<()> {
    let _one_at_a_time = app.live.pm2_rules.lock().await;
    let instance = series::pm2_instance(name, pm_id);
    let p = pm2_process(name, &instance, "", restarts);
    app.store
        .record_samples(now, &[(p.restart_series.clone(), restarts as f64)])
        .await?;
    evaluate_restarts(app, &p, &instance, now, restarts).await
}

fn pm2_process<'a>(name: &'a str, instance: &str, status: &str, restarts: i64) -> Process<'a> {
    Process {
        source: format!("pm2:{name}"),
        kind: "pm2",
        name,
        state: status.to_owned(),
        // Starting up or between restarts is not "down"; a crash loop catches it if it lasts.
        running: !crate::checks::pm2::is_down_status(status),
        restarts: Some(restarts),
        restart_series: series::of(series::PM2_RESTARTS, instance),
        hint_stopped: format!(
            "`pm2 logs {name} --lines 100 --nostream` shows why; `pm2 restart {name}` starts it again."
        ),
        hint_restarts: format!(
            "It keeps dying: `pm2 logs {name} --err --lines 100 --nostream`; check memory limits \
             (`max_memory_restart`) and the last deploy."
        ),
    }
}

/// PM2 could not be read. When the operator asked for PM2 (`[pm2] enabled = true` or a
/// `home`), a daemon that is down means their apps are down: CRITICAL. When PM2 is only on by
/// default because `pm2` is on PATH, it is just shown in the API: no alert for a tool that
/// merely happens to be installed.
pub async fn evaluate_pm2_unreachable(
    app: &AppState,
    error: &Pm2Error,
    now: i64,
) -> anyhow::Result<()> {
    let asked = app.config.pm2.enabled == Some(true) || app.config.pm2.home.is_some();
    if !asked {
        return Ok(());
    }
    let hint = match error {
        Pm2Error::DaemonNotRunning => "The PM2 daemon is not running, so neither are its apps: \
             `pm2 resurrect` (as the deploy user) restores the saved list; `pm2 startup` makes it \
             survive reboots."
            .to_owned(),
        _ => "Check that opswatch may connect to the PM2 daemon's socket (`[pm2] home`; the \
             README's PM2 section says which group and modes to grant)."
            .to_owned(),
    };
    pm2_daemon(app, Level::Critical, error.to_string(), hint, now).await
}

/// The `pm2:daemon` condition: whether PM2 itself answers.
async fn pm2_daemon(
    app: &AppState,
    level: Level,
    value_text: String,
    hint: String,
    now: i64,
) -> anyhow::Result<()> {
    apply(
        app,
        Assessment {
            key: "pm2:daemon".to_owned(),
            source: "pm2".to_owned(),
            kind: "pm2",
            level,
            value: if level == Level::Ok { 0.0 } else { 1.0 },
            unit: "",
            title: "PM2 cannot be read".to_owned(),
            value_text,
            threshold_text: "critical when PM2 does not answer".to_owned(),
            hint,
            body: None,
            resolved_title: "PM2 answers again".to_owned(),
        },
        now,
    )
    .await
}

pub async fn evaluate_systemd(
    app: &AppState,
    units: &[UnitStatus],
    now: i64,
) -> anyhow::Result<()> {
    for u in units {
        let running = matches!(
            u.active_state.as_str(),
            "active" | "activating" | "reloading"
        );
        let p = Process {
            source: format!("systemd:{}", u.unit),
            kind: "systemd",
            name: &u.unit,
            state: format!("{}/{}", u.active_state, u.sub_state),
            running,
            restarts: u.n_restarts,
            restart_series: series::of(series::SYSTEMD_RESTARTS, &u.unit),
            hint_stopped: format!(
                "`systemctl status {0}` and `journalctl -u {0} -n 100` show why; `systemctl restart {0}`.",
                u.unit
            ),
            hint_restarts: format!(
                "It keeps dying: `journalctl -u {0} -n 200 --no-pager`.",
                u.unit
            ),
        };
        evaluate(app, &p, &u.unit, now).await?;
    }
    Ok(())
}

async fn evaluate(app: &AppState, p: &Process<'_>, id: &str, now: i64) -> anyhow::Result<()> {
    // Down only when seen down on two polls in a row: a crash-looping app is caught between
    // its exit and PM2's restart now and then, and that is the crash loop's alert, not this.
    let key = format!("{}:{id}:status", p.kind);
    let previous = app.store.find_condition(&key).await?;
    let was = previous.as_ref().map_or(Level::Ok, |c| c.level);
    let down_polls = if p.running {
        0.0
    } else {
        previous.as_ref().and_then(|c| c.value).unwrap_or(0.0) + 1.0
    };
    let level = match (p.running, down_polls >= STATUS_DOWN_POLLS) {
        (true, _) => Level::Ok,
        (false, true) => Level::Critical,
        (false, false) => was,
    };
    apply(
        app,
        Assessment {
            key,
            source: p.source.clone(),
            kind: p.kind,
            level,
            value: down_polls,
            unit: "",
            title: format!("{} {} is {}", p.kind, p.name, p.state),
            value_text: format!("status {}", p.state),
            threshold_text: "critical when not running".to_owned(),
            hint: p.hint_stopped.clone(),
            body: None,
            resolved_title: format!("{} {} is running again", p.kind, p.name),
        },
        now,
    )
    .await?;

    let Some(current) = p.restarts else {
        return Ok(());
    };
    evaluate_restarts(app, p, id, now, current).await
}

/// The crash-loop CRITICAL and the restarted WARNING, from the stored restart counter.
async fn evaluate_restarts(
    app: &AppState,
    p: &Process<'_>,
    id: &str,
    now: i64,
    current: i64,
) -> anyhow::Result<()> {
    let recent =
        restarts_within(app, &p.restart_series, now, CRASH_LOOP_WINDOW_MS, current).await?;
    let loop_limits = Limits {
        warn: None,
        crit: Some(CRASH_LOOP_RESTARTS),
        hysteresis_pct: 0.0,
    };
    let key = format!("{}:{id}:crashloop", p.kind);
    let previous = app
        .store
        .find_condition(&key)
        .await?
        .map_or(Level::Ok, |c| c.level);
    // Back to OK only once the counter stood still for the whole window.
    let level = if previous == Level::Critical && recent > 0.0 {
        Level::Critical
    } else {
        loop_limits.next(previous, recent, recent)
    };
    apply(
        app,
        Assessment {
            key,
            source: p.source.clone(),
            kind: p.kind,
            level,
            value: recent,
            unit: " restarts",
            title: format!("{} {} is crash-looping", p.kind, p.name),
            value_text: format!("{recent:.0} restarts in the last 5 min (total {current})"),
            threshold_text: "critical above 5 restarts within 5 min".to_owned(),
            hint: p.hint_restarts.clone(),
            body: None,
            resolved_title: format!("{} {} stopped restarting", p.kind, p.name),
        },
        now,
    )
    .await?;

    let mut hour = restarts_within(
        app,
        &p.restart_series,
        now,
        RESTART_WARNING_WINDOW_MS,
        current,
    )
    .await?;
    if hour > 0.0 {
        hour = without_planned(app, p, id, now, current, hour).await?;
    }
    apply(
        app,
        Assessment {
            key: format!("{}:{id}:restarted", p.kind),
            source: p.source.clone(),
            kind: p.kind,
            level: if hour > 0.0 {
                Level::Warning
            } else {
                Level::Ok
            },
            value: hour,
            unit: " restarts",
            title: format!("{} {} restarted", p.kind, p.name),
            value_text: format!("{hour:.0} restarts in the last hour (total {current})"),
            threshold_text: "warning on any restart".to_owned(),
            hint: p.hint_restarts.clone(),
            body: None,
            resolved_title: String::new(),
        },
        now,
    )
    .await
}

/// The restarts of the last hour that were not the scheduled restart's own. Its own are
/// recorded once in the alert log, silenced, so the log shows them and the digest does not.
async fn without_planned(
    app: &AppState,
    p: &Process<'_>,
    id: &str,
    now: i64,
    current: i64,
    hour: f64,
) -> anyhow::Result<f64> {
    let planned =
        app.live
            .planned_restarts
            .judge(&p.source, &format!("{}:{id}", p.kind), current, now);
    let crate::jobs::restart::Restarted::Planned {
        from_ms,
        by_others,
        first,
    } = planned
    else {
        return Ok(hour);
    };
    if first {
        let alert = crate::store::NewAlert {
            dedup_key: format!("restart:{from_ms}:restarted:{}:{id}", p.kind),
            severity: crate::rules::alert::Severity::Warning,
            source: p.source.clone(),
            kind: p.kind.to_owned(),
            title: format!("{} {} restarted", p.kind, p.name),
            value: Some(format!(
                "restarted by the scheduled restart ([restart]); total {current}"
            )),
            threshold: Some("warning on any restart".to_owned()),
            hint: None,
            body: None,
            silenced: true,
        };
        app.store.record_alert(&alert, &app.channels, now).await?;
    }
    Ok((by_others as f64).min(hour))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::systemd::parse_show;

    /// `systemctl show -p Id,LoadState,ActiveState,SubState,NRestarts,MainPID,MemoryCurrent`
    /// for a running nginx and a failed app unit (shape from the systemd reference).
    const SHOW: &str = "Id=nginx.service\nLoadState=loaded\nActiveState=active\nSubState=running\n\
NRestarts=0\nMainPID=812\nMemoryCurrent=9437184\n\nId=app.service\nLoadState=loaded\n\
ActiveState=failed\nSubState=failed\nNRestarts=7\nMainPID=0\nMemoryCurrent=[not set]\n";

    async fn titles(app: &AppState) -> Vec<(String, String)> {
        let now = crate::store::now_ms();
        app.store
            .list_alerts(0, now + 1, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.alert.severity.as_str().to_owned(), a.alert.title))
            .collect()
    }

    #[tokio::test]
    async fn a_failed_unit_is_critical_once_and_resolves_when_active() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let units = parse_show(SHOW);
        assert_eq!(units.len(), 2);
        evaluate_systemd(&app, &units, 1_000).await.unwrap();
        evaluate_systemd(&app, &units, 2_000).await.unwrap();
        assert_eq!(
            titles(&app).await,
            vec![(
                "critical".to_owned(),
                "systemd app.service is failed/failed".to_owned()
            )]
        );
        let fixed = parse_show(&SHOW.replace(
            "ActiveState=failed\nSubState=failed",
            "ActiveState=active\nSubState=running",
        ));
        evaluate_systemd(&app, &fixed, 3_000).await.unwrap();
        let t = titles(&app).await;
        assert_eq!(
            t[0],
            (
                "resolved".to_owned(),
                "systemd app.service is running again".to_owned()
            )
        );
        assert_eq!(t.len(), 2, "{t:?}");
    }

    #[tokio::test]
    async fn restarts_growing_fast_are_a_crash_loop() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        let now = crate::store::now_ms();
        // NRestarts 0 → 7 within two minutes, as the poller stores it.
        for (i, n) in [0.0, 3.0, 7.0].iter().enumerate() {
            let at = now - 120_000 + i as i64 * 60_000;
            app.store
                .record_samples(at, &[("systemd.restarts:app.service".to_owned(), *n)])
                .await
                .unwrap();
        }
        let units = parse_show(&SHOW.replace(
            "ActiveState=failed\nSubState=failed",
            "ActiveState=active\nSubState=running",
        ));
        evaluate_systemd(&app, &units, now).await.unwrap();
        let t = titles(&app).await;
        assert!(
            t.contains(&(
                "critical".to_owned(),
                "systemd app.service is crash-looping".to_owned()
            )),
            "{t:?}"
        );
        assert!(t.iter().all(|(_, title)| !title.contains("nginx")), "{t:?}");
    }

    #[tokio::test]
    async fn pm2_events_alone_raise_the_crash_loop() {
        let app = crate::daemon::testing::app_on_temp_sqlite().await;
        // In the past: `titles` lists alerts up to now.
        let now = crate::store::now_ms() - 10_000;
        // exit/online pairs as PM2 publishes them: the count grows at each relaunch.
        for (i, restarts) in [0, 1, 1, 2, 2, 3, 3, 4, 4, 5].into_iter().enumerate() {
            evaluate_pm2_event(&app, "api", 4, restarts, now + i as i64 * 300)
                .await
                .unwrap();
        }
        assert!(
            !titles(&app).await.iter().any(|(s, _)| s == "critical"),
            "5 restarts are not a crash loop yet"
        );
        evaluate_pm2_event(&app, "api", 4, 6, now + 3_300)
            .await
            .unwrap();
        let t = titles(&app).await;
        assert!(
            t.contains(&("critical".to_owned(), "pm2 api is crash-looping".to_owned())),
            "{t:?}"
        );
        // No status alert from events: "down" stays with the poller's two polls in a row.
        assert!(
            t.iter().all(|(_, title)| !title.contains("is stopped")),
            "{t:?}"
        );
    }
}
