//! HTTPS checks against a real TLS server (`openssl s_server`) with a self-signed certificate:
//! verification is on by default, `insecure = true` accepts it, and the certificate's expiry is
//! stored with every result.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::app::spawn_app;
use crate::support::{eventually, sqlite_url};
use opswatch::daemon::clock::Clock;
use serde_json::Value;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn self_signed_fails_verification_passes_with_insecure_and_reports_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let made = openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
        ],
    );
    if !made {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is missing in CI"
        );
        eprintln!("notice: openssl not available; skipping");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Server(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &port.to_string(),
                "-cert",
                "c.pem",
                "-key",
                "k.pem",
                "-www",
                "-quiet",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts"),
    );
    let ready = eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    assert!(ready.is_some(), "s_server did not listen");

    let url = format!("https://localhost:{port}/");
    let app = spawn_app(
        dir.path(),
        &format!(
            r#"[storage]
url = "{store}"
[pm2]
enabled = false
[system]
enabled = false
[[http]]
name = "strict"
url = "{url}"
every = "1s"
[[http]]
name = "lenient"
url = "{url}"
every = "1s"
insecure = true
"#,
            store = sqlite_url(dir.path())
        ),
        Clock::System,
    )
    .await;
    let latest = |name: &'static str| {
        let url = app.url(&format!("/api/v1/checks/{name}/results?limit=1"));
        async move {
            let body: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
            body["results"].as_array()?.first().cloned()
        }
    };
    let strict = eventually(Duration::from_secs(20), || latest("strict"))
        .await
        .expect("no strict result");
    assert_eq!(strict["ok"], false, "{strict}");
    assert_eq!(strict["error_kind"], "tls", "{strict}");

    let lenient = eventually(Duration::from_secs(20), || latest("lenient"))
        .await
        .expect("no lenient result");
    assert_eq!(lenient["ok"], true, "{lenient}");
    let expires = lenient["cert_expires_ms"]
        .as_i64()
        .expect("certificate expiry stored");
    let in_30_days = chrono::Utc::now().timestamp_millis() + 30 * 86_400_000;
    assert!(
        (expires - in_30_days).abs() < 3_600_000,
        "expiry {expires} vs about {in_30_days}"
    );
}
