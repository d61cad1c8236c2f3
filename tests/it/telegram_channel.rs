//! The real `TelegramChannel` against the fake Bot API.

use std::time::{Duration, Instant};

use opswatch::config::{Secret, TelegramConfig};
use opswatch::notify::telegram::{Receipt, SendError, TelegramChannel, render_html, render_plain};
use opswatch::rules::alert::{Alert, Severity};
use serde_json::{Value, json};

use crate::support::fake_telegram::{BOT_USERNAME, FakeTelegram, Reply};

const TOKEN: &str = "7000000001:AAH-test-SECRET_token_q9";
const CHAT: &str = "-1001234567890";
/// Short so the Hang test is quick; production uses 15 s.
const TIMEOUT: Duration = Duration::from_secs(1);

fn cfg(fake: &FakeTelegram) -> TelegramConfig {
    TelegramConfig {
        bot_token: Secret::new(TOKEN),
        chat_id: CHAT.to_owned(),
        api_base: fake.api_base(),
        message_thread_id: None,
        disable_notification: false,
        silent_resolved: true,
    }
}

fn channel(cfg: &TelegramConfig) -> TelegramChannel {
    TelegramChannel::new(cfg, TIMEOUT).expect("channel builds")
}

fn alert() -> Alert {
    Alert {
        id: 1,
        severity: Severity::Critical,
        source: "api".to_owned(),
        kind: "http".to_owned(),
        title: "api is DOWN".to_owned(),
        value: Some("HTTP 503 after 2 failures".to_owned()),
        threshold: Some("2 consecutive failures".to_owned()),
        hint: Some("check the upstream".to_owned()),
        body: None,
        created_ms: 1_795_442_730_000,
    }
}

/// Every send must finish on its own (a loop or a missing timeout fails instead of hanging).
async fn bounded<T>(send: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), send)
        .await
        .expect("send finished within 10 s")
}

fn text(body: &Value) -> &str {
    body["text"].as_str().expect("text is a string")
}

/// The error's Display and Debug never show the token.
fn assert_no_token(e: &SendError) {
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("SECRET"),
        "{shown}"
    );
}

#[tokio::test]
async fn ok_delivers_one_html_message_with_chat_and_sound() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));

    let receipt = bounded(ch.send(&alert())).await.expect("sent");

    assert_eq!(
        receipt,
        Receipt {
            message_id: 1,
            migrated_to: None
        }
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "one alert = one request: {requests:#?}");
    assert_eq!(requests[0].method, "sendMessage");
    assert_eq!(requests[0].token, TOKEN);
    let delivered = fake.wait_delivered(1, Duration::from_secs(1)).await;
    assert_eq!(delivered.len(), 1);
    let body = &delivered[0];
    assert_eq!(body["chat_id"], json!(-1_001_234_567_890_i64));
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_notification"], false);
    assert_eq!(body["link_preview_options"], json!({ "is_disabled": true }));
    assert!(body.get("message_thread_id").is_none(), "{body}");
    assert_eq!(text(body), render_html(&alert()));
    assert!(text(body).starts_with("🔴 <b>CRITICAL</b> · api is DOWN"));

    // The next message gets the next id from the fake.
    assert_eq!(bounded(ch.send(&alert())).await.unwrap().message_id, 2);
}

