//! `[[tcp]]` checks end to end: the real binary connecting to a real listener on loopback,
//! DOWN when the port closes and RESOLVED when it opens again, through the fake Telegram; and
//! shown wherever HTTP checks are.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::support::app::{TestApp, spawn_app};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::{Served, eventually, run_cli_async, telegram_config, write_config};
use opswatch::daemon::clock::Clock;

const WAIT: Duration = Duration::from_secs(20);

/// A port that accepts (and drops) connections until [`close`](Self::close)d.
struct Port {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Port {
    async fn open(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind the port");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
        Self {
            addr,
            task: Some(task),
        }
    }

    /// Stops listening: connections are refused from now on.
    async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

fn config(store_url: &str, fake: &FakeTelegram, port: &Port) -> String {
    format!(
        r#"{common}
[[tcp]]
name = "db"
address = "{addr}"
every = "1s"
timeout = "2s"
failures = 2
"#,
        common = telegram_config(store_url, fake),
        addr = port.addr,
    )
}

async fn state_of(app: &TestApp, name: &str) -> Option<serde_json::Value> {
    let body = app.get_json("/api/v1/status").await;
    body["checks"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

#[tokio::test]
async fn a_closed_port_is_down_and_reopened_it_is_resolved() {
    let base = tempfile::tempdir().unwrap();
    for (store_url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        let mut port = Port::open("127.0.0.1:0".parse().unwrap()).await;
        let app = spawn_app(dir.path(), &config(&store_url, &fake, &port), Clock::System).await;

        let up = eventually(WAIT, || async {
            state_of(&app, "db").await.filter(|c| c["state"] == "up")
        })
        .await
        .unwrap_or_else(|| panic!("db never came up; log:\n{}", app.log()));
        assert_eq!(up["kind"], "tcp", "{up}");
        assert_eq!(up["target"]["address"], port.addr.to_string(), "{up}");

        port.close().await;
        let critical = fake.wait_delivered(1, WAIT).await;
        let down = critical[0]["text"].as_str().unwrap_or_default().to_owned();
        assert!(
            down.contains("CRITICAL") && down.contains("db is DOWN"),
            "{down}"
        );
        assert!(
            down.contains(&format!("connection to {} failed", port.addr)),
            "the alert must say what was measured: {down}"
        );
        assert!(down.contains("2 failed probes in a row"), "{down}");
        let metrics = reqwest::get(app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains(r#"opswatch_check_up{check="db",kind="tcp"} 0"#),
            "{metrics}"
        );

        let reopened = Port::open(port.addr).await;
        let both = fake.wait_delivered(2, WAIT).await;
        let resolved = both[1]["text"].as_str().unwrap_or_default().to_owned();
        assert!(
            resolved.contains("RESOLVED") && resolved.contains("db is UP again"),
            "{resolved}"
        );
        assert!(resolved.contains("connected in"), "{resolved}");
        drop(reopened);
        assert_eq!(
            fake.delivered().len(),
            2,
            "exactly one DOWN and one RESOLVED"
        );
    }
}

#[tokio::test]
async fn check_and_connect_list_tcp_checks_like_http_ones() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let mut port = Port::open("127.0.0.1:0".parse().unwrap()).await;
    let store = crate::support::sqlite_url(dir.path());
    // Host thresholds off: the exit code must depend on the port alone, not on this
    // machine's load.
    let text = format!(
        "{}\n[system]\nenabled = false\n",
        config(&store, &fake, &port)
    );
    let path = write_config(dir.path(), &text);
    let path = path.to_str().unwrap();

    let out = run_cli_async(dir.path(), &["--config", path, "check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("db") && l.contains("tcp") && l.contains(" ok ")),
        "{stdout}"
    );
    let out = run_cli_async(
        dir.path(),
        &["--config", path, "config", "check", "--connect"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains(&format!("ok    tcp db {}", port.addr)),
        "{stdout}"
    );

    port.close().await;
    let out = run_cli_async(dir.path(), &["--config", path, "check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("db") && l.contains("FAIL") && l.contains("connection to")),
        "{stdout}"
    );
    assert!(fake.delivered().is_empty(), "`check` must not alert");
}
