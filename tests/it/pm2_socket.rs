//! PM2 read over its own sockets (`checks::pm2`: `rpc.sock` for the list, `pub.sock` for
//! events) against a real PM2 from npm, and against sockets of the test's own that misbehave.
//!
//! Every socket read here is given a `pm2` binary that does not exist, so a list can only come
//! from the socket, never from a `pm2 jlist` fallback. Real-PM2 tests skip with a notice when
//! `pm2` is not on PATH (fail in CI); each has its own PM2_HOME, killed at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::pm2::{KillDaemon, pm2, pm2_available};
use crate::support::{Opswatch, eventually, sqlite_url, telegram_config, wait_for_texts, write};
use opswatch::checks::pm2::events::{EventStream, Pm2Event};
use opswatch::checks::pm2::{Pm2App, Pm2Error, Via, parse_jlist, poll_with};

/// Bounds every wait, so that a hang fails the test instead of blocking it (not a speed
/// assertion: speed is in bench/processes.sh).
const BOUND: Duration = Duration::from_secs(30);
/// A value that must never leave the app's environment.
const SECRET: &str = "opswatch-test-secret-5f1c9a";

struct Pm2Home {
    /// First, so that it is dropped first: the daemon dies before its PM2_HOME is deleted.
    _kill: KillDaemon,
    home: PathBuf,
    apps: PathBuf,
    /// A `pm2` that does not exist: the socket must answer on its own.
    no_pm2: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Pm2Home {
    fn new() -> Pm2Home {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("pm2-home");
        let apps = tmp.path().join("apps");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&apps).unwrap();
        write(&apps, "idle.js", "setInterval(() => {}, 1000);\n");
        // Crashes after PM2's min_uptime (1 s): never "unstable", so PM2 never gives up on it.
        write(
            &apps,
            "looper.js",
            "setTimeout(() => process.exit(1), 1100);\n",
        );
        write(&apps, "dies.js", "process.exit(1);\n");
        Pm2Home {
            no_pm2: tmp.path().join("no-such-pm2"),
            _kill: KillDaemon(home.clone()),
            _tmp: tmp,
            home,
            apps,
        }
    }

    /// `pm2 start <script> --name <name> [extra]`, the app's environment holding [`SECRET`].
    fn start(&self, script: &str, name: &str, extra: &[&str]) {
        let out = Command::new("pm2")
            .args([
                "start",
                self.apps.join(script).to_str().unwrap(),
                "--name",
                name,
            ])
            .args(extra)
            .env("PM2_HOME", &self.home)
            .env("API_TOKEN", SECRET)
            .env("DATABASE_URL", format!("postgres://app:{SECRET}@db/app"))
            .stdin(Stdio::null())
            .output()
            .expect("pm2 runs");
        assert!(out.status.success(), "pm2 start {name} failed");
    }

    async fn read(&self) -> Result<(Vec<Pm2App>, Via), Pm2Error> {
        poll_with(&self.no_pm2, Some(&self.home), BOUND).await
    }

