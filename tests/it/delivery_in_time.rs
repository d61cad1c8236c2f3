//! The dispatcher in process on a clock the test moves: Telegram's 429 is waited out exactly,
//! and a retried alert is delivered once.

use std::time::Duration;

use opswatch::daemon::clock::Clock;
use opswatch::rules::alert::Severity;
use opswatch::store::NewAlert;

use crate::support::app::spawn_app;
use crate::support::fake_telegram::{FakeTelegram, Reply};
use crate::support::{sqlite_url, telegram_config};

const T0: i64 = 1_795_737_600_000;

fn alert(key: &str) -> NewAlert {
    NewAlert {
        dedup_key: key.to_owned(),
        severity: Severity::Critical,
        source: "api".to_owned(),
        kind: "http".to_owned(),
        title: format!("{key} is DOWN"),
        value: None,
        threshold: None,
        hint: None,
        body: None,
        silenced: false,
    }
}

#[tokio::test]
async fn a_429_is_retried_exactly_after_retry_after_and_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    fake.push(Reply::TooManyRequests { retry_after: 30 });
    let config = format!(
        "{}[pm2]\nenabled = false\n[system]\nenabled = false\n",
        telegram_config(&sqlite_url(dir.path()), &fake)
    );
    let app = spawn_app(dir.path(), &config, Clock::manual(T0)).await;
    let channels = app.app.channels.clone();
    app.app
        .store
        .record_alert(&alert("api"), &channels, T0)
        .await
        .unwrap();
    app.app.wake_dispatcher();
    fake.wait_requests(1, Duration::from_secs(20)).await;

    // The 429 put the delivery back in the queue, due exactly retry_after (+ a 100 ms margin)
    // after the attempt, on opswatch's clock.
    let log = crate::support::eventually(Duration::from_secs(20), || async {
        let log = app.get_json("/api/v1/alerts?since=0").await;
        let ours = log["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["title"] == "api is DOWN")?
            .clone();
        let d = ours["deliveries"][0].clone();
        // The claim counts the attempt before the send; the 429 is recorded only once
        // `last_error` is set, so wait for that rather than for the count.
        (d["attempts"] == 1 && d["state"] == "pending" && d["last_error"].is_string()).then_some(d)
    })
    .await
    .expect("the 429 was not recorded");
    assert_eq!(log["next_attempt_ms"], T0 + 30_100, "{log}");

    // Once the clock reaches that time it goes out, once.
    app.app.clock.advance(Duration::from_millis(30_100));
    app.dispatch_all_pending().await;
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        2,
        "one 429, then one delivery: {requests:#?}"
    );
    assert_eq!(fake.delivered().len(), 1);
    app.stop().await;
}
