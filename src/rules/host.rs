//! Host rules: disk (space, inodes, fill rate), memory, swap, load and reboots, evaluated on
//! `system.every` over the stored samples.

use crate::checks::system::HostSnapshot;
use crate::config::SystemConfig;
use crate::daemon::state::AppState;
use crate::store::series;

use super::condition::{Assessment, Level, Limits, apply};

/// Disk fill prediction looks at this much history ...
const FILL_WINDOW_MS: i64 = 6 * 3_600_000;
/// ... needs at least this much of it ...
const FILL_MIN_SPAN_MS: i64 = 30 * 60_000;
/// ... and warns when the disk is full sooner than this at the current rate.
const FILL_HORIZON_MS: i64 = 24 * 3_600_000;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Evaluates every host condition once.
pub async fn evaluate(app: &AppState) -> anyhow::Result<()> {
    let now = app.clock.now_ms();
    let cfg = &app.config.system;
    let snapshot = app.live.host.read().ok().and_then(|h| h.clone());
    let Some(snapshot) = snapshot else {
        return Ok(()); // nothing sampled yet
    };
    let top = top_processes(&snapshot);
    let limits = |warn: Option<f64>, crit: Option<f64>| Limits {
        warn,
        crit,
        hysteresis_pct: cfg.hysteresis,
    };

    for m in &snapshot.mounts {
        let over = cfg.mounts.get(&m.mount);
        if over.is_some_and(|o| o.ignore) {
            continue;
        }
        let l = limits(
            Some(over.and_then(|o| o.disk_warn).unwrap_or(cfg.disk_warn)),
            Some(over.and_then(|o| o.disk_crit).unwrap_or(cfg.disk_crit)),
        );
        let used = series::of(series::DISK_USED_PCT, &m.mount);
        if let Some((min, latest)) = window(app, &used, cfg, now).await? {
            let level = l.next(
                previous(app, &format!("disk:{}", m.mount)).await?,
                min,
                latest,
            );
            apply(
                app,
                Assessment {
                    key: format!("disk:{}", m.mount),
                    source: format!("disk {}", m.mount),
                    kind: "system",
                    level,
                    value: latest,
                    unit: " %",
                    title: format!("Disk {} is {latest:.0} % full", m.mount),
                    value_text: format!("{latest:.0} % used, {:.1} GiB free", m.avail_bytes as f64 / GIB),
                    threshold_text: l.describe(" %"),
                    hint: format!(
                        "Find what grew: `du -xh --max-depth=2 {} | sort -h | tail`; old logs \
                         (`journalctl --vacuum-size=500M`, `pm2 flush`), package caches (`apt-get clean`).",
                        m.mount
                    ),
                    body: None,
                    resolved_title: format!("Disk {} is back to {latest:.0} %", m.mount),
                },
                now,
            )
            .await?;
        }
        if let Some(inode_pct) = m.inode_used_pct {
            let l = limits(Some(cfg.inode_warn), None);
            let key = format!("inodes:{}", m.mount);
            let level = l.next(previous(app, &key).await?, inode_pct, inode_pct);
            apply(
                app,
                Assessment {
                    key,
                    source: format!("disk {}", m.mount),
                    kind: "system",
                    level,
                    value: inode_pct,
                    unit: " %",
                    title: format!("Disk {} has used {inode_pct:.0} % of its inodes", m.mount),
                    value_text: format!("{inode_pct:.0} % of inodes used"),
                    threshold_text: l.describe(" %"),
                    hint: "Many small files: session or cache folders, mail queues. \
                           `find MOUNT -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | sort -n | tail`."
                        .to_owned(),
                    body: None,
                    resolved_title: format!("Disk {} inodes back to {inode_pct:.0} %", m.mount),
                },
                now,
            )
            .await?;
        }
        fill_prediction(app, &m.mount, now).await?;
    }

    if let Some((min, latest)) = window(app, series::MEMORY_USED_PCT, cfg, now).await? {
        let l = limits(Some(cfg.memory_warn), Some(cfg.memory_crit));
        let level = l.next(previous(app, "memory").await?, min, latest);
        apply(
            app,
            Assessment {
                key: "memory".to_owned(),
                source: "memory".to_owned(),
                kind: "system",
                level,
                value: latest,
                unit: " %",
                title: format!("Memory is {latest:.0} % used"),
                value_text: format!(
                    "{latest:.0} % used, {:.1} GiB available",
                    snapshot.memory.available_bytes as f64 / GIB
                ),
                threshold_text: l.describe(" %"),
                hint: "See who holds memory (below, or `ps aux --sort=-rss | head`); restart a \
                       leaking app (`pm2 restart NAME`) or give it a `max_memory_restart`."
                    .to_owned(),
                body: Some(top.clone()),
                resolved_title: format!("Memory is back to {latest:.0} %"),
            },
            now,
        )
        .await?;
    }

    // No swap configured: no swap series, no swap alerts (and no division by zero).
    if snapshot.swap.is_some()
        && let Some((min, latest)) = window(app, series::SWAP_USED_PCT, cfg, now).await?
    {
        let l = limits(Some(cfg.swap_warn), Some(cfg.swap_crit));
        let level = l.next(previous(app, "swap").await?, min, latest);
        apply(
            app,
            Assessment {
                key: "swap".to_owned(),
                source: "swap".to_owned(),
                kind: "system",
                level,
                value: latest,
                unit: " %",
                title: format!("Swap is {latest:.0} % used"),
                value_text: format!("{latest:.0} % of swap used"),
                threshold_text: l.describe(" %"),
                hint: "Swapping slows every app: find who holds memory (below) and restart or \
                       limit it; check `vm.swappiness`."
                    .to_owned(),
                body: Some(top.clone()),
                resolved_title: format!("Swap is back to {latest:.0} %"),
            },
            now,
        )
        .await?;
    }

    if let Some((min, latest)) = window(app, series::LOAD_5, cfg, now).await? {
        let cores = snapshot.cpus.max(1) as f64;
        let scale = if cfg.load_per_core { cores } else { 1.0 };
        let l = limits(Some(cfg.load_warn * scale), Some(cfg.load_crit * scale));
        let level = l.next(previous(app, "load").await?, min, latest);
        apply(
            app,
            Assessment {
                key: "load".to_owned(),
                source: "load".to_owned(),
                kind: "system",
                level,
                value: latest,
                unit: "",
                title: format!("Load is {latest:.1}"),
                value_text: format!(
                    "5-minute load {latest:.2} ({:.2} per core, {cores} cores)",
                    latest / cores
                ),
                threshold_text: l.describe(""),
                hint: "See the busiest processes (below, or `top -o %CPU`); a crash-looping app \
                       or a runaway query is the usual cause."
                    .to_owned(),
                body: Some(top),
                resolved_title: format!("Load is back to {latest:.1}"),
            },
            now,
        )
        .await?;
    }

    reboot(app, &snapshot, now).await
}