#[tokio::test]
async fn thread_id_and_silence_follow_the_config() {
    let fake = FakeTelegram::start().await;
    let resolved = Alert {
        severity: Severity::Resolved,
        ..alert()
    };

    // Topic set; RESOLVED is silent by default, CRITICAL rings.
    let ch = channel(&TelegramConfig {
        message_thread_id: Some(42),
        ..cfg(&fake)
    });
    bounded(ch.send(&alert())).await.unwrap();
    bounded(ch.send(&resolved)).await.unwrap();
    // silent_resolved off: RESOLVED rings too.
    let loud = channel(&TelegramConfig {
        silent_resolved: false,
        ..cfg(&fake)
    });
    bounded(loud.send(&resolved)).await.unwrap();
    // disable_notification: everything silent.
    let quiet = channel(&TelegramConfig {
        disable_notification: true,
        silent_resolved: false,
        ..cfg(&fake)
    });
    bounded(quiet.send(&alert())).await.unwrap();

    let d = fake.wait_delivered(4, Duration::from_secs(1)).await;
    let silent: Vec<&Value> = d.iter().map(|b| &b["disable_notification"]).collect();
    assert_eq!(
        silent,
        [&json!(false), &json!(true), &json!(false), &json!(true)]
    );
    assert_eq!(d[0]["message_thread_id"], 42);
    assert_eq!(d[1]["message_thread_id"], 42);
    assert!(d[2].get("message_thread_id").is_none());
    assert!(text(&d[1]).starts_with("✅ <b>RESOLVED</b>"));
}

#[tokio::test]
async fn too_many_requests_returns_retry_after_and_sends_nothing() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::TooManyRequests { retry_after: 41 });
    let ch = channel(&cfg(&fake));

    let err = bounded(ch.send(&alert())).await.unwrap_err();

    assert_eq!(err, SendError::RetryAfter(Duration::from_secs(41)));
    assert!(err.is_retryable());
    assert_eq!(fake.requests().len(), 1, "no retry inside send");
    assert!(fake.delivered().is_empty());
    assert_no_token(&err);
}

#[tokio::test]
async fn cant_parse_entities_resends_once_as_plain_text() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::ParseEntities);
    let ch = channel(&cfg(&fake));
    let a = Alert {
        title: "worker <app> & co".to_owned(),
        ..alert()
    };

    let receipt = bounded(ch.send(&a))
        .await
        .expect("plain fallback delivered");

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].reply, Reply::ParseEntities);
    assert_eq!(requests[0].body["parse_mode"], "HTML");
    assert_eq!(requests[1].reply, Reply::Ok);
    assert!(
        requests[1].body.get("parse_mode").is_none(),
        "{}",
        requests[1].body
    );
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(text(&delivered[0]), render_plain(&a));
    assert!(text(&delivered[0]).contains("worker <app> & co"));
    assert!(!text(&delivered[0]).contains("<b>"));
    assert_eq!(delivered[0]["chat_id"], json!(-1_001_234_567_890_i64));
    assert_eq!(receipt.message_id, 1);
}

#[tokio::test]
async fn cant_parse_entities_twice_is_rejected_after_exactly_two_requests() {
    let fake = FakeTelegram::start().await;
    fake.push_n(Reply::ParseEntities, 5);
    let ch = channel(&cfg(&fake));

    let err = bounded(ch.send(&alert())).await.unwrap_err();

    assert!(
        matches!(&err, SendError::Rejected(d) if d.contains("can't parse entities")),
        "{err:?}"
    );
    assert_eq!(fake.requests().len(), 2);
    assert!(fake.delivered().is_empty());
}

#[tokio::test]
async fn migrated_group_resends_to_the_new_chat_and_reports_it() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::Migrated {
        to: -1_001_557_912_345,
    });
    let ch = channel(&cfg(&fake));

    let receipt = bounded(ch.send(&alert()))
        .await
        .expect("delivered to the new chat");

    assert_eq!(receipt.migrated_to.as_deref(), Some("-1001557912345"));
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].body["chat_id"], json!(-1_001_234_567_890_i64));
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["chat_id"], json!(-1_001_557_912_345_i64));
    assert_eq!(delivered[0]["parse_mode"], "HTML");
    assert_eq!(ch.chat_id(), "-1001557912345");

    // From now on straight to the new chat, and the migration is reported only once.
    let next = bounded(ch.send(&alert())).await.unwrap();
    assert_eq!(next.migrated_to, None);
    assert_eq!(fake.requests().len(), 3);
    assert_eq!(
        fake.delivered()[1]["chat_id"],
        json!(-1_001_557_912_345_i64)
    );
}

