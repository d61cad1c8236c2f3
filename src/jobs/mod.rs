//! Which jobs a running opswatch has, built from the config: one registration per job kind.

pub mod db_report;
pub mod disputes;
pub mod heartbeat;
pub mod history;
pub mod pm2_events;
pub mod reports;
pub mod restart;
pub mod updown;
pub mod vacuum;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::checks::system::{HostSnapshot, SystemSampler};
use crate::checks::{pm2, systemd};
use crate::daemon::live::Reading;
use crate::daemon::metrics::CheckLabels;
use crate::daemon::scheduler::{Job, Scheduler, Trigger};
use crate::daemon::state::AppState;
use crate::store::series;

/// How long `pm2 jlist` or `systemctl show` may take before the poll counts as failed.
const COLLECTOR_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the disk under the store is looked at (one `statvfs`).
const STORE_DISK_EVERY: Duration = Duration::from_secs(30);

/// The scheduler with every job the config asks for.
pub fn scheduler(app: &AppState) -> anyhow::Result<Scheduler> {
    let mut s = Scheduler::default();
    for check in crate::checks::configured(&app.config) {
        s.add(updown::job(check));
    }
    if app.config.system.enabled {
        s.add(system_sampler(app.config.system.sample_every.get()));
        s.add(job(
            "system:rules".to_owned(),
            Trigger::Every(app.config.system.every.get()),
            Duration::from_secs(60),
            |app| async move { crate::rules::host::evaluate(&app).await },
        ));
    }
    s.add(job(
        "store:disk".to_owned(),
        Trigger::Every(STORE_DISK_EVERY),
        Duration::from_secs(30),
        |app| async move { crate::rules::store_disk::evaluate(&app).await },
    ));
    s.add(job(
        "digest".to_owned(),
        Trigger::Cron(Box::new(app.config.digest.schedule.clone())),
        Duration::from_secs(60),
        |app| async move { crate::rules::digest::send(&app).await.map(|_| ()) },
    ));
    s.add(job(
        "history:rollup".into(),
        Trigger::Every(crate::jobs::history::ROLLUP_EVERY),
        crate::jobs::history::ROLLUP_TIMEOUT,
        crate::jobs::history::roll_up_job,
    ));
    s.add(job(
        "history:retention".into(),
        Trigger::Cron(Box::new(app.config.history.retention_schedule.clone())),
        crate::jobs::history::RETENTION_TIMEOUT,
        crate::jobs::history::retention_job,
    ));
    if let Some(db) = &app.config.database {
        s.add(job(
            "appdb:report".to_owned(),
            Trigger::Cron(Box::new(db.schedule.clone())),
            Duration::from_secs(600),
            db_report::scheduled,
        ));
    }
    if app.config.vacuum.enabled && app.config.database.is_some() {
        s.add(job(
            "appdb:vacuum".to_owned(),
            Trigger::Cron(Box::new(app.config.vacuum.schedule.clone())),
            Duration::from_secs(6 * 3600),
            vacuum::scheduled,
        ));
    }
    if let Some(d) = app.config.disputes.as_ref().filter(|d| d.query.is_some()) {
        s.add(job(
            "disputes:sql".to_owned(),
            Trigger::Every(d.every.get()),
            d.every.get().max(Duration::from_secs(120)),
            |app| async move {
                disputes::check_sql(&app)
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            },
        ));
    }
    if app.config.pm2.enabled.unwrap_or_else(pm2::pm2_on_path) {
        s.add(pm2_poller(app));
    }
    if !app.config.systemd.units.is_empty() {
        s.add(systemd_poller(app));
    }
    if let Some(cfg) = &app.config.heartbeat {
        s.add(heartbeat::job(cfg)?);
    }
    reports::add(&mut s, app);
    Ok(s)
}

fn job<F, Fut>(name: String, trigger: Trigger, timeout: Duration, run: F) -> Job
where
    F: Fn(AppState) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    Job {
        name,
        trigger,
        timeout,
        run: Arc::new(move |app| Box::pin(run(app))),
    }
}

fn system_sampler(every: Duration) -> Job {
    let sampler = Arc::new(Mutex::new(SystemSampler::new()));
    job(
        "system:sample".to_owned(),
        Trigger::Every(every),
        Duration::from_secs(30),
        move |app| {
            let sampler = sampler.clone();
            async move {
                let started = std::time::Instant::now();
                // The app's clock dates the sample, as it does every other reading: sustain
                // windows then follow a clock a test moves.
                let at_ms = app.clock.now_ms();
                let mut snapshot = tokio::task::spawn_blocking(move || {
                    let mut guard = sampler.lock().unwrap_or_else(|poisoned| {
                        // A sample that panicked (the run was recorded as failed) may have
                        // left the sampler half updated: start afresh rather than fail
                        // every later run.
                        sampler.clear_poison();
                        let mut guard = poisoned.into_inner();
                        *guard = SystemSampler::new();
                        guard
                    });
                    guard.sample()
                })
                .await??;
                snapshot.at_ms = at_ms;
                observe_duration(&app, "system", "system", started);
                app.store
                    .record_samples(snapshot.at_ms, &host_series(&snapshot))
                    .await?;
                app.live.set_host(snapshot);
                Ok(())
            }
        },
    )
}

