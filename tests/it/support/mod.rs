//! Shared test harness: the real binary or router on loopback, fresh stores, fakes for what
//! this machine cannot reach.
#![allow(dead_code)]

pub mod app;
pub mod fake_telegram;
pub mod pm2;
pub mod target;
pub mod web;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;

pub const BIN: &str = env!("CARGO_BIN_EXE_opswatch");

/// Env var naming an administrative PostgreSQL URL (a role that may create databases).
pub const PG_ENV: &str = "OPSWATCH_TEST_PG_URL";

/// The administrative PostgreSQL URL, or `None` (with a printed notice) when tests run outside
/// CI without one. In CI (`CI=true`) a missing or unreachable server fails the test.
pub async fn pg_admin_url() -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(url) = std::env::var(PG_ENV) else {
        assert!(
            !in_ci,
            "CI=true but {PG_ENV} is not set: PostgreSQL tests cannot run"
        );
        eprintln!("notice: {PG_ENV} is not set; skipping the PostgreSQL part of this test");
        return None;
    };
    use sqlx::Connection as _;
    match sqlx::PgConnection::connect(&url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Some(url)
        }
        Err(e) if in_ci => panic!("CI=true but PostgreSQL at {PG_ENV} is unreachable: {e}"),
        Err(e) => {
            eprintln!(
                "notice: PostgreSQL at {PG_ENV} is unreachable ({e}); skipping the PostgreSQL part"
            );
            None
        }
    }
}

