//! The scheduled restart ([restart]) run by the scheduler of an in-process opswatch on a
//! manual clock, against a real PM2 daemon: the "restarted" warnings of the apps it restarted
//! itself are recorded in the alert log as silenced and never reach the digest, while a
//! restart by someone else in the same hour is warned about as usual.

use std::time::Duration;

use crate::support::app::spawn_app;
use crate::support::eventually;
use crate::support::pm2::{KillDaemon, pm2, pm2_available};
use crate::support::{sqlite_url, write};
use opswatch::daemon::clock::Clock;
use opswatch::rules::alert::Severity;

#[tokio::test(flavor = "multi_thread")]
async fn the_digest_after_a_planned_restart_has_no_restarted_line_for_the_apps_it_restarted() {
    if !pm2_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("pm2-home");
    std::fs::create_dir(&home).unwrap();
    let _kill = KillDaemon(home.clone());
    for name in ["web", "other"] {
        let script = write(
            tmp.path(),
            &format!("{name}.js"),
            "setInterval(() => {}, 1000);\n",
        );
        pm2(&home, &["start", script.to_str().unwrap(), "--name", name]);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[storage]
url = "{store}"
[pm2]
enabled = true
home = "{home}"
every = "1s"
[system]
enabled = false
[restart]
enabled = true
schedule = "0 * * * * *"
pm2 = ["web"]
verify_after = "1s"
"#,
        store = sqlite_url(dir.path()),
        home = home.display(),
    );
    // Just behind the wall clock (the PM2 event listener dates what it judges by the wall
    // clock: the poller's samples must not be in its future), 30 s before a whole minute:
    // the restart fires when the test moves the clock past that minute.
    let wall = opswatch::store::now_ms();
    let t0 = wall - wall % 60_000 - 30_000;
    let clock = Clock::manual(t0);
    let app = spawn_app(dir.path(), &config, clock.clone()).await;

    // The poller has stored both apps' restart counters (0) before anything restarts.
    let polled = eventually(Duration::from_secs(30), || async {
        let p = app.get_json("/api/v1/processes").await;
        let items = p["pm2"]["reading"]["items"].as_array()?.clone();
        (items.len() == 2).then_some(())
    })
    .await;
    assert!(polled.is_some(), "the poller never saw both apps");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    clock.advance(Duration::from_secs(31));
    let restarted = eventually(Duration::from_secs(60), || async {
        let j = app.get_json("/api/v1/jobs").await;
        let job = j["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == "restart")?
            .clone();
        (job["last_outcome"] == "ok").then_some(job)
    })
    .await
    .expect("the scheduled restart ran and succeeded");
    assert_eq!(restarted["schedule"], "0 * * * * *");

    // Someone else restarts another app in the same hour: that one is warned about.
    clock.advance(Duration::from_secs(5));
    pm2(&home, &["restart", "other"]);
    let other_seen = eventually(Duration::from_secs(30), || async {
        let items = app.app.store.pending_digest_items().await.ok()?;
        items
            .iter()
            .any(|i| i.title == "pm2 other restarted")
            .then_some(())
    })
    .await;
    assert!(
        other_seen.is_some(),
        "a restart by someone else is a warning as usual"
    );
    // A few more polls, each of which judges both apps again.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let digest_id = opswatch::rules::digest::send(&app.app)
        .await
        .unwrap()
        .expect("a digest with the other app's warning");
    let alerts = app.app.store.list_alerts(0, i64::MAX, 200).await.unwrap();
    let digest = alerts
        .iter()
        .find(|a| a.alert.id == digest_id)
        .expect("the digest is in the alert log");
    let body = digest.alert.body.clone().unwrap_or_default();
    assert!(body.contains("pm2 other restarted"), "{body}");
    assert!(
        !body.contains("pm2 web restarted"),
        "the planned restart's own restart reached the digest: {body}"
    );

    let web_warnings: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.title == "pm2 web restarted")
        .collect();
    assert_eq!(
        web_warnings.len(),
        1,
        "recorded once, not at every poll: {web_warnings:#?}"
    );
    assert_eq!(web_warnings[0].alert.severity, Severity::Warning);
    assert!(web_warnings[0].silenced, "{:#?}", web_warnings[0]);
    assert!(
        web_warnings[0].deliveries.is_empty(),
        "a silenced warning is not delivered"
    );
    assert!(
        alerts
            .iter()
            .all(|a| a.alert.title != "pm2 other restarted"),
        "the other app's warning goes to the digest, not the log as silenced"
    );
    app.stop().await;
}
