//! `checks::pm2::poll` against a real PM2 (`npm install -g pm2`).
//!
//! Skipped with a notice when `pm2` is not on PATH, except in CI (`CI=true`), where a missing
//! pm2 fails the test. Everything runs under temporary PM2_HOMEs; the daemon started here is
//! killed at the end, also when an assertion fails.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::pm2::{KillDaemon, pm2, pm2_available};
use opswatch::checks::pm2::{Pm2App, Pm2Error, poll};

const POLL_TIMEOUT: Duration = Duration::from_secs(30);

fn app<'a>(apps: &'a [Pm2App], name: &str) -> &'a Pm2App {
    apps.iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{name} not in {apps:#?}"))
}

fn daemon_files(home: &Path) -> Vec<&'static str> {
    ["pm2.pid", "rpc.sock", "pub.sock"]
        .into_iter()
        .filter(|f| home.join(f).exists())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_reads_a_real_pm2() {
    if !pm2_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // 1. No daemon: DaemonNotRunning, and none was started (pm2 jlist would start one).
    let empty = tmp.path().join("empty-home");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(
        poll(Some(&empty), POLL_TIMEOUT).await,
        Err(Pm2Error::DaemonNotRunning)
    );
    let never = tmp.path().join("never-created");
    assert_eq!(
        poll(Some(&never), POLL_TIMEOUT).await,
        Err(Pm2Error::DaemonNotRunning)
    );
    // `pm2 jlist` only returns once the daemon it spawns is up, so had poll run it, the
    // daemon's files would be there now.
    assert_eq!(
        daemon_files(&empty),
        Vec::<&str>::new(),
        "a daemon was started"
    );
    assert_eq!(
        std::fs::read_dir(&empty).unwrap().count(),
        0,
        "PM2_HOME was touched"
    );
    assert!(!never.exists(), "PM2_HOME was created");

    // 2. Three apps under their own PM2_HOME.
    let home = tmp.path().join("pm2-home");
    let apps_dir = tmp.path().join("apps");
    std::fs::create_dir_all(&apps_dir).unwrap();
    let _kill = KillDaemon(home.clone()); // dropped before `tmp`: the daemon dies first
    let write = |name: &str, js: &str| {
        let path = apps_dir.join(name);
        std::fs::write(&path, js).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let stable = write("stable.js", "setInterval(() => {}, 1000);\n");
    let stopper = write("stopper.js", "setInterval(() => {}, 1000);\n");
    let crasher = write(
        "crasher.js",
        "console.log('starting');\nsetTimeout(() => process.exit(1), 200);\n",
    );
    pm2(&home, &["start", &stable, "--name", "stable"]);
    pm2(&home, &["start", &stopper, "--name", "stopped-app"]);
    pm2(&home, &["stop", "stopped-app"]);
    // Last: with PM2's defaults the crasher turns `errored` ~5 s after its start, after which
    // its restart count no longer grows.
    pm2(&home, &["start", &crasher, "--name", "crasher"]);

    let first = poll(Some(&home), POLL_TIMEOUT).await.expect("first poll");
    assert_eq!(first.len(), 3, "{first:#?}");
    let s = app(&first, "stable");
    assert_eq!(s.status, "online", "{s:?}");
    assert_eq!(s.restarts, 0, "{s:?}");
    assert!(s.pid.is_some_and(|p| p > 0), "{s:?}");
    assert!(s.memory_bytes > 0, "{s:?}");
    assert!(s.uptime_ms.is_some_and(|u| u >= 0), "{s:?}");
    assert_eq!(s.exec_mode, "fork_mode");
    let st = app(&first, "stopped-app");
    assert_eq!(st.status, "stopped", "{st:?}");
    assert_eq!(
        (st.pid, st.uptime_ms, st.memory_bytes),
        (None, None, 0),
        "{st:?}"
    );
    let restarts_before = app(&first, "crasher").restarts;

    // The crasher's restart count grows between polls: poll until it does (bounded).
    let deadline = Instant::now() + Duration::from_secs(15);
    let grown = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let apps = poll(Some(&home), POLL_TIMEOUT).await.expect("poll");
        let c = app(&apps, "crasher");
        if c.restarts > restarts_before {
            break c.clone();
        }
        assert!(
            Instant::now() < deadline,
            "crasher restarts stayed at {restarts_before}: {c:?}"
        );
    };
    assert!(grown.restarts > restarts_before);

    // 3. After `pm2 kill` the daemon is reported down again, and polling doesn't revive it.
    pm2(&home, &["kill"]);
    assert_eq!(
        poll(Some(&home), POLL_TIMEOUT).await,
        Err(Pm2Error::DaemonNotRunning)
    );
    assert_eq!(daemon_files(&home), Vec::<&str>::new());
}