#[tokio::test]
async fn migration_whose_resend_fails_is_reported_on_the_next_success() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::Migrated {
        to: -1_001_557_912_345,
    });
    fake.push(Reply::ServerError);
    let ch = channel(&cfg(&fake));

    assert!(matches!(
        bounded(ch.send(&alert())).await,
        Err(SendError::Transient(_))
    ));
    let receipt = bounded(ch.send(&alert())).await.unwrap();

    assert_eq!(receipt.migrated_to.as_deref(), Some("-1001557912345"));
    assert_eq!(
        fake.delivered()[0]["chat_id"],
        json!(-1_001_557_912_345_i64)
    );
}

#[tokio::test]
async fn set_chat_id_overrides_the_configured_chat() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));
    ch.set_chat_id("-1009999".to_owned());
    assert_eq!(ch.chat_id(), "-1009999");
    bounded(ch.send(&alert())).await.unwrap();
    assert_eq!(fake.delivered()[0]["chat_id"], json!(-1_009_999));

    ch.set_chat_id("@ops_alerts".to_owned());
    bounded(ch.send(&alert())).await.unwrap();
    assert_eq!(fake.delivered()[1]["chat_id"], "@ops_alerts");
}

#[tokio::test]
async fn channel_problems_are_unhealthy_and_not_retried() {
    for (reply, expect) in [
        (Reply::Unauthorized, "bot token rejected"),
        (Reply::Blocked, "Forbidden: bot was blocked by the user"),
        (
            Reply::Kicked,
            "Forbidden: bot was kicked from the group chat",
        ),
        (Reply::ChatNotFound, "Bad Request: chat not found"),
    ] {
        let fake = FakeTelegram::start().await;
        fake.set_default(reply.clone());
        let ch = channel(&cfg(&fake));

        let err = bounded(ch.send(&alert())).await.unwrap_err();

        assert!(
            matches!(&err, SendError::Unhealthy(d) if d.contains(expect)),
            "{reply:?} gave {err:?}"
        );
        assert!(err.is_channel_problem() && !err.is_retryable());
        assert_eq!(fake.requests().len(), 1, "{reply:?} retried");
        assert_no_token(&err);
    }
}

#[tokio::test]
async fn other_bad_requests_are_rejected() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::MessageTooLong);
    let ch = channel(&cfg(&fake));

    let err = bounded(ch.send(&alert())).await.unwrap_err();

    assert_eq!(
        err,
        SendError::Rejected("Bad Request: message is too long".to_owned())
    );
    assert!(!err.is_retryable() && !err.is_channel_problem());
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_and_closed_connections_are_transient() {
    for (reply, says) in [
        (Reply::ServerError, "500"),
        (Reply::BadGateway, "502"),
        // No HTTP answer at all: the error is about the connection.
        (Reply::Close, "connection"),
    ] {
        let fake = FakeTelegram::start().await;
        fake.push(reply.clone());
        let ch = channel(&cfg(&fake));

        let err = bounded(ch.send(&alert())).await.unwrap_err();

        assert!(
            matches!(&err, SendError::Transient(d) if d.contains(says)),
            "{reply:?} gave {err:?}"
        );
        assert!(err.is_retryable());
        assert_eq!(fake.requests().len(), 1, "{reply:?}");
        assert!(fake.delivered().is_empty());
        assert_no_token(&err);

        // The same channel works again once the server does.
        bounded(ch.send(&alert()))
            .await
            .expect("next send goes through");
        assert_eq!(fake.delivered().len(), 1);
    }
}

