//! opswatch in process: the real router, store, jobs and dispatcher, on a listener on port 0,
//! with a clock the test moves. Tests that need a process of their own (zero config, config
//! errors, kill -9, signals) use [`super::Opswatch`] instead.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use opswatch::config::Config;
use opswatch::daemon::clock::Clock;
use opswatch::daemon::state::AppState;
use opswatch::store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running in-process opswatch. Dropping it stops it.
pub struct TestApp {
    pub app: AppState,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// Starts opswatch in process with `config_text` (its store URL decides the backend; a path
/// under `dir` is typical) and the time taken from `clock`.
pub async fn spawn_app(dir: &Path, config_text: &str, clock: Clock) -> TestApp {
    let config = Config::from_toml(&dir.join("opswatch.toml"), config_text)
        .unwrap_or_else(|e| panic!("test config is invalid: {e}"));
    let store = Store::open_as(config.storage.url.expose(), &config.host)
        .await
        .expect("test store opens");
    let app = AppState::with_clock(config, store, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let (app, shutdown) = (app.clone(), shutdown.clone());
        async move {
            if let Err(e) = opswatch::daemon::serve::run_app(app, None, listener, shutdown).await {
                panic!("in-process opswatch failed: {e}");
            }
        }
    });
    TestApp {
        app,
        addr,
        shutdown,
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// Wakes the dispatcher until no delivery is pending any more, so that a test can assert
    /// what was (and was not) sent after everything due was really tried. Deliveries waiting
    /// for a later retry count as pending: move the clock past their time first.
    pub async fn dispatch_all_pending(&self) {
        for _ in 0..200 {
            self.app.wake_dispatcher();
            let depth = self.app.store.outbox_depth().await.unwrap();
            if depth.iter().all(|(_, n)| *n == 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the outbox did not drain: {:?}",
            self.app.store.outbox_depth().await
        );
    }

    /// Drives the dispatcher until the texts `fake` delivered satisfy `done`, at most `within`
    /// of real time (for what really takes time: processes crashing, probes); panics with them
    /// otherwise.
    pub async fn wait_for_texts(
        &self,
        fake: &super::fake_telegram::FakeTelegram,
        within: Duration,
        done: impl Fn(&[String]) -> bool,
    ) {
        let deadline = std::time::Instant::now() + within;
        loop {
            self.app.wake_dispatcher();
            let got = fake.delivered_texts();
            if done(&got) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alerts so far: {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the app and waits for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("in-process opswatch panicked");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