/// (lowest sample over the sustain window, latest sample) of a series.
async fn window(
    app: &AppState,
    name: &str,
    cfg: &SystemConfig,
    now: i64,
) -> anyhow::Result<Option<(f64, f64)>> {
    let points = app
        .store
        .query_series(name, now - cfg.sustain.as_millis_i64(), now + 1)
        .await?;
    let min = points.iter().map(|p| p.min).fold(f64::INFINITY, f64::min);
    Ok(points.last().map(|last| (min, last.avg)))
}

async fn previous(app: &AppState, key: &str) -> anyhow::Result<Level> {
    Ok(app
        .store
        .find_condition(key)
        .await?
        .map_or(Level::Ok, |c| c.level))
}

/// WARNING when the mount fills up within a day at the rate of the last hours (a least-squares
/// line through the free-bytes samples).
async fn fill_prediction(app: &AppState, mount: &str, now: i64) -> anyhow::Result<()> {
    let points = app
        .store
        .query_series(
            &series::of(series::DISK_FREE_BYTES, mount),
            now - FILL_WINDOW_MS,
            now + 1,
        )
        .await?;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(());
    };
    if last.at_ms - first.at_ms < FILL_MIN_SPAN_MS || points.len() < 5 {
        return Ok(());
    }
    let n = points.len() as f64;
    let mean_t = points
        .iter()
        .map(|p| (p.at_ms - first.at_ms) as f64)
        .sum::<f64>()
        / n;
    let mean_v = points.iter().map(|p| p.avg).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for p in &points {
        let dt = (p.at_ms - first.at_ms) as f64 - mean_t;
        num += dt * (p.avg - mean_v);
        den += dt * dt;
    }
    let slope = if den > 0.0 { num / den } else { 0.0 }; // bytes per ms
    let free = last.avg;
    let hours_left = if slope < 0.0 {
        free / -slope / 3_600_000.0
    } else {
        f64::INFINITY
    };
    let level = if hours_left * 3_600_000.0 < FILL_HORIZON_MS as f64 {
        Level::Warning
    } else {
        Level::Ok
    };
    apply(
        app,
        Assessment {
            key: format!("disk-fill:{mount}"),
            source: format!("disk {mount}"),
            kind: "system",
            level,
            value: hours_left.min(1e9),
            unit: " h",
            title: format!("Disk {mount} will be full in about {hours_left:.0} h"),
            value_text: format!(
                "{:.1} GiB free, shrinking {:.2} GiB/h",
                free / GIB,
                -slope * 3_600_000.0 / GIB
            ),
            threshold_text: "warning when full within 24 h at the current rate".to_owned(),
            hint: format!("Something is writing fast: `du -xh --max-depth=2 {mount} | sort -h | tail`, and the apps' logs."),
            body: None,
            resolved_title: format!("Disk {mount} is no longer filling fast"),
        },
        now,
    )
    .await
}