    fn daemon_pid(&self) -> i32 {
        std::fs::read_to_string(self.home.join("pm2.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn find<'a>(apps: &'a [Pm2App], name: &str) -> &'a Pm2App {
    apps.iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{name} not in {apps:#?}"))
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_socket_lists_online_stopped_errored_and_crash_looping_apps() {
    if !pm2_available() {
        return;
    }
    let h = Pm2Home::new();
    h.start("idle.js", "web", &[]);
    h.start("idle.js", "worker", &[]);
    pm2(&h.home, &["stop", "worker"]);
    h.start("looper.js", "looper", &[]);
    h.start("dies.js", "dies", &["--max-restarts", "3"]);

    // Until `dies` has given up and `looper` has restarted a few times.
    let apps = eventually(BOUND, || async {
        let (apps, via) = h.read().await.expect("the socket answers");
        assert_eq!(via, Via::Socket);
        let done = find(&apps, "dies").status == "errored" && find(&apps, "looper").restarts >= 3;
        done.then_some(apps)
    })
    .await
    .expect("dies errored and looper restarting");

    assert_eq!(apps.len(), 4, "{apps:#?}");
    let web = find(&apps, "web");
    assert_eq!(
        (web.status.as_str(), web.restarts),
        ("online", 0),
        "{web:?}"
    );
    assert!(web.pid.is_some_and(|p| p > 0), "{web:?}");
    assert!(web.memory_bytes > 0 && web.uptime_ms.is_some(), "{web:?}");
    assert_eq!(web.exec_mode, "fork_mode");
    let worker = find(&apps, "worker");
    assert_eq!(worker.status, "stopped");
    assert_eq!((worker.pid, worker.uptime_ms), (None, None), "{worker:?}");
    let dies = find(&apps, "dies");
    assert_eq!((dies.pid, dies.uptime_ms), (None, None), "{dies:?}");
    // The looper keeps going: its count grows between two reads.
    let before = find(&apps, "looper").restarts;
    eventually(BOUND, || async {
        let (apps, _) = h.read().await.unwrap();
        (find(&apps, "looper").restarts > before).then_some(())
    })
    .await
    .expect("looper's restart count grows");

    // The same facts as `pm2 jlist` (Node) prints for the same daemon.
    let (socket, _) = h.read().await.unwrap();
    let jlist = pm2(&h.home, &["jlist"]);
    let jlist = parse_jlist(&String::from_utf8_lossy(&jlist.stdout), 0).unwrap();
    let facts = |apps: &[Pm2App]| {
        let mut f: Vec<(String, i64, i64)> = apps
            .iter()
            .filter(|a| a.name != "looper") // still moving
            .map(|a| (format!("{}:{}", a.name, a.status), a.pm_id, a.restarts))
            .collect();
        f.sort();
        f
    };
    assert_eq!(facts(&socket), facts(&jlist));

    // The environment was in the answer; nothing of it was kept.
    let kept = format!("{socket:?}{}", serde_json::to_string(&socket).unwrap());
    assert!(
        !kept.contains(SECRET) && !kept.contains("API_TOKEN"),
        "{kept}"
    );
}

/// The next event about `name`, skipping others.
async fn next_for(events: &mut EventStream, name: &str) -> Pm2Event {
    loop {
        let e = tokio::time::timeout(BOUND, events.next())
            .await
            .expect("an event within the bound")
            .expect("the bus is readable");
        if e.name == name {
            return e;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_in_order_as_they_happen() {
    if !pm2_available() {
        return;
    }
    let h = Pm2Home::new();
    h.start("idle.js", "web", &[]);
    let mut events = EventStream::connect(&h.home).await.expect("pub.sock");

    // An operator's restart: the old process exits, the new one comes online, one more restart.
    let home = h.home.clone();
    tokio::task::spawn_blocking(move || pm2(&home, &["restart", "web"]))
        .await
        .unwrap();
    // (PM2 sends `exit` twice for a stop: once when it stops the app, once when it exits.)
    // (The `online` of its start may still be on its way: PM2 5 sends it late.)
    let mut first = next_for(&mut events, "web").await;
    while first.event != "exit" {
        first = next_for(&mut events, "web").await;
    }
    let mut web = vec![first];
    while web.last().unwrap().event != "online" {
        web.push(next_for(&mut events, "web").await);
    }
    let (exit, online) = (&web[0], web.last().unwrap());
    assert!(
        web[..web.len() - 1].iter().all(|e| e.event == "exit"),
        "{web:#?}"
    );
    assert_eq!(online.restarts, exit.restarts + 1, "{web:#?}");
    // PM2 sends `online` while its status still says `launching`.
    assert!(
        ["online", "launching"].contains(&online.status.as_str()),
        "{online:?}"
    );

    // A crash loop: exit, online, exit, online… with the count growing at each relaunch.
    h.start("looper.js", "looper", &[]);
    let mut seen = Vec::new();
    while seen
        .iter()
        .filter(|e: &&Pm2Event| e.event == "exit")
        .count()
        < 3
    {
        seen.push(next_for(&mut events, "looper").await);
    }
    let exits: Vec<i64> = seen
        .iter()
        .filter(|e| e.event == "exit")
        .map(|e| e.restarts)
        .collect();
    assert!(exits.windows(2).all(|w| w[1] == w[0] + 1), "{seen:#?}");
    assert!(
        seen.iter().all(|e| !e.manually || e.event == "start"),
        "{seen:#?}"
    );
    assert!(
        !format!("{seen:?}").contains(SECRET),
        "an event kept the environment"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_mid_request_is_an_error_not_a_hang() {
    if !pm2_available() {
        return;
    }
    let h = Pm2Home::new();
    h.start("idle.js", "web", &[]);
    let (apps, _) = h.read().await.unwrap();
    let app_pid = find(&apps, "web").pid.unwrap() as i32;
    let mut events = EventStream::connect(&h.home).await.unwrap();

    // Frozen, the daemon takes the request (the kernel queues it) but cannot answer; killed
    // then, it leaves the request without an answer.
    let daemon = h.daemon_pid();
    signal(daemon, "-STOP");
    let (no_pm2, home) = (h.no_pm2.clone(), h.home.clone());
    let pending = tokio::spawn(async move { poll_with(&no_pm2, Some(&home), BOUND).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "answered while frozen");
    signal(daemon, "-KILL");
    let result = tokio::time::timeout(BOUND, pending)
        .await
        .expect("the poll ended")
        .unwrap();
    assert_eq!(result.map(drop), Err(Pm2Error::Disconnected));
    let e = tokio::time::timeout(BOUND, events.next())
        .await
        .expect("the event stream ended");
    assert_eq!(e, Err(Pm2Error::Disconnected));
    // The socket file is left behind, refusing connections: the daemon is reported down.
    assert!(h.home.join("rpc.sock").exists());
    assert_eq!(h.read().await.map(drop), Err(Pm2Error::DaemonNotRunning));

    // Clean up what the killed daemon left: its app, and its files (so that `pm2 kill` at the
    // end does not start a daemon to kill).
    signal(app_pid, "-KILL");
    for f in ["pm2.pid", "rpc.sock", "pub.sock"] {
        let _ = std::fs::remove_file(h.home.join(f));
    }
}

/// A socket of the test's own under `dir` that answers every connection with `answer`.
fn serve(dir: &Path, file: &str, answer: &'static [u8]) -> tokio::task::JoinHandle<()> {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::UnixListener::bind(dir.join(file)).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(answer).await;
            let _ = s.shutdown().await;
        }
    })
}

#[tokio::test]
async fn a_socket_answering_garbage_is_a_clean_error() {
    let garbage: [&'static [u8]; 4] = [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"{\"jsonrpc\":\"2.0\",\"result\":\"opswatch-test-secret-5f1c9a\"}\n",
        // Plausible AMP announcing a 4 GB argument.
        &[0x12, 0xff, 0xff, 0xff, 0xf0, b'j', b':'],
        // AMP that is not an axon reply: one blob.
        &[0x11, 0, 0, 0, 3, 1, 2, 3],
    ];
    for answer in garbage {
        let tmp = tempfile::tempdir().unwrap();
        let rpc = serve(tmp.path(), "rpc.sock", answer);
        let publisher = serve(tmp.path(), "pub.sock", answer);
        let no_pm2 = tmp.path().join("no-such-pm2");
        // Not PM2's protocol: the fallback to `pm2 jlist` is tried, and here there is no pm2.
        let e = poll_with(&no_pm2, Some(tmp.path()), BOUND)
            .await
            .map(drop)
            .unwrap_err();
        assert!(matches!(e, Pm2Error::NotInstalled(_)), "{answer:?}: {e:?}");
        let mut events = EventStream::connect(tmp.path()).await.unwrap();
        let e = tokio::time::timeout(BOUND, events.next())
            .await
            .expect("no hang")
            .unwrap_err();
        assert!(
            matches!(e, Pm2Error::Protocol(_) | Pm2Error::Disconnected),
            "{answer:?}: {e:?}"
        );
        assert!(!e.to_string().contains(SECRET), "{e}");
        rpc.abort();
        publisher.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_raise_the_crash_loop_and_the_environment_stays_out_of_store_logs_and_api() {
    if !pm2_available() {
        return;
    }
    let h = Pm2Home::new();
    h.start("idle.js", "web", &[]);
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Polls an hour apart: only the first one happens during the test, so the crash loop can
    // only be seen through the events.
    let config = format!(
        "{head}[pm2]\nhome = \"{home}\"\nevery = \"1h\"\n[system]\nenabled = false\n",
        head = telegram_config(&sqlite_url(dir.path()), &fake),
        home = h.home.display(),
    );
    let app = Opswatch::start_with_config(dir.path(), &config);
    eventually(BOUND, || async {
        let p = app.get_json("/api/v1/processes").await;
        let items = p["pm2"]["reading"]["items"].as_array().cloned()?;
        items.iter().any(|a| a["name"] == "web").then_some(())
    })
    .await
    .expect("the first poll lists web");

    h.start("looper.js", "looper", &[]);
    wait_for_texts(&fake, &app, Duration::from_secs(60), |t| {
        t.iter().any(|m| m.contains("looper is crash-looping"))
    })
    .await;

    // The looper started after the only poll: its alert and stored counter came from events.
    let series = app.get_json("/api/v1/processes").await;
    let alerts = app.get_json("/api/v1/alerts").await;
    let metrics = app.get_json("/api/v1/metrics/pm2?range=1h").await;
    for (what, text) in [
        ("processes", series.to_string()),
        ("alerts", alerts.to_string()),
        ("metrics", metrics.to_string()),
        ("telegram", fake.delivered_texts().join("\n")),
        ("log", app.log()),
    ] {
        assert!(!text.contains(SECRET), "the environment is in the {what}");
        assert!(
            !text.contains("API_TOKEN"),
            "an env var name is in the {what}"
        );
    }
    assert!(alerts.to_string().contains("looper"), "{alerts}");
    drop(app);
    for entry in std::fs::read_dir(dir.path().join("data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the environment is in the store"
        );
    }
}