/// The series one host sample writes.
pub fn host_series(s: &HostSnapshot) -> Vec<(String, f64)> {
    let mut out = vec![
        (series::MEMORY_USED_PCT.to_owned(), s.memory.used_pct),
        (series::LOAD_1.to_owned(), s.load.one),
        (series::LOAD_5.to_owned(), s.load.five),
        (series::LOAD_15.to_owned(), s.load.fifteen),
        (series::HOST_UPTIME_S.to_owned(), s.uptime_s),
    ];
    if let Some(swap) = &s.swap {
        out.push((series::SWAP_USED_PCT.to_owned(), swap.used_pct));
    }
    for m in &s.mounts {
        out.push((series::of(series::DISK_USED_PCT, &m.mount), m.used_pct));
        out.push((
            series::of(series::DISK_FREE_BYTES, &m.mount),
            m.avail_bytes as f64,
        ));
        if let Some(p) = m.inode_used_pct {
            out.push((series::of(series::DISK_INODE_PCT, &m.mount), p));
        }
    }
    out
}

fn pm2_poller(app: &AppState) -> Job {
    let home = app.config.pm2.home.clone();
    job(
        "pm2:poll".to_owned(),
        Trigger::Every(app.config.pm2.every.get()),
        COLLECTOR_TIMEOUT * 2,
        move |app| {
            let home = home.clone();
            async move {
                let started = std::time::Instant::now();
                let at_ms = app.clock.now_ms();
                match pm2::poll(home.as_deref(), COLLECTOR_TIMEOUT).await {
                    Ok(apps) => {
                        observe_duration(&app, "pm2", "pm2", started);
                        let mut samples = Vec::new();
                        for a in &apps {
                            let key = series::pm2_instance(&a.name, a.pm_id);
                            samples.push((series::of(series::PM2_CPU_PCT, &key), a.cpu_pct));
                            samples.push((
                                series::of(series::PM2_MEMORY_BYTES, &key),
                                a.memory_bytes as f64,
                            ));
                            samples
                                .push((series::of(series::PM2_RESTARTS, &key), a.restarts as f64));
                        }
                        app.store.record_samples(at_ms, &samples).await?;
                        crate::rules::processes::evaluate_pm2(&app, &apps, at_ms).await?;
                        app.live.set_pm2(Reading {
                            at_ms,
                            error: None,
                            items: apps,
                        });
                    }
                    Err(e) => {
                        crate::rules::processes::evaluate_pm2_unreachable(&app, &e, at_ms).await?;
                        app.live.set_pm2(Reading {
                            at_ms,
                            error: Some(e.to_string()),
                            items: Vec::new(),
                        });
                    }
                }
                Ok(())
            }
        },
    )
}

fn systemd_poller(app: &AppState) -> Job {
    let units = app.config.systemd.units.clone();
    job(
        "systemd:poll".to_owned(),
        Trigger::Every(app.config.systemd.every.get()),
        COLLECTOR_TIMEOUT * 2,
        move |app| {
            let units = units.clone();
            async move {
                let at_ms = app.clock.now_ms();
                let reading = match systemd::poll(&units, COLLECTOR_TIMEOUT).await {
                    Ok(items) => {
                        let samples: Vec<(String, f64)> = items
                            .iter()
                            .filter_map(|u| {
                                u.n_restarts.map(|n| {
                                    (series::of(series::SYSTEMD_RESTARTS, &u.unit), n as f64)
                                })
                            })
                            .collect();
                        app.store.record_samples(at_ms, &samples).await?;
                        crate::rules::processes::evaluate_systemd(&app, &items, at_ms).await?;
                        Reading {
                            at_ms,
                            error: None,
                            items,
                        }
                    }
                    Err(e) => Reading {
                        at_ms,
                        error: Some(e.to_string()),
                        items: Vec::new(),
                    },
                };
                app.live.set_systemd(reading);
                if let Ok(failed) = systemd::failed_units(COLLECTOR_TIMEOUT).await {
                    app.live.set_systemd_failed(failed);
                }
                Ok(())
            }
        },
    )
}

fn observe_duration(app: &AppState, check: &str, kind: &str, started: std::time::Instant) {
    app.metrics
        .check_duration
        .get_or_create(&CheckLabels {
            check: check.to_owned(),
            kind: kind.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
}
