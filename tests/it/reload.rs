//! Reloading the config of a running `opswatch serve`: SIGHUP and `POST /api/v1/reload`
//! replace checks, thresholds and channels without a restart and without re-alerting; an
//! invalid file keeps the old config; systemd hears READY=1 and RELOADING=1 … READY=1 on a
//! notification socket the test owns.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use serde_json::Value;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::target::Target;
use crate::support::{Opswatch, eventually, sqlite_url, telegram_config, write_config};

/// The systemd side of sd_notify: an abstract datagram socket (what systemd hands out).
struct NotifySocket {
    socket: UnixDatagram,
    name: String,
}

impl NotifySocket {
    fn bind() -> Self {
        let name = format!(
            "opswatch-test-notify-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Self {
            socket,
            name: format!("@{name}"),
        }
    }

    /// The next message, as its `KEY=VALUE` lines.
    fn next(&self) -> Vec<String> {
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Skips watchdog pings and returns the next other message.
    fn next_state(&self) -> Vec<String> {
        loop {
            let m = self.next();
            if m != ["WATCHDOG=1"] {
                return m;
            }
        }
    }
}

fn config(base: &str, checks: &[(&str, &str, u32)]) -> String {
    let mut c = format!("{base}\n[system]\nenabled = false\n");
    for (name, url, failures) in checks {
        c.push_str(&format!(
            "\n[[http]]\nname = \"{name}\"\nurl = \"{url}\"\nevery = \"1s\"\nfailures = {failures}\n"
        ));
    }
    c
}

fn hup(ow: &Opswatch) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &ow.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn checks(ow: &Opswatch) -> Vec<(String, u64)> {
    let body = ow.get_json("/api/v1/checks").await;
    let mut out: Vec<(String, u64)> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["target"]["failures"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

fn critical_alerts(fake: &FakeTelegram, about: &str) -> usize {
    fake.delivered_texts()
        .iter()
        .filter(|t| t.contains("CRITICAL") && t.contains(about))
        .count()
}

#[tokio::test]
async fn sighup_replaces_checks_and_thresholds_without_realerting_and_notifies_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let (a, b, c) = (
        Target::start().await,
        Target::start().await,
        Target::start().await,
    );
    let base = telegram_config(&sqlite_url(dir.path()), &fake);
    let path = write_config(
        dir.path(),
        &config(&base, &[("a", &a.url(), 2), ("b", &b.url(), 1)]),
    );
    let notify = NotifySocket::bind();
    let mut ow = Opswatch::start_with_env(
        dir.path(),
        &["--config", path.to_str().unwrap()],
        &[
            ("NOTIFY_SOCKET", &notify.name),
            ("WATCHDOG_USEC", "2000000"),
        ],
    );
    let ready = notify.next_state();
    assert!(ready.contains(&"READY=1".to_owned()), "{ready:?}");

    // b goes down: exactly one CRITICAL, and it stays one across reloads.
    b.set_status(500);
    fake.wait_delivered(1, Duration::from_secs(20)).await;
    assert_eq!(
        critical_alerts(&fake, "b"),
        1,
        "{:?}",
        fake.delivered_texts()
    );

    // Remove a, change b's threshold, add c.
    write_config(
        dir.path(),
        &config(&base, &[("b", &b.url(), 3), ("c", &c.url(), 2)]),
    );
    hup(&ow);
    let reloading = notify.next_state();
    assert!(
        reloading.contains(&"RELOADING=1".to_owned())
            && reloading.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let done = notify.next_state();
    assert!(done.contains(&"READY=1".to_owned()), "{done:?}");
    assert_eq!(
        checks(&ow).await,
        vec![("b".to_owned(), 3), ("c".to_owned(), 2)],
        "log:\n{}",
        ow.log()
    );
    let a_hits = a.hits();
    assert!(
        eventually(Duration::from_secs(10), || async {
            (c.hits() >= 2).then_some(())
        })
        .await
        .is_some(),
        "the added check is not probed"
    );
    // Probed every second before; a removed check is no longer probed at all.
    assert!(a.hits() <= a_hits + 1, "the removed check is still probed");
    let b_hits = b.hits();
    assert!(
        eventually(Duration::from_secs(10), || async {
            (b.hits() >= b_hits + 2).then_some(())
        })
        .await
        .is_some()
    );
    assert_eq!(
        critical_alerts(&fake, "b"),
        1,
        "b alerted again after the reload: {:?}",
        fake.delivered_texts()
    );
    let status = ow.get_json("/api/v1/status").await;
    assert_eq!(
        status["checks_down"], 1,
        "b's incident stayed open: {status}"
    );

    // An invalid file: refused with file, key and reason; the old config keeps running.
    write_config(
        dir.path(),
        &format!(
            "{}\n[[http]]\nname = \"d\"\nurl = \"{}\"\nevery = \"soon\"\n",
            config(&base, &[]),
            c.url()
        ),
    );
    hup(&ow);
    assert!(notify.next_state().contains(&"RELOADING=1".to_owned()));
    let refused = notify.next_state();
    assert!(refused.contains(&"READY=1".to_owned()), "{refused:?}");
    // READY=1 can arrive before the reader thread has taken the log line off the pipe.
    let line = crate::support::eventually(Duration::from_secs(10), || async {
        ow.log()
            .lines()
            .find(|l| l.contains("config reload refused"))
            .map(str::to_owned)
    })
    .await
    .unwrap_or_else(|| panic!("no refusal logged:\n{}", ow.log()));
    assert!(
        line.contains(path.to_str().unwrap()) && line.contains("http[0].every"),
        "{line}"
    );
    let response = reqwest::Client::new()
        .post(ow.url("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_config", "{body}");
    assert_eq!(
        body["error"]["problems"][0]["key"], "http[0].every",
        "{body}"
    );
    assert_eq!(
        checks(&ow).await,
        vec![("b".to_owned(), 3), ("c".to_owned(), 2)]
    );
    let c_hits = c.hits();
    assert!(
        eventually(Duration::from_secs(10), || async {
            (c.hits() >= c_hits + 2).then_some(())
        })
        .await
        .is_some(),
        "the old config stopped running after a refused reload"
    );

    // The API reload applies a fixed file; b recovers: one RESOLVED.
    write_config(dir.path(), &config(&base, &[("b", &b.url(), 3)]));
    let response = reqwest::Client::new()
        .post(ow.url("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["reloaded"]["jobs"].as_u64().is_some(), "{body}");
    assert_eq!(checks(&ow).await, vec![("b".to_owned(), 3)]);
    b.set_status(200);
    let delivered = fake.wait_delivered(2, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 2);
    assert_eq!(critical_alerts(&fake, "b"), 1);
    assert!(ow.terminate(Duration::from_secs(20)).success());
}

/// Records what a webhook channel posts.
async fn webhook_recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = bodies.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, bodies)
}

#[tokio::test]
async fn a_reload_adds_and_removes_a_channel() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let (hook, posted) = webhook_recorder().await;
    let check = format!(
        "[system]\nenabled = false\n[[http]]\nname = \"x\"\nurl = \"{}\"\nevery = \"1s\"\nfailures = 1\n",
        target.url()
    );
    let store = sqlite_url(dir.path());
    let path = write_config(
        dir.path(),
        &format!("{}{check}", telegram_config(&store, &fake)),
    );
    let ow = Opswatch::start(dir.path(), &["--config", path.to_str().unwrap()]);

    target.set_status(500);
    fake.wait_delivered(1, Duration::from_secs(20)).await;

    // Telegram out, a webhook in: the RESOLVED goes to the webhook only.
    write_config(
        dir.path(),
        &format!(
            "[storage]\nurl = \"{store}\"\n[[webhook]]\nname = \"hook\"\nurl = \"{hook}\"\nformat = \"json\"\n{check}"
        ),
    );
    let response = reqwest::Client::new()
        .post(ow.url("/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", ow.log());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reloaded"]["channels"], 1, "{body}");
    target.set_status(200);
    let resolved = eventually(Duration::from_secs(20), || async {
        posted.lock().unwrap().first().cloned()
    })
    .await
    .unwrap_or_else(|| panic!("nothing reached the webhook; log:\n{}", ow.log()));
    assert!(
        resolved.contains("RESOLVED") || resolved.contains("resolved"),
        "{resolved}"
    );
    assert_eq!(
        fake.delivered().len(),
        1,
        "telegram still got messages after its removal"
    );
    assert_eq!(
        posted.lock().unwrap().len(),
        1,
        "the webhook got the DOWN again"
    );
}

#[tokio::test]
async fn a_reload_while_an_alert_is_being_delivered_sends_it_exactly_once() {
    use crate::support::fake_telegram::Reply;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let (a, b) = (Target::start().await, Target::start().await);
    let base = telegram_config(&sqlite_url(dir.path()), &fake);
    let path = write_config(dir.path(), &config(&base, &[("a", &a.url(), 1)]));
    let ow = Opswatch::start(dir.path(), &["--config", path.to_str().unwrap()]);

    // The first sendMessage hangs: the reload comes while it is in flight.
    fake.push(Reply::Hang);
    a.set_status(500);
    fake.wait_requests(1, Duration::from_secs(20)).await;
    write_config(
        dir.path(),
        &config(&base, &[("a", &a.url(), 1), ("b", &b.url(), 1)]),
    );
    hup(&ow);
    let delivered = fake.wait_delivered(1, Duration::from_secs(60)).await;
    assert_eq!(critical_alerts(&fake, "a"), 1, "{delivered:?}");
    // Let the new generation run a few probes and dispatcher rounds: still one.
    let b_hits = b.hits();
    assert!(
        eventually(Duration::from_secs(10), || async {
            (b.hits() >= b_hits + 3).then_some(())
        })
        .await
        .is_some(),
        "the reloaded config does not run; log:\n{}",
        ow.log()
    );
    assert_eq!(fake.delivered().len(), 1, "{:?}", fake.delivered_texts());
}
