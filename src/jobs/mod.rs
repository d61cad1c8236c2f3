//! Which jobs a running opswatch has, built from the config: one registration per job kind.

pub mod history;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::checks::http::{FailureKind, HttpProbe};
use crate::checks::system::{HostSnapshot, SystemSampler};
use crate::checks::{pm2, systemd};
use crate::daemon::live::Reading;
use crate::daemon::metrics::CheckLabels;
use crate::daemon::scheduler::{Job, Scheduler, Trigger};
use crate::daemon::state::AppState;
use crate::rules::http::CheckMemory;
use crate::store::now_ms;

/// How long `pm2 jlist` or `systemctl show` may take before the poll counts as failed.
const COLLECTOR_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the disk under the store is looked at (one `statvfs`).
const STORE_DISK_EVERY: Duration = Duration::from_secs(30);

/// The scheduler with every job the config asks for.
pub fn scheduler(app: &AppState) -> anyhow::Result<Scheduler> {
    let mut s = Scheduler::default();
    for cfg in &app.config.http {
        s.add(http_check(HttpProbe::new(cfg.clone())?));
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
    if app.config.pm2.enabled.unwrap_or_else(pm2::pm2_on_path) {
        s.add(pm2_poller(app));
    }
    if !app.config.systemd.units.is_empty() {
        s.add(systemd_poller(app));
    }
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

fn http_check(probe: HttpProbe) -> Job {
    let probe = Arc::new(probe);
    let memory = Arc::new(tokio::sync::Mutex::new(CheckMemory::default()));
    let every = probe.config.every.get();
    // The probe has its own timeout; this one only guards against the store hanging.
    let timeout = probe.config.timeout.get() + Duration::from_secs(30);
    job(
        format!("http:{}", probe.name()),
        Trigger::Every(every),
        timeout,
        move |app| {
            let probe = probe.clone();
            let memory = memory.clone();
            async move {
                let result = probe.probe().await;
                app.metrics
                    .check_duration
                    .get_or_create(&CheckLabels {
                        check: probe.name().to_owned(),
                        kind: "http".to_owned(),
                    })
                    .observe(result.latency_ms.unwrap_or_default() as f64 / 1000.0);
                if result.error_kind.as_deref() == Some(FailureKind::Local.as_str()) {
                    // Says nothing about the target: an error of opswatch, never a DOWN.
                    let what = format!(
                        "check {}: {}",
                        probe.name(),
                        result.error.as_deref().unwrap_or_default()
                    );
                    if app.health.record_local_fault(now_ms(), what.clone()) {
                        tracing::error!(check = %probe.name(), error = %what, "a check could not run: opswatch is out of descriptors or memory");
                    }
                    return Ok(());
                }
                let mut memory = memory.lock().await;
                crate::rules::http::process(&app, &probe, &mut memory, &result).await?;
                Ok(())
            }
        },
    )
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
                let snapshot = tokio::task::spawn_blocking(move || {
                    sampler
                        .lock()
                        .map_err(|_| anyhow::anyhow!("sampler poisoned"))?
                        .sample()
                })
                .await??;
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
        ("memory.used_pct".to_owned(), s.memory.used_pct),
        ("load.1".to_owned(), s.load.one),
        ("load.5".to_owned(), s.load.five),
        ("load.15".to_owned(), s.load.fifteen),
        ("host.uptime_s".to_owned(), s.uptime_s),
    ];
    if let Some(swap) = &s.swap {
        out.push(("swap.used_pct".to_owned(), swap.used_pct));
    }
    for m in &s.mounts {
        out.push((format!("disk.used_pct:{}", m.mount), m.used_pct));
        out.push((format!("disk.free_bytes:{}", m.mount), m.avail_bytes as f64));
        if let Some(p) = m.inode_used_pct {
            out.push((format!("disk.inode_pct:{}", m.mount), p));
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
                let at_ms = now_ms();
                match pm2::poll(home.as_deref(), COLLECTOR_TIMEOUT).await {
                    Ok(apps) => {
                        observe_duration(&app, "pm2", "pm2", started);
                        let mut series = Vec::new();
                        for a in &apps {
                            let key = format!("{}#{}", a.name, a.pm_id);
                            series.push((format!("pm2.cpu_pct:{key}"), a.cpu_pct));
                            series.push((format!("pm2.memory_bytes:{key}"), a.memory_bytes as f64));
                            series.push((format!("pm2.restarts:{key}"), a.restarts as f64));
                        }
                        app.store.record_samples(at_ms, &series).await?;
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
                let at_ms = now_ms();
                let reading = match systemd::poll(&units, COLLECTOR_TIMEOUT).await {
                    Ok(items) => {
                        let series: Vec<(String, f64)> = items
                            .iter()
                            .filter_map(|u| {
                                u.n_restarts
                                    .map(|n| (format!("systemd.restarts:{}", u.unit), n as f64))
                            })
                            .collect();
                        app.store.record_samples(at_ms, &series).await?;
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
