//! Reminders and flap damping of up/down checks on a clock the test moves: the check job runs
//! for real (a real HTTP target on loopback, the real store and dispatcher, the fake Telegram),
//! only "now" is the test's. Nothing here waits for minutes or hours to pass.

use std::path::Path;
use std::time::Duration;

use opswatch::daemon::clock::Clock;
use serde_json::Value;

use crate::support::app::{TestApp, spawn_app};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::target::Target;
use crate::support::{eventually, sqlite_url, telegram_config};

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const MINUTE: Duration = Duration::from_secs(60);

/// opswatch in process with check "api" of `target` probed every (real) second, DOWN after one
/// failure, plus `extra` in the check's block.
async fn start(dir: &Path, fake: &FakeTelegram, target: &Target, extra: &str) -> TestApp {
    let config = format!(
        r#"{head}[pm2]
enabled = false
[[http]]
name = "api"
url = "{url}"
every = "1s"
failures = 1
{extra}
"#,
        head = telegram_config(&sqlite_url(dir), fake),
        url = target.url(),
    );
    spawn_app(dir, &config, Clock::manual(FRIDAY)).await
}

/// Waits until the check has a result stamped at the clock's current time and `ok`: the job
/// really ran at that moment (the results API's default window follows the app's clock).
async fn probed_now(app: &TestApp, ok: bool) {
    let now = app.app.clock.now_ms();
    let found = eventually(Duration::from_secs(20), || async {
        let body = app.get_json("/api/v1/checks/api/results").await;
        body["results"]
            .as_array()?
            .iter()
            .any(|r| r["at_ms"] == now && r["ok"] == ok)
            .then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "no {} result at {now}: {:#}",
        if ok { "good" } else { "failed" },
        app.get_json("/api/v1/checks/api/results").await
    );
}

/// The alert log's titles about "api", oldest first.
async fn titles(app: &TestApp) -> Vec<String> {
    let body = app.get_json("/api/v1/alerts?limit=1000").await;
    let mut titles: Vec<String> = body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a: &Value| a["title"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with("api "))
        .collect();
    titles.reverse();
    titles
}

/// What the fake Telegram got about "api", first line of each message (the title), once
/// everything pending was really tried. (Alerts about this machine, such as a nearly full
/// disk under the test's data dir, are not this test's business.)
async fn sent(app: &TestApp, fake: &FakeTelegram) -> Vec<String> {
    app.dispatch_all_pending().await;
    fake.delivered_texts()
        .iter()
        .map(|t| t.lines().next().unwrap_or_default().to_owned())
        .filter(|t| t.contains(" api is "))
        .collect()
}

#[tokio::test]
async fn a_check_still_down_is_reminded_once_per_interval_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    target.set_status(503);
    let app = start(dir.path(), &fake, &target, "remind_every = \"10m\"").await;
    let clock = app.app.clock.clone();

    probed_now(&app, false).await;
    // 9 minutes later: probed again, still no reminder.
    clock.advance(9 * MINUTE);
    probed_now(&app, false).await;
    assert_eq!(titles(&app).await, ["api is DOWN"]);
    // At 10 minutes the first reminder, with how long it has been down.
    clock.advance(MINUTE);
    probed_now(&app, false).await;
    let got = titles(&app).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[1].starts_with("api is still DOWN (for 10m"), "{got:#?}");
    // The next one counts from the reminder, not from the DOWN: none at 15, one at 20.
    clock.advance(5 * MINUTE);
    probed_now(&app, false).await;
    assert_eq!(titles(&app).await.len(), 2);
    clock.advance(5 * MINUTE);
    probed_now(&app, false).await;
    let got = titles(&app).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[2].starts_with("api is still DOWN (for 20m"), "{got:#?}");

    let texts = sent(&app, &fake).await;
    assert_eq!(texts.len(), 3, "{texts:#?}");
    assert!(texts[0].contains("api is DOWN"), "{texts:#?}");
    assert!(texts[1].contains("still DOWN"), "{texts:#?}");
    assert!(texts[2].contains("still DOWN"), "{texts:#?}");
    app.stop().await;
}

/// A minute later the target answers `ok`, and the check has seen it.
async fn flip(app: &TestApp, target: &Target, ok: bool) {
    app.app.clock.advance(MINUTE);
    target.set_status(if ok { 200 } else { 503 });
    probed_now(app, ok).await;
}

#[tokio::test]
async fn a_flapping_check_is_paused_after_the_threshold_and_alerts_again_after_a_quiet_window() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    // The defaults: more than 3 DOWNs within 1h pause the check's alerts.
    let app = start(dir.path(), &fake, &target, "").await;
    let clock = app.app.clock.clone();
    probed_now(&app, true).await;

    // Three DOWN/UP cycles within minutes: all alerted.
    for _ in 0..3 {
        flip(&app, &target, false).await;
        flip(&app, &target, true).await;
    }
    // The fourth DOWN within the hour: one notice, then its RESOLVED and a fifth DOWN held.
    flip(&app, &target, false).await;
    flip(&app, &target, true).await;
    flip(&app, &target, false).await;
    flip(&app, &target, true).await;
    let held = titles(&app).await;
    assert!(
        held.iter().any(|t| t == "api is flapping: alerts paused"),
        "{held:#?}"
    );
    assert!(
        held.iter().any(|t| t == "api is DOWN (held: flapping)"),
        "{held:#?}"
    );
    // A quiet hour later the next DOWN alerts normally again.
    clock.advance(2 * 60 * MINUTE);
    target.set_status(503);
    probed_now(&app, false).await;

    let texts = sent(&app, &fake).await;
    let down = texts.iter().filter(|t| t.contains("api is DOWN")).count();
    let up = texts.iter().filter(|t| t.contains("UP again")).count();
    let notice = texts.iter().filter(|t| t.contains("flapping")).count();
    assert_eq!(
        (down, up, notice),
        (4, 3, 1),
        "3 DOWN/UP cycles, one flapping notice, then the DOWN after the quiet hour: {texts:#?}"
    );
    assert!(texts.last().unwrap().contains("api is DOWN"), "{texts:#?}");
    assert!(texts[6].contains("flapping"), "{texts:#?}");
    app.stop().await;
}
