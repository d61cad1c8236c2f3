//! Silences and maintenance windows: what they hold back, and the API that makes them.

use std::path::Path;
use std::time::Duration;

use crate::support::app::{TestApp, spawn_app};
use crate::support::fake_telegram::FakeTelegram;
use crate::support::target::Target;
use crate::support::{Opswatch, eventually, sqlite_url, telegram_config};
use opswatch::daemon::clock::Clock;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// The config of check "api" of `target` in `dir`, alerting through `fake`, plus `extra`.
fn config(dir: &Path, fake: &FakeTelegram, target: &Target, extra: &str) -> String {
    format!(
        r#"{head}[pm2]
enabled = false
[[http]]
name = "api"
url = "{url}"
every = "1s"
failures = 2
{extra}
"#,
        head = telegram_config(&sqlite_url(dir), fake),
        url = target.url(),
    )
}

/// Starts the opswatch binary on [`config`]: for what needs its log.
fn start(dir: &Path, fake: &FakeTelegram, target: &Target, extra: &str) -> Opswatch {
    Opswatch::start_with_config(dir, &config(dir, fake, target, extra))
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let body = app.get_json("/api/v1/alerts").await;
    body["alerts"].as_array().cloned().unwrap_or_default()
}

/// POSTs `body` to the silences API at `url` as `token`.
async fn post_silence(http: &Client, url: &str, token: &str, body: &Value) -> Response {
    http.post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// DELETEs the silence at `url` as `token`.
async fn delete_silence(http: &Client, url: &str, token: &str) -> StatusCode {
    http.delete(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// GETs `url` as `token`: its JSON body, or `None` when the request or the body fails.
async fn get_json_as(http: &Client, url: &str, token: &str) -> Option<Value> {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

#[tokio::test]
async fn a_maintenance_window_records_the_critical_and_its_resolved_but_sends_neither() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let canary = Target::start().await;
    target.set_status(503);
    // A window that is always open for "api" (it starts every minute and lasts two), and a
    // second check outside it that serves as a barrier below.
    let extra = format!(
        "[[silence]]\ncheck = \"api\"\nschedule = \"* * * * *\"\nduration = \"2m\"\ncomment = \"deploy\"\n\
         [[http]]\nname = \"canary\"\nurl = \"{}\"\nevery = \"1s\"\nfailures = 2\n",
        canary.url()
    );
    // In process: nothing here needs a process of its own, and the test can drain the outbox.
    let config = config(dir.path(), &fake, &target, &extra);
    let app = spawn_app(dir.path(), &config, Clock::System).await;

    let down = eventually(Duration::from_secs(20), || async {
        alerts(&app)
            .await
            .into_iter()
            .find(|a| a["title"] == "api is DOWN")
    })
    .await
    .expect("the DOWN was not recorded");
    assert_eq!(down["silenced"], true);
    assert!(down["deliveries"].as_array().unwrap().is_empty(), "{down}");

    target.set_status(200);
    let up = eventually(Duration::from_secs(20), || async {
        let s: Value = reqwest::get(app.url("/api/v1/status"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let api = s["checks"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "api")?
            .clone();
        (api["state"] == "up").then_some(())
    })
    .await;
    assert!(up.is_some(), "api never came back up");
    // Its RESOLVED is held back with it (it may be recorded, but only as silenced).
    assert!(
        alerts(&app)
            .await
            .iter()
            .all(|a| a["title"] != "api is UP again" || a["silenced"] == true)
    );

    // Barrier instead of a sleep: alerts leave a channel strictly in the order they were
    // raised, so once the canary's DOWN (raised after both of api's alerts) was delivered,
    // anything of api's that was queued, however late, would have gone out before it.
    canary.set_status(503);
    app.wait_for_texts(&fake, Duration::from_secs(20), |texts| {
        texts.iter().any(|t| t.contains("canary"))
    })
    .await;
    app.dispatch_all_pending().await;
    let texts = fake.delivered_texts();
    assert!(
        texts.iter().all(|t| !t.contains("api")),
        "sent during the window: {texts:#?}"
    );
    assert_eq!(texts.len(), 1, "{texts:#?}");
    app.stop().await;
}

#[tokio::test]
async fn the_silence_api_creates_lists_and_expires_with_tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let tokens = "[[auth.tokens]]\nname = \"reader\"\ntoken = \"read-token-0123456789\"\n\
                  [[auth.tokens]]\nname = \"deployer\"\ntoken = \"write-token-0123456789\"\nscope = \"write\"\n";
    let app = start(dir.path(), &fake, &target, tokens);
    let http = Client::new();
    let url = app.url("/api/v1/silences");
    let body = json!({"check": "api", "duration": "2h", "comment": "migrating the database"});

    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    let res = post_silence(&http, &url, "read-token-0123456789", &body).await;
    assert_eq!(res.status(), 403);
    let res = post_silence(&http, &url, "wrong", &body).await;
    assert_eq!(res.status(), 401);

    for (bad, why) in [
        (json!({"check": "api", "comment": "x"}), "ends"),
        (
            json!({"check": "api", "duration": "2h", "comment": " "}),
            "comment",
        ),
        (
            json!({"check": "api", "duration": "forever", "comment": "x"}),
            "duration",
        ),
        (
            json!({"check": "api", "duration": "1y", "comment": "x"}),
            "90 days",
        ),
        (
            json!({"check": "api", "duration": "1h", "comment": "x", "severity": "loud"}),
            "severity",
        ),
        (
            json!({"check": "api", "duration": "1h", "comment": "x", "colour": "red"}),
            "colour",
        ),
    ] {
        let res = post_silence(&http, &url, "write-token-0123456789", &bad).await;
        assert_eq!(res.status(), 400, "{bad}");
        let msg = res.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(msg.contains(why), "{bad}: {msg}");
    }
    let res = http
        .post(&url)
        .bearer_auth("write-token-0123456789")
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let res = post_silence(&http, &url, "write-token-0123456789", &body).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["silence"]["created_by"], "deployer");
    let id = created["silence"]["id"].as_i64().unwrap();

    let listed = get_json_as(&http, &url, "read-token-0123456789")
        .await
        .expect("silences listed");
    assert_eq!(listed["silences"][0]["id"], id);

    // While silenced, the DOWN is recorded but not sent.
    target.set_status(500);
    let down = eventually(Duration::from_secs(20), || async {
        let body = get_json_as(&http, &app.url("/api/v1/alerts"), "read-token-0123456789").await?;
        body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["title"] == "api is DOWN")
            .cloned()
    })
    .await
    .expect("DOWN not recorded");
    assert_eq!(down["silenced"], true);

    let silence = format!("{url}/{id}");
    let gone = delete_silence(&http, &silence, "write-token-0123456789").await;
    assert_eq!(gone, 204);
    let again = delete_silence(&http, &silence, "write-token-0123456789").await;
    assert_eq!(again, 404);
    assert!(fake.requests().is_empty());
    assert!(!app.log().contains("write-token-0123456789"));
}