/// INFO when the host rebooted since the last look (the boot time moved).
async fn reboot(app: &AppState, snapshot: &HostSnapshot, now: i64) -> anyhow::Result<()> {
    let boot_ms = (snapshot.at_ms as f64 - snapshot.uptime_s * 1000.0).round();
    let previous = app.store.find_condition("host:boot").await?;
    let rebooted = previous.as_ref().is_some_and(|p| {
        p.value.is_some_and(|before| {
            rebooted_since(
                before,
                p.updated_ms,
                boot_ms,
                snapshot.uptime_s * 1000.0,
                now,
            )
        })
    });
    let update = crate::store::ConditionUpdate {
        key: "host:boot".to_owned(),
        level: crate::rules::condition::Level::Ok,
        value: Some(boot_ms),
        notified: true,
        alert: rebooted.then(|| crate::store::NewAlert {
            dedup_key: format!("host:reboot:{boot_ms}"),
            severity: crate::rules::alert::Severity::Info,
            source: "host".to_owned(),
            kind: "system".to_owned(),
            title: "The host rebooted".to_owned(),
            value: Some(format!("up for {}", super::human_duration((snapshot.uptime_s * 1000.0) as i64))),
            threshold: None,
            hint: Some("Check that every app came back (`pm2 status`, `systemctl --failed`) and why it rebooted (`last -x | head`).".to_owned()),
            body: None,
            silenced: false,
        }),
        warning: None,
    };
    if app
        .store
        .record_condition(&update, &app.channels, now)
        .await?
        .is_some()
    {
        app.wake_dispatcher();
    }
    Ok(())
}

/// Whether the host booted between the last look (boot time `before_ms`, seen at
/// `looked_ms`) and now. The boot time is derived from the wall clock, so a clock step moves
/// it too: a reboot also needs the uptime to be shorter than the time since the last look.
fn rebooted_since(before_ms: f64, looked_ms: i64, boot_ms: f64, uptime_ms: f64, now: i64) -> bool {
    const SLACK_MS: f64 = 120_000.0;
    (boot_ms - before_ms).abs() > SLACK_MS && uptime_ms < (now - looked_ms) as f64 + SLACK_MS
}

fn top_processes(s: &HostSnapshot) -> String {
    let mem: Vec<String> = s
        .top_memory
        .iter()
        .map(|p| {
            format!(
                "{} ({}) {:.0} MiB",
                p.name,
                p.pid,
                p.rss_bytes as f64 / 1024.0 / 1024.0
            )
        })
        .collect();
    let cpu: Vec<String> = s
        .top_cpu
        .iter()
        .map(|p| format!("{} ({}) {:.0} %", p.name, p.pid, p.cpu_pct))
        .collect();
    let mut out = format!(
        "Top memory: {}",
        if mem.is_empty() {
            "-".to_owned()
        } else {
            mem.join(", ")
        }
    );
    out.push_str(&format!(
        "\nTop CPU: {}",
        if cpu.is_empty() {
            "-".to_owned()
        } else {
            cpu.join(", ")
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reboot_is_a_new_boot_time_and_a_short_uptime_not_a_clock_step() {
        use super::rebooted_since;
        const HOUR: i64 = 3_600_000;
        let boot = 1_000_000_000_000_i64;
        let looked = boot + 48 * HOUR;
        // Rebooted ten minutes ago, looked an hour ago.
        let now = looked + HOUR;
        let new_boot = now - HOUR / 6;
        assert!(rebooted_since(
            boot as f64,
            looked,
            new_boot as f64,
            (HOUR / 6) as f64,
            now
        ));
        // The wall clock stepped forward an hour: the derived boot time moved, the uptime
        // (two days and a minute) did not shrink.
        let stepped = looked + 60_000 + HOUR;
        let uptime = (48 * HOUR + 60_000) as f64;
        assert!(!rebooted_since(
            boot as f64,
            looked,
            (stepped as f64) - uptime,
            uptime,
            stepped
        ));
        // Stepped back an hour.
        let back = looked + 60_000 - HOUR;
        assert!(!rebooted_since(
            boot as f64,
            looked,
            (back as f64) - uptime,
            uptime,
            back
        ));
        // Same boot, a little jitter.
        assert!(!rebooted_since(
            boot as f64,
            looked,
            (boot + 900) as f64,
            uptime,
            looked + 60_000
        ));
    }
}
