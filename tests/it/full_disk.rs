//! A full disk under the SQLite store: the real binary with its data dir on a 3 MiB tmpfs
//! that the test fills and frees, a real HTTP target, the fake Telegram. Whatever happens,
//! every incident ends with exactly one DOWN and one RESOLVED accepted by the chat, and the
//! store takes writes again once there is space (issue 18).
//!
//! Mounting needs root (CI runs as root); elsewhere each test prints a notice and skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::target::Target;
use crate::support::{Opswatch, eventually, write_config};

const WAIT: Duration = Duration::from_secs(40);

/// A small tmpfs mounted on a temp dir, unmounted when dropped.
pub struct SmallDisk {
    pub path: PathBuf,
    filler: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (as `mount` reads it: "3m"), or prints why not and returns
    /// `None`.
    pub fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self {
                filler: path.join("filler"),
                path,
                _dir: dir,
            }),
            Ok(o) => {
                eprintln!(
                    "notice: cannot mount a tmpfs ({}); skipping this full-disk test",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("notice: cannot run mount ({e}); skipping this full-disk test");
                None
            }
        }
    }

    /// Takes every free byte: writes a filler file until the disk says it is full.
    pub fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.filler)
            .unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
    }

    pub fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// One check "api" probing `target` every second, the store on `disk`.
fn config(disk: &Path, target: &Target, fake: &FakeTelegram) -> String {
    format!(
        r#"[storage]
url = "sqlite://{db}"

[telegram]
bot_token = "1:x"
chat_id = "77"
api_base = "{api}"

[system]
enabled = false

[pm2]
enabled = false

[[http]]
name = "api"
url = "{url}"
every = "1s"
timeout = "1s"
failures = 2
"#,
        db = disk.join("opswatch.db").display(),
        api = fake.api_base(),
        url = target.url(),
    )
}

fn count(fake: &FakeTelegram, needle: &str) -> usize {
    fake.delivered_texts()
        .iter()
        .filter(|t| t.contains(needle))
        .count()
}

async fn health(app: &Opswatch) -> (u16, Value) {
    let res = reqwest::get(app.url("/health")).await.expect("GET /health");
    let status = res.status().as_u16();
    (status, res.json().await.expect("health is JSON"))
}

/// Waits until `/health` answers `status`; returns its body.
async fn wait_health(app: &Opswatch, status: u16) -> Value {
    let body = eventually(WAIT, || async {
        let (s, body) = health(app).await;
        (s == status).then_some(body)
    })
    .await;
    body.unwrap_or_else(|| panic!("/health never answered {status}; log:\n{}", app.log()))
}

/// Waits until `n` more results of "api" with `ok` are stored than there were at the call.
async fn wait_stored_results(app: &Opswatch, ok: bool, n: usize) {
    let stored = |app: &Opswatch| {
        let url = app.url("/api/v1/checks/api/results?since=1h&limit=1000");
        async move {
            let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            Some(
                body["results"]
                    .as_array()?
                    .iter()
                    .filter(|r| r["ok"].as_bool() == Some(ok))
                    .count(),
            )
        }
    };
    let before = stored(app).await.unwrap_or(0);
    let got = eventually(WAIT, || async {
        stored(app).await.filter(|&c| c >= before + n).map(|_| ())
    })
    .await;
    assert!(
        got.is_some(),
        "fewer than {n} new results with ok={ok} were stored; log:\n{}",
        app.log()
    );
}

/// Waits until `n` messages containing `needle` were accepted.
async fn wait_accepted(fake: &FakeTelegram, app: &Opswatch, needle: &str, n: usize) {
    let got = eventually(WAIT, || async { (count(fake, needle) >= n).then_some(()) }).await;
    assert!(
        got.is_some(),
        "never got {n} x {needle:?}; delivered: {:#?}\nlog:\n{}",
        fake.delivered_texts(),
        app.log()
    );
}

