//! PM2 apps as an operator runs them, watched by the real binary: a stable app, a
//! crash-looping app and a stopped app give exactly the right alerts, and restart warnings
//! arrive in the digest rather than one by one.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::fake_telegram::FakeTelegram;
use support::{Opswatch, write};

struct KillDaemon(PathBuf);

impl Drop for KillDaemon {
    fn drop(&mut self) {
        if self.0.join("pm2.pid").exists() || self.0.join("rpc.sock").exists() {
            let _ = Command::new("pm2")
                .arg("kill")
                .env("PM2_HOME", &self.0)
                .output();
        }
    }
}

fn pm2(home: &Path, args: &[&str]) {
    let out = Command::new("pm2")
        .args(args)
        .env("PM2_HOME", home)
        .stdin(Stdio::null())
        .output()
        .expect("pm2 runs");
    assert!(
        out.status.success(),
        "pm2 {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pm2_available() -> bool {
    if opswatch::checks::pm2::pm2_on_path() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "pm2 is not on PATH in CI"
    );
    eprintln!("notice: pm2 is not on PATH; skipping (npm install -g pm2)");
    false
}

fn texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stable_crashing_and_stopped_apps_get_the_right_alerts_and_nothing_else() {
    if !pm2_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("pm2-home");
    std::fs::create_dir(&home).unwrap();
    let _kill = KillDaemon(home.clone());
    let apps = tmp.path().join("apps");
    std::fs::create_dir(&apps).unwrap();
    write(&apps, "stable.js", "setInterval(() => {}, 1000);\n");
    write(
        &apps,
        "crasher.js",
        "setTimeout(() => process.exit(1), 300);\n",
    );
    write(&apps, "idle.js", "setInterval(() => {}, 1000);\n");
    for name in ["stable", "crasher", "idle"] {
        pm2(
            &home,
            &[
                "start",
                apps.join(format!("{name}.js")).to_str().unwrap(),
                "--name",
                name,
            ],
        );
    }
    pm2(&home, &["stop", "idle"]);

    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "opswatch.toml",
        &format!(
            r#"[storage]
url = "sqlite://{dir}/data/o.db"
[telegram]
bot_token = "1:x"
chat_id = "77"
api_base = "{api}"
[pm2]
home = "{home}"
every = "1s"
[system]
enabled = false
[digest]
schedule = "*/15 * * * * *"
"#,
            dir = dir.path().display(),
            api = fake.api_base(),
            home = home.display(),
        ),
    );
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);

    // Crash loop: > 5 restarts within 5 min; stopped app: critical at once; both exactly once.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let wanted = |t: &[String]| {
        t.iter().any(|m| m.contains("crasher is crash-looping"))
            && t.iter().any(|m| m.contains("idle is stopped"))
            && t.iter().any(|m| m.contains("crasher restarted"))
    };
    loop {
        let got = texts(&fake.delivered());
        if wanted(&got) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alerts so far: {got:#?}\nlog:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = texts(&fake.delivered());
    assert_eq!(
        got.iter()
            .filter(|m| m.contains("crasher is crash-looping"))
            .count(),
        1,
        "{got:#?}"
    );
    assert_eq!(
        got.iter().filter(|m| m.contains("idle is stopped")).count(),
        1,
        "{got:#?}"
    );
    assert!(
        got.iter().all(|m| !m.contains("stable")),
        "the stable app alerted: {got:#?}"
    );
    for m in &got {
        let critical = m.contains("CRITICAL");
        let digest = m.contains("WARNING") && m.contains("warning");
        // The crasher flips between down and restarting; a RESOLVED for it is fair.
        let crasher_back = m.contains("RESOLVED") && m.contains("crasher");
        assert!(
            critical || digest || crasher_back,
            "a message that is neither CRITICAL nor the digest: {m}"
        );
    }
    // Restart warnings come only inside the digest, one line with a count.
    let digest = got
        .iter()
        .find(|m| m.contains("crasher restarted"))
        .unwrap();
    assert!(digest.contains("seen"), "{digest}");
    assert!(
        !got.iter()
            .any(|m| m.starts_with("🟡") && !m.contains("since")),
        "{got:#?}"
    );

    let processes: Value = reqwest::get(app.url("/api/v1/processes"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = processes["pm2"]["reading"]["items"].as_array().unwrap();
    let status = |name: &str| {
        list.iter()
            .find(|a| a["name"] == name)
            .map(|a| a["status"].clone())
    };
    assert_eq!(status("stable"), Some(Value::from("online")));
    assert_eq!(status("idle"), Some(Value::from("stopped")));
    assert!(
        list.iter()
            .all(|a| a.get("pm2_env").is_none() && a.get("env").is_none()),
        "environment leaked"
    );
}