#[tokio::test]
async fn a_hanging_server_times_out_as_transient() {
    let fake = FakeTelegram::start().await;
    fake.push(Reply::Hang);
    let ch = channel(&cfg(&fake));

    let started = Instant::now();
    let err = tokio::time::timeout(TIMEOUT * 5, ch.send(&alert()))
        .await
        .expect("send gives up by itself")
        .unwrap_err();
    let waited = started.elapsed();

    assert!(
        matches!(&err, SendError::Transient(d) if d.contains("timed out")),
        "{err:?}"
    );
    // A lower bound only: the channel must not give up before its timeout.
    assert!(waited >= TIMEOUT, "gave up after {waited:?}");
    assert_eq!(fake.requests()[0].reply, Reply::Hang);
    assert!(fake.delivered().is_empty());
    assert_no_token(&err);
}

#[tokio::test]
async fn a_dropped_fake_refuses_connections() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));
    bounded(ch.send(&alert())).await.unwrap();
    drop(fake);

    let err = bounded(ch.send(&alert())).await.unwrap_err();

    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
    assert_no_token(&err);
}

#[tokio::test]
async fn names_with_markup_characters_are_escaped_and_accepted() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));
    let a = Alert {
        title: "<b>\"api\"</b> & friends".to_owned(),
        source: "web<1>&\"2\"".to_owned(),
        body: Some("upstream <app> refused & retrying".to_owned()),
        ..alert()
    };

    bounded(ch.send(&a)).await.expect("accepted as HTML");

    // One request: the fake parses HTML strictly and would have refused bad markup.
    assert_eq!(fake.requests().len(), 1);
    let delivered = fake.delivered();
    let t = text(&delivered[0]);
    assert!(
        t.contains("&lt;b&gt;&quot;api&quot;&lt;/b&gt; &amp; friends"),
        "{t}"
    );
    assert!(t.contains("web&lt;1&gt;&amp;&quot;2&quot;"), "{t}");
    assert!(
        t.contains("upstream &lt;app&gt; refused &amp; retrying"),
        "{t}"
    );
    assert!(!t.contains("<1>") && !t.contains("<app>"), "{t}");
    assert_eq!(delivered[0]["parse_mode"], "HTML");
}

#[tokio::test]
async fn a_5000_character_body_arrives_cut_to_the_limit() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));
    let a = Alert {
        body: Some("disk <full> & more\n".repeat(264)[..5000].to_owned()),
        ..alert()
    };
    assert_eq!(a.body.as_ref().unwrap().chars().count(), 5000);

    bounded(ch.send(&a)).await.expect("delivered");

    assert_eq!(fake.requests().len(), 1, "one message, not split");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1);
    let t = text(&delivered[0]);
    assert!(t.chars().count() <= 4096, "{}", t.chars().count());
    assert!(t.encode_utf16().count() <= 4096);
    assert!(
        t.contains("more characters, full text in the dashboard)"),
        "{t}"
    );
    assert!(t.starts_with("🔴 <b>CRITICAL</b> · api is DOWN"));
    assert!(
        t.ends_with("<i>api · http · 2026-11-23 14:05 UTC</i>"),
        "{t}"
    );
}

#[tokio::test]
async fn get_me_returns_the_bot_username() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));

    assert_eq!(ch.get_me().await.unwrap(), BOT_USERNAME);
    let requests = fake.requests();
    assert_eq!(requests[0].method, "getMe");
    assert_eq!(requests[0].token, TOKEN);

    fake.push(Reply::Unauthorized);
    let err = ch.get_me().await.unwrap_err();
    assert!(
        matches!(&err, SendError::Unhealthy(d) if d.contains("bot token rejected")),
        "{err:?}"
    );
    assert_no_token(&err);

    fake.push(Reply::Hang);
    let hung = tokio::time::timeout(TIMEOUT * 5, ch.get_me())
        .await
        .expect("getMe gives up by itself");
    assert!(matches!(hung, Err(SendError::Transient(_))), "{hung:?}");
}

#[tokio::test]
async fn debug_of_the_channel_does_not_show_the_token() {
    let fake = FakeTelegram::start().await;
    let ch = channel(&cfg(&fake));
    let shown = format!("{ch:?}");
    assert!(
        !shown.contains(TOKEN) && !shown.contains("SECRET"),
        "{shown}"
    );
}
