//! The disk under opswatch's own SQLite store. A full disk stops opswatch from recording, and
//! so from sending, anything (see the README's "Faults"), so it must warn before: WARNING
//! above `system.disk_warn` percent used (in the digest), CRITICAL above `system.disk_crit`
//! (sent at once, while there is still room to record it). Skipped when the host rules already
//! watch that filesystem (the data dir on `/`), so the same disk never alerts twice; a data dir
//! on a filesystem they leave out (a tmpfs, a bind mount) is watched here.

use std::path::Path;

use crate::daemon::state::AppState;

use super::condition::{Assessment, Level, Limits, apply};

/// Key of the condition (also what `/api/v1` shows).
pub const KEY: &str = "store-disk";

/// How full the filesystem holding `dir` is: (percent used as `df` shows it, bytes free for
/// an unprivileged writer).
pub fn usage(dir: &Path) -> anyhow::Result<(f64, u64)> {
    let st = rustix::fs::statvfs(dir)?;
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    let used = st.f_blocks.saturating_sub(st.f_bfree);
    let pct = crate::checks::system::df_pct(used, st.f_bavail).unwrap_or(0.0);
    Ok((pct, st.f_bavail.saturating_mul(frsize)))
}

/// Evaluates the store's disk once.
pub async fn evaluate(app: &AppState) -> anyhow::Result<()> {
    let Some(dir) = app.store.data_dir() else {
        return Ok(()); // PostgreSQL: its disk is its server's to watch
    };
    let dir = dir.to_owned();
    let probe_dir = dir.clone();
    let (used_pct, free_bytes) = tokio::task::spawn_blocking(move || usage(&probe_dir)).await??;
    app.health.record_store_disk(used_pct, free_bytes);
    if watched_by_host_rules(app, &dir) {
        return Ok(());
    }
    let cfg = &app.config.system;
    let limits = Limits {
        warn: Some(cfg.disk_warn),
        crit: Some(cfg.disk_crit),
        hysteresis_pct: cfg.hysteresis,
    };
    let previous = app
        .store
        .find_condition(KEY)
        .await?
        .map_or(Level::Ok, |c| c.level);
    // No sustain window: a store's disk that crossed a limit does not come back by itself.
    let level = limits.next(previous, used_pct, used_pct);
    let shown = dir.display();
    apply(
        app,
        Assessment {
            key: KEY.to_owned(),
            source: format!("opswatch data {shown}"),
            kind: "system",
            level,
            value: used_pct,
            unit: " %",
            title: format!("opswatch's data dir {shown} is {used_pct:.0} % full"),
            value_text: format!("{used_pct:.0} % used, {} KiB free", free_bytes / 1024),
            threshold_text: limits.describe(" %"),
            hint: format!(
                "When it is full opswatch can record no check result and send no alert. Free \
                 space on that filesystem (`du -xh --max-depth=2 {shown} | sort -h | tail`), \
                 shorten `[history]` retention, or move the store to a larger disk."
            ),
            body: None,
            resolved_title: format!("opswatch's data dir {shown} is back to {used_pct:.0} %"),
        },
        app.clock.now_ms(),
    )
    .await
}

/// Whether the host disk rules already cover the filesystem holding `dir`.
fn watched_by_host_rules(app: &AppState, dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if !app.config.system.enabled {
        return false;
    }
    let Ok(dev) = std::fs::metadata(dir).map(|m| m.dev()) else {
        return false;
    };
    let host = app.live.host.read().ok().and_then(|h| h.clone());
    host.is_some_and(|h| {
        h.mounts.iter().any(|m| {
            !app.config
                .system
                .mounts
                .get(&m.mount)
                .is_some_and(|o| o.ignore)
                && std::fs::metadata(&m.mount).is_ok_and(|md| md.dev() == dev)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::store::{Store, now_ms};

    async fn app_with_limits(warn: f64, crit: f64) -> (AppState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
            .await
            .unwrap();
        let mut config = Config::default();
        config.system.disk_warn = warn;
        config.system.disk_crit = crit;
        (AppState::new(config, store), dir)
    }

    #[tokio::test]
    async fn a_data_dir_over_the_critical_limit_alerts_at_once() {
        // Below any real usage: this filesystem is "over" both limits.
        let (app, _dir) = app_with_limits(-2.0, -1.0).await;
        evaluate(&app).await.unwrap();
        let row = app.store.find_condition(KEY).await.unwrap().unwrap();
        assert_eq!(row.level, Level::Critical);
        let alerts = app.store.list_alerts(0, i64::MAX, 10).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert!(
            alerts[0].alert.title.contains("data dir"),
            "{:?}",
            alerts[0]
        );
        let report = app.health.report(now_ms());
        assert!(report.store.disk_free_bytes.is_some());
    }

    #[tokio::test]
    async fn a_data_dir_under_the_limits_is_ok_and_silent() {
        let (app, _dir) = app_with_limits(100.0, 100.0).await;
        evaluate(&app).await.unwrap();
        let row = app.store.find_condition(KEY).await.unwrap();
        assert!(row.is_none_or(|r| r.level == Level::Ok));
        assert!(
            app.store
                .list_alerts(0, i64::MAX, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