/// Another connection can take the write lock: the writer left no transaction open.
async fn another_writer_gets_the_lock(disk: &Path) {
    use sqlx::ConnectOptions as _;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(disk.join("opswatch.db"))
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("second connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("BEGIN IMMEDIATE from another connection");
    sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
}

/// While the store is full, the chat got no more than one message of each kind, and
/// `/health` says why it is unavailable.
async fn while_full(app: &Opswatch, fake: &FakeTelegram) {
    let body = wait_health(app, 503).await;
    let reasons = body["reasons"].to_string();
    assert!(
        reasons.contains("full"),
        "/health gives the reason: {reasons}"
    );
    // Let the check try (and fail) to record its result for a while.
    let tries = eventually(WAIT, || async {
        (app.log().matches("disk is full").count() >= 4).then_some(())
    })
    .await;
    assert!(tries.is_some(), "no failed write seen; log:\n{}", app.log());
    assert!(count(fake, "is DOWN") <= 1 && count(fake, "is UP again") <= 1);
    let (status, _) = health(app).await;
    assert_eq!(status, 503, "still unavailable while writes fail");
}

/// The end of every scenario: one DOWN, one RESOLVED, nothing more after a while.
async fn exactly_one_down_and_one_resolved(app: &Opswatch, fake: &FakeTelegram, disk: &Path) {
    wait_accepted(fake, app, "is UP again", 1).await;
    wait_stored_results(app, true, 3).await;
    wait_health(app, 200).await;
    another_writer_gets_the_lock(disk).await;
    assert_eq!(
        (count(fake, "is DOWN"), count(fake, "is UP again")),
        (1, 1),
        "delivered: {:#?}\nlog:\n{}",
        fake.delivered_texts(),
        app.log()
    );
    let alerts: Value = reqwest::get(app.url("/api/v1/alerts?since=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let logged = alerts.to_string();
    assert_eq!(
        (
            logged.matches("is DOWN").count(),
            logged.matches("is UP again").count()
        ),
        (1, 1),
        "the alert log has the incident once: {logged}"
    );
}

/// Runs `opswatch serve` for at most `up_for` while the disk is full: it either refuses to
/// start (exit 1, saying why) or runs without a store that takes writes; then it is stopped.
fn start_while_full(dir: &Path, args: &[String], up_for: Duration) {
    use std::io::Read as _;
    let mut child = Command::new(crate::support::BIN)
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("OPSWATCH_CONFIG")
        .env("OPSWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("opswatch starts");
    let deadline = Instant::now() + up_for;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert_eq!(status.code(), Some(1), "{err}");
            assert!(err.contains("disk is full"), "says why: {err}");
            return;
        }
        if Instant::now() >= deadline {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn down_while_the_disk_is_full_is_sent_once_space_is_back() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let fake = FakeTelegram::start().await;
    write_config(dir.path(), &config(&disk.path, &target, &fake));
    let cfg = dir.path().join("opswatch.toml");
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    wait_stored_results(&app, true, 2).await;

    disk.fill();
    target.set_status(500);
    while_full(&app, &fake).await;

    disk.free();
    wait_accepted(&fake, &app, "is DOWN", 1).await;
    target.set_status(200);
    exactly_one_down_and_one_resolved(&app, &fake, &disk.path).await;
}

#[tokio::test]
async fn restarts_while_the_disk_is_full_send_the_down_once() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let fake = FakeTelegram::start().await;
    write_config(dir.path(), &config(&disk.path, &target, &fake));
    let cfg = dir.path().join("opswatch.toml");
    let args = ["--config", cfg.to_str().unwrap()];
    let mut app = Opswatch::start(dir.path(), &args);
    wait_stored_results(&app, true, 2).await;

    disk.fill();
    target.set_status(500);
    while_full(&app, &fake).await;
    app.terminate(Duration::from_secs(20));
    // As systemd would: started again every few seconds while the disk is full.
    for _ in 0..3 {
        let dir = dir.path().to_owned();
        let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
        tokio::task::spawn_blocking(move || start_while_full(&dir, &args, Duration::from_secs(5)))
            .await
            .unwrap();
    }
    assert_eq!(count(&fake, "is DOWN"), 0, "no DOWN could be recorded");

    disk.free();
    let app = Opswatch::start(dir.path(), &args);
    wait_accepted(&fake, &app, "is DOWN", 1).await;
    target.set_status(200);
    exactly_one_down_and_one_resolved(&app, &fake, &disk.path).await;
}

#[tokio::test]
async fn recovery_while_the_disk_is_full_is_resolved_once() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let fake = FakeTelegram::start().await;
    write_config(dir.path(), &config(&disk.path, &target, &fake));
    let cfg = dir.path().join("opswatch.toml");
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    wait_stored_results(&app, true, 2).await;

    target.set_status(500);
    wait_accepted(&fake, &app, "is DOWN", 1).await;
    disk.fill();
    target.set_status(200);
    while_full(&app, &fake).await;

    disk.free();
    exactly_one_down_and_one_resolved(&app, &fake, &disk.path).await;
}
