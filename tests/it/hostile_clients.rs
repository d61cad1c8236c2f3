//! Clients that open connections, send half a request and wait (issue 18): the server times
//! them out, never runs the checks out of descriptors, and a check that does run out is an
//! error of opswatch, not a DOWN of its target.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::target::Target;
use crate::support::{BIN, eventually, telegram_config, write_config};

/// `opswatch serve` started by a shell with `ulimit_args` (as systemd's `LimitNOFILE` would),
/// killed when dropped.
struct Limited {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Limited {
    fn start(dir: &Path, ulimit_args: &str) -> Self {
        let cfg = dir.join("opswatch.toml");
        let script = format!(
            "ulimit {ulimit_args} && exec {BIN} --config {} --log-format json serve --listen 127.0.0.1:0",
            cfg.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .current_dir(dir)
            .env_remove("OPSWATCH_CONFIG")
            .env("OPSWATCH_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "opswatch is listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("did not start; log:\n{}", log.lock().unwrap()))
            .parse()
            .unwrap();
        Self { child, addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Opens `n` connections to `addr` that each send half a request head and then wait.
fn hold_partial_requests(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect()
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(dir: &Path, target: &Target, fake: &FakeTelegram) {
    let store = crate::support::sqlite_url(dir);
    write_config(
        dir,
        &format!(
            "{}[system]\nenabled = false\n[pm2]\nenabled = false\n\
             [[http]]\nname = \"api\"\nurl = \"{}\"\nevery = \"1s\"\ntimeout = \"1s\"\nfailures = 1\n",
            telegram_config(&store, fake),
            target.url()
        ),
    );
}

/// Results stored for "api": (ok, error).
async fn results(app: &Limited) -> Vec<(bool, String)> {
    let url = app.url("/api/v1/checks/api/results?since=1h&limit=1000");
    let Ok(res) = reqwest::get(url).await else {
        return Vec::new();
    };
    let body: Value = res.json().await.unwrap_or_default();
    body["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["ok"].as_bool().unwrap_or(false),
                        r["error"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error response before closing is fine
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn half_requests_beyond_the_default_descriptor_limit_are_timed_out_and_harm_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let fake = FakeTelegram::start().await;
    config(dir.path(), &target, &fake);
    // systemd's default: a soft limit of 1,024 under a higher hard limit.
    let app = Limited::start(dir.path(), "-Sn 1024");
    let ready = eventually(Duration::from_secs(20), || async {
        (results(&app).await.len() >= 2).then_some(())
    })
    .await;
    assert!(ready.is_some(), "no results; log:\n{}", app.log());

    let addr = app.addr;
    let mut held = tokio::task::spawn_blocking(move || hold_partial_requests(addr, 1_100))
        .await
        .unwrap();
    assert!(
        held.len() >= 1_000,
        "only {} connections opened",
        held.len()
    );

    // /health keeps answering, and the check keeps working, while they are held.
    let before = results(&app).await.len();
    for _ in 0..5 {
        let res = reqwest::get(app.url("/health"))
            .await
            .expect("/health answers");
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let more = eventually(Duration::from_secs(20), || async {
        (results(&app).await.len() >= before + 2).then_some(())
    })
    .await;
    assert!(more.is_some(), "the check stalled; log:\n{}", app.log());
    assert!(
        results(&app).await.iter().all(|(ok, _)| *ok),
        "{:?}",
        results(&app).await
    );
    assert!(
        fake.delivered_texts().is_empty(),
        "{:?}",
        fake.delivered_texts()
    );

    // The server hangs up on every one of them (header-read timeout, 10 s).
    let all_closed = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(40);
        held.iter_mut().all(|s| {
            let left = deadline.saturating_duration_since(Instant::now());
            closed_by_server(s, left.max(Duration::from_millis(1)))
        })
    })
    .await
    .unwrap();
    assert!(
        all_closed,
        "half-open connections were not closed; log:\n{}",
        app.log()
    );
}

#[tokio::test]
async fn a_check_that_runs_out_of_descriptors_is_an_error_of_opswatch_not_a_down() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let fake = FakeTelegram::start().await;
    config(dir.path(), &target, &fake);
    // A limit so low that held connections leave no descriptor for the probe.
    let app = Limited::start(dir.path(), "-n 40");
    let ready = eventually(Duration::from_secs(20), || async {
        (results(&app).await.len() >= 2).then_some(())
    })
    .await;
    assert!(ready.is_some(), "no results; log:\n{}", app.log());

    let addr = app.addr;
    let held = tokio::task::spawn_blocking(move || hold_partial_requests(addr, 60))
        .await
        .unwrap();
    let exhausted = eventually(Duration::from_secs(20), || async {
        app.log()
            .contains("out of descriptors or memory")
            .then_some(())
    })
    .await;
    assert!(
        exhausted.is_some(),
        "no probe ran out of descriptors; log:\n{}",
        app.log()
    );
    // Let a few more probes hit the limit, then give the descriptors back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);

    let body = eventually(Duration::from_secs(30), || async {
        let res = reqwest::get(app.url("/health")).await.ok()?;
        (res.status().as_u16() == 503).then_some(())?;
        res.json::<Value>().await.ok()
    })
    .await
    .unwrap_or_else(|| panic!("/health never said 503; log:\n{}", app.log()));
    assert!(
        body["reasons"].to_string().contains("descriptors"),
        "{body}"
    );
    let stored = results(&app).await;
    assert!(
        stored.iter().all(|(ok, _)| *ok),
        "a local failure was stored as the target's: {stored:?}"
    );
    // Time for a DOWN to have gone out, had one been raised.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        fake.delivered_texts().is_empty(),
        "alerted: {:?}",
        fake.delivered_texts()
    );
    let alerts: Value = reqwest::get(app.url("/api/v1/alerts?since=1h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!alerts.to_string().contains("is DOWN"), "{alerts}");
}
