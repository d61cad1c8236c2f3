//! The dispatcher in process on a clock the test moves: Telegram's 429 is waited out exactly,
//! a 500 or a dropped connection is retried after its backoff, and a retried alert is
//! delivered once.

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

/// Telegram answers 500, then drops the connection, then works: the alert waits out both
/// backoffs on opswatch's clock and is delivered once, on each store backend.
#[tokio::test]
async fn telegram_down_for_a_while_delivers_once_afterwards() {
    let base = tempfile::tempdir().unwrap();
    for (store_url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        fake.push(Reply::ServerError);
        fake.push(Reply::Close);
        let config = format!(
            "{}[pm2]\nenabled = false\n[system]\nenabled = false\n",
            telegram_config(&store_url, &fake)
        );
        let app = spawn_app(dir.path(), &config, Clock::manual(T0)).await;
        let channels = app.app.channels.clone();
        app.app
            .store
            .record_alert(&alert("api"), &channels, T0)
            .await
            .unwrap();

        // Each failed attempt is recorded with its error and a later due time; until the clock
        // reaches it, nothing is tried again.
        // The backoffs are 5 s and 15 s with ±20 % jitter.
        // The claim counts the attempt before the send, so an attempt is recorded only once
        // its own error replaces the previous one.
        let mut previous_error = serde_json::Value::Null;
        for (attempt, backoff_min, backoff_max) in [(1, 4_000, 6_000), (2, 12_000, 18_000)] {
            app.app.wake_dispatcher();
            fake.wait_requests(attempt, Duration::from_secs(20)).await;
            let pending = crate::support::eventually(Duration::from_secs(20), || async {
                let log = app.get_json("/api/v1/alerts?since=0").await;
                let d = log["alerts"].as_array()?.first()?["deliveries"][0].clone();
                (d["attempts"] == attempt
                    && d["last_error"].is_string()
                    && d["last_error"] != previous_error)
                    .then_some(d)
            })
            .await
            .expect("the failed attempt was not recorded");
            assert_eq!(pending["state"], "pending", "{pending}");
            previous_error = pending["last_error"].clone();
            // Due one backoff after the attempt, on opswatch's clock (which stood still).
            let now = app.app.clock.now_ms();
            let due = pending["next_attempt_ms"].as_i64().unwrap();
            assert!(
                (now + backoff_min..=now + backoff_max).contains(&due),
                "attempt {attempt}: due {} ms after it: {pending}",
                due - now
            );
            app.app.wake_dispatcher();
            tokio::task::yield_now().await;
            assert_eq!(fake.requests().len(), attempt, "retried before its time");
            app.app.clock.advance(Duration::from_millis(
                u64::try_from(backoff_max + 100).unwrap(),
            ));
        }
        app.dispatch_all_pending().await;
        assert_eq!(fake.requests().len(), 3, "{:#?}", fake.requests());
        let delivered = fake.delivered_texts();
        assert_eq!(delivered.len(), 1, "{delivered:#?}");
        assert!(delivered[0].contains("api is DOWN"), "{}", delivered[0]);
        app.app.clock.advance(Duration::from_secs(3_600));
        app.dispatch_all_pending().await;
        assert_eq!(fake.delivered().len(), 1, "delivered more than once");
        app.stop().await;
    }
}
