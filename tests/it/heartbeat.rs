//! `[heartbeat]`: GET url while healthy, GET url/fail while a channel fails; the URL (a
//! credential) never appears in the log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::routing::get;

use crate::support::fake_telegram::{FakeTelegram, Reply};
use crate::support::target::Target;
use crate::support::{Opswatch, eventually, sqlite_url, telegram_config};

const SECRET: &str = "hb-S3cret-uuid";

/// A Healthchecks-like watcher on loopback that records the paths it was pinged on.
struct Watcher {
    addr: std::net::SocketAddr,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    async fn start() -> Self {
        let paths = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .fallback(get(
                |State(p): State<Arc<Mutex<Vec<String>>>>, OriginalUri(uri): OriginalUri| async move {
                    p.lock().unwrap().push(uri.path().to_owned());
                    "OK"
                },
            ))
            .with_state(paths.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, paths }
    }

    fn url(&self) -> String {
        format!("http://{}/ping/{SECRET}", self.addr)
    }

    fn pinged(&self, path: &str) -> usize {
        self.paths
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

#[tokio::test]
async fn pings_while_healthy_and_fail_while_a_channel_fails_without_logging_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::start().await;
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let config = format!(
        r#"{base}
[heartbeat]
url = "{hb}"
every = "1s"

[[http]]
name = "api"
url = "{target}"
every = "1s"
failures = 1

[system]
enabled = false
"#,
        base = telegram_config(&sqlite_url(dir.path()), &fake),
        hb = watcher.url(),
        target = target.url(),
    );
    let ow = Opswatch::start_with_config(dir.path(), &config);
    let ok_path = format!("/ping/{SECRET}");
    let fail_path = format!("/ping/{SECRET}/fail");

    assert!(
        eventually(Duration::from_secs(10), || async {
            (watcher.pinged(&ok_path) >= 2).then_some(())
        })
        .await
        .is_some(),
        "no healthy pings; log:\n{}",
        ow.log()
    );
    assert_eq!(watcher.pinged(&fail_path), 0);

    // Telegram rejects the token: the next alert marks the channel failing.
    fake.set_default(Reply::Unauthorized);
    target.set_status(500);
    assert!(
        eventually(Duration::from_secs(20), || async {
            (watcher.pinged(&fail_path) >= 1).then_some(())
        })
        .await
        .is_some(),
        "no /fail ping after the channel failed; log:\n{}",
        ow.log()
    );
    let health = ow.get_json("/health").await;
    assert_eq!(health["channels"]["telegram"]["ok"], false, "{health}");

    let log = ow.log();
    assert!(!log.contains(SECRET), "the heartbeat URL leaked:\n{log}");
}
