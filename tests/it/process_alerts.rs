//! PM2 apps as an operator runs them (a real PM2 daemon), watched by opswatch in process: a stable app, a
//! crash-looping app and a stopped app give exactly the right alerts, and restart warnings
//! arrive in the digest rather than one by one.

use std::time::Duration;

use crate::support::app::spawn_app;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::pm2::{KillDaemon, pm2, pm2_available};
use crate::support::{sqlite_url, telegram_config, write};
use opswatch::daemon::clock::Clock;
use serde_json::Value;

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
        let script = apps.join(format!("{name}.js"));
        let mut args = vec!["start", script.to_str().unwrap(), "--name", name];
        // PM2 gives up on an app after 15 quick restarts; on a loaded machine it can do all
        // of them before opswatch's first look, which then sees no growth. Let it go on.
        if name == "crasher" {
            args.extend(["--max-restarts", "100000"]);
        }
        pm2(&home, &args);
    }
    pm2(&home, &["stop", "idle"]);

    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{head}[pm2]
home = "{home}"
every = "1s"
[system]
enabled = false
[digest]
schedule = "*/15 * * * * *"
"#,
        head = telegram_config(&sqlite_url(dir.path()), &fake),
        home = home.display(),
    );
    // The system clock: the crash loop really happens in time.
    let app = spawn_app(dir.path(), &config, Clock::System).await;

    // Crash loop: > 5 restarts within 5 min; stopped app: critical at once; both exactly once.
    app.wait_for_texts(&fake, Duration::from_secs(90), |t| {
        t.iter().any(|m| m.contains("crasher is crash-looping"))
            && t.iter().any(|m| m.contains("idle is stopped"))
            && t.iter().any(|m| m.contains("crasher restarted"))
    })
    .await;
    let got = fake.delivered_texts();
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

    let processes = app.get_json("/api/v1/processes").await;
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
    app.stop().await;
}