/// Runs `sql` (one or more statements) on the PostgreSQL database at `url`: how tests plant
/// tables, rows and problems in a scratch app database.
pub async fn app_sql(url: &str, sql: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

/// A database of its own for one test, dropped (with its connections) when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> Self {
        use sqlx::Connection as _;
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "opswatch_t_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        // A role of its own with a password no log line could contain by chance, so that tests
        // can assert the password never leaks.
        let password = format!("pw-{name}-S3cret");
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("admin connection");
        for sql in [
            format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE {name} OWNER {name}"),
        ] {
            sqlx::query(&sql)
                .execute(&mut conn)
                .await
                .expect("create test database");
        }
        let _ = conn.close().await;
        let mut url = url::Url::parse(admin_url).expect("admin URL parses");
        url.set_path(&name);
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        Self {
            admin_url: admin_url.to_owned(),
            url: url.to_string(),
            name,
        }
    }

    /// Drops the database now, cutting off whoever is connected (as an operator's mistake would).
    pub async fn drop_now(&self) {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("admin connection");
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("drop test database");
        let _ = conn.close().await;
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee; use a short-lived one on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    for sql in [
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        format!("DROP ROLE IF EXISTS {name}"),
                    ] {
                        let _ = sqlx::query(&sql).execute(&mut conn).await;
                    }
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Where a test's store lives.
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// The store URLs to run a story on: SQLite always, PostgreSQL when available (the guard keeps
/// the database alive).
pub async fn store_urls(dir: &Path) -> Vec<(String, Option<PgDatabase>)> {
    let mut out = vec![(
        format!("sqlite://{}/store/opswatch.db", dir.display()),
        None,
    )];
    if let Some(admin) = pg_admin_url().await {
        let db = PgDatabase::create(&admin).await;
        out.push((db.url.clone(), Some(db)));
    }
    out
}

/// An opened store on each of [`store_urls`] (migrated), in a temporary folder the caller
/// keeps alive with the stores.
pub async fn open_stores() -> (
    tempfile::TempDir,
    Vec<(opswatch::store::Store, Option<PgDatabase>)>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (url, guard) in store_urls(dir.path()).await {
        let store = opswatch::store::Store::open(&url)
            .await
            .expect("store opens");
        out.push((store, guard));
    }
    (dir, out)
}

/// A check result with HTTP 200 and `latency_ms`, up or down as `ok` says.
pub fn http_result(at_ms: i64, ok: bool, latency_ms: i64) -> opswatch::store::ResultRow {
    opswatch::store::ResultRow {
        at_ms,
        ok,
        latency_ms: Some(latency_ms),
        status_code: Some(200),
        error_kind: None,
        error: None,
        cert_expires_ms: None,
    }
}

/// The real `opswatch serve`, on a free loopback port, killed when dropped.
pub struct Opswatch {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Opswatch {
    /// Starts `opswatch serve --listen 127.0.0.1:0` in `dir` with `args` before `serve`, and
    /// waits for its "listening" line.
    pub fn start(dir: &Path, global_args: &[&str]) -> Self {
        Self::start_with_env(dir, global_args, &[])
    }

    /// [`start`](Self::start) with extra environment variables (e.g. `NOTIFY_SOCKET`).
    pub fn start_with_env(dir: &Path, global_args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(BIN)
            .args(global_args)
            .envs(env.iter().copied())
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("OPSWATCH_CONFIG")
            .env("OPSWATCH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("opswatch starts");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && v["message"] == "opswatch is listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a.parse().expect("listen address parses"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "opswatch did not start listening; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self {
            child,
            addr,
            dir: dir.to_owned(),
            stderr: log,
        }
    }

    /// Writes `config` to `dir/opswatch.toml` and [`start`](Self::start)s on it.
    pub fn start_with_config(dir: &Path, config: &str) -> Self {
        let path = write_config(dir, config);
        Self::start(dir, &["--config", path.to_str().unwrap()])
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GETs `path` and returns its JSON body, whatever the status.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "opswatch did not exit within {within:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no cleanup at all, as in a crash or an OOM kill.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Opswatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An opswatch a test talks to over HTTP: the binary ([`Opswatch`]) or in process
/// ([`app::TestApp`]), so that helpers serve both.
pub trait Served {
    fn url(&self, path: &str) -> String;
    /// What it logged so far, for failure messages (in process: the test's own output).
    fn log(&self) -> String;
}

impl Served for Opswatch {
    fn url(&self, path: &str) -> String {
        Opswatch::url(self, path)
    }
    fn log(&self) -> String {
        Opswatch::log(self)
    }
}

impl Served for app::TestApp {
    fn url(&self, path: &str) -> String {
        app::TestApp::url(self, path)
    }
    fn log(&self) -> String {
        "(in process: its log is in the test's output)".to_owned()
    }
}

/// Polls `probe` until it returns `Some`, at most `within`; for waiting on something another
/// process does (not a fixed sleep standing in for an assertion).
pub async fn eventually<T, F, Fut>(within: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `opswatch ARGS` to completion.
pub fn run_cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("OPSWATCH_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("opswatch runs")
}

/// [`run_cli`] on tokio's blocking pool, for async tests: the CLI may call fakes served by the
/// test's own runtime, which a blocking wait would starve.
pub async fn run_cli_async(dir: &Path, args: &[&str]) -> std::process::Output {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&dir, &args)
    })
    .await
    .expect("the opswatch CLI task panicked")
}

/// The SQLite store of a test that needs just one, under `dir`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}/data/o.db", dir.display())
}

/// The `[storage]` and `[telegram]` sections of a config that alerts through `fake`.
pub fn telegram_config(store_url: &str, fake: &FakeTelegram) -> String {
    format!(
        r#"[storage]
url = "{store_url}"
[telegram]
bot_token = "1:x"
chat_id = "77"
api_base = "{api}"
"#,
        api = fake.api_base(),
    )
}

/// Waits until the texts `fake` delivered satisfy `done`, at most `within`; panics with them and
/// `app`'s log otherwise.
pub async fn wait_for_texts(
    fake: &FakeTelegram,
    app: &Opswatch,
    within: Duration,
    done: impl Fn(&[String]) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        let got = fake.delivered_texts();
        if done(&got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "alerts so far: {got:#?}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes `text` to `dir/opswatch.toml`.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    write(dir, "opswatch.toml", text)
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
