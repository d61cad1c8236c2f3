//! From a failing endpoint to the operator's chat: opswatch probing a real HTTP server, alerting
//! through a fake Telegram Bot API that speaks the real wire format. The stories about restarts
//! and kill -9 run the binary; the others run it in process on the system clock. Every story runs
//! on SQLite and, when available, on PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::app::spawn_app;
use crate::support::fake_telegram::{FakeTelegram, Reply};
use crate::support::target::Target;
use crate::support::{Opswatch, Served, eventually, run_cli_async, sqlite_url, write_config};
use opswatch::daemon::clock::Clock;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

fn config(
    store_url: &str,
    target: &Target,
    fake: &FakeTelegram,
    check_name: &str,
    extra: &str,
) -> String {
    format!(
        r#"[storage]
url = "{store_url}"

[telegram]
bot_token = "123456:TEST-token-never-logged"
chat_id = "4242"
api_base = "{api}"

[[http]]
name = {check_name:?}
url = "{url}"
every = "1s"
timeout = "1s"
failures = 2
{extra}
"#,
        api = fake.api_base(),
        url = target.url(),
    )
}

/// Check "api" on `target` with a SQLite store, its config written for the CLI verbs.
struct Cli {
    dir: PathBuf,
    config: PathBuf,
}

impl Cli {
    fn new(dir: &Path, target: &Target, fake: &FakeTelegram) -> Self {
        // The machine's own load must not decide the outcome (builds share these cores).
        let host = "[system]\nload_warn = 1000\nload_crit = 2000\n";
        let config = write_config(dir, &config(&sqlite_url(dir), target, fake, "api", host));
        Self {
            dir: dir.to_owned(),
            config,
        }
    }

    /// `opswatch --config CONFIG ARGS`, off the runtime that serves the fakes.
    async fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        run_cli_async(&self.dir, &all).await
    }
}

fn text(message: &Value) -> String {
    message["text"].as_str().unwrap_or_default().to_owned()
}

/// Results stored for check `name` so far, oldest first, as (ok, at_ms).
async fn results(app: &impl Served, name: &str) -> Vec<(bool, i64)> {
    let url = format!(
        "{}?since=1h&limit=1000",
        app.url(&format!("/api/v1/checks/{}/results", urlencode(name)))
    );
    let Ok(res) = reqwest::get(url).await else {
        return Vec::new();
    };
    let Ok(body) = res.json::<Value>().await else {
        return Vec::new();
    };
    let mut out: Vec<(bool, i64)> = body["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (r["ok"].as_bool().unwrap(), r["at_ms"].as_i64().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    out.reverse();
    out
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Waits until at least `n` results with `ok` were stored after `after_ms`.
async fn wait_results(app: &impl Served, name: &str, ok: bool, n: usize, after_ms: i64) {
    let found = eventually(WAIT, || async {
        let r = results(app, name).await;
        (r.iter()
            .filter(|(o, at)| *o == ok && *at > after_ms)
            .count()
            >= n)
            .then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "fewer than {n} results with ok={ok} after {after_ms}; log:\n{}",
        app.log()
    );
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn down_then_up_sends_exactly_one_critical_and_one_resolved_and_survives_a_restart() {
    let base = tempfile::tempdir().unwrap();
    for (store_url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        let target = Target::start().await;
        let cfg = config(&store_url, &target, &fake, "api", "");
        let mut app = Opswatch::start_with_config(dir.path(), &cfg);
        wait_results(&app, "api", true, 1, 0).await;

        let failing_since = now_ms();
        target.set_status(503);
        wait_results(&app, "api", false, 1, failing_since).await;
        assert!(fake.delivered().is_empty(), "one failure must not alert");

        let critical = fake.wait_delivered(1, WAIT).await;
        let first = text(&critical[0]);
        assert!(
            first.contains("CRITICAL") && first.contains("api is DOWN"),
            "{first}"
        );
        assert!(
            first.contains("HTTP 503"),
            "the alert must say what was measured: {first}"
        );
        assert!(
            first.contains("2 failed probes in a row"),
            "and the threshold: {first}"
        );
        assert!(
            critical[0]["chat_id"] == 4242 || critical[0]["chat_id"] == "4242",
            "{}",
            critical[0]
        );
        assert_eq!(critical[0]["parse_mode"], "HTML");

        // Still down: more failures, no more messages.
        wait_results(&app, "api", false, 3, now_ms()).await;
        assert_eq!(fake.delivered().len(), 1, "still-down must not repeat");

        // Restart while down: state and incident come back from the store, nothing re-sent.
        assert!(app.terminate(Duration::from_secs(10)).success());
        let app = Opswatch::start_with_config(dir.path(), &cfg);
        wait_results(&app, "api", false, 2, now_ms()).await;
        assert_eq!(
            fake.delivered().len(),
            1,
            "a restart while down re-sent the alert"
        );

        target.set_status(200);
        let both = fake.wait_delivered(2, WAIT).await;
        let resolved = text(&both[1]);
        assert!(
            resolved.contains("RESOLVED") && resolved.contains("api is UP again"),
            "{resolved}"
        );
        assert!(
            resolved.contains("down for"),
            "RESOLVED must carry the downtime: {resolved}"
        );
        assert_eq!(
            both[1]["disable_notification"], true,
            "RESOLVED is silent by default"
        );
        wait_results(&app, "api", true, 3, now_ms()).await;
        assert_eq!(fake.delivered().len(), 2);

        // The alert log shows both, each delivered on the telegram channel.
        let log = app.get_json("/api/v1/alerts").await;
        let alerts = log["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 2, "{log}");
        for a in alerts {
            assert_eq!(a["deliveries"][0]["channel"], "telegram");
            assert_eq!(a["deliveries"][0]["state"], "sent", "{a}");
        }
        assert!(
            !app.log().contains("TEST-token-never-logged"),
            "bot token in the log"
        );
    }
}

#[tokio::test]
async fn kill_9_during_a_send_delivers_exactly_once_after_restart() {
    let base = tempfile::tempdir().unwrap();
    for (store_url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        fake.push(Reply::Hang);
        let target = Target::start().await;
        target.set_status(503);
        let cfg = config(&store_url, &target, &fake, "api", "");
        let mut app = Opswatch::start_with_config(dir.path(), &cfg);
        // The send is in flight (the fake holds it) when the process dies.
        fake.wait_requests(1, WAIT).await;
        app.kill_hard();
        assert!(fake.delivered().is_empty());

        let app = Opswatch::start_with_config(dir.path(), &cfg);
        // SQLite: leases of the dead process are freed at start; PostgreSQL: they expire (45 s).
        let delivered = fake.wait_delivered(1, Duration::from_secs(70)).await;
        assert!(text(&delivered[0]).contains("api is DOWN"));
        wait_results(&app, "api", false, 3, now_ms()).await;
        assert_eq!(
            fake.delivered().len(),
            1,
            "delivered twice after the restart"
        );
    }
}

#[tokio::test]
async fn names_with_markup_are_escaped_and_long_texts_cut_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    target.set_status(503);
    let store = sqlite_url(dir.path());
    let name = r#"api <b>&"prod"</b>"#;
    let hint = format!("hint = {:?}", "x".repeat(5_000));
    let _app = spawn_app(
        dir.path(),
        &config(&store, &target, &fake, name, &hint),
        Clock::System,
    )
    .await;

    let delivered = fake.wait_delivered(1, WAIT).await;
    let requests = fake.requests();
    assert_eq!(
        requests.len(),
        1,
        "the HTML must parse the first time: {requests:#?}"
    );
    let body = text(&delivered[0]);
    assert!(
        body.contains("api &lt;b&gt;&amp;&quot;prod&quot;&lt;/b&gt;"),
        "{body}"
    );
    assert!(
        body.chars().count() <= 4096,
        "{} characters",
        body.chars().count()
    );
    assert!(body.contains("cut"), "a cut text must say so");
    let shown =
        crate::support::fake_telegram::parse_html(&body).expect("balanced, valid Telegram HTML");
    assert!(shown.contains(r#"api <b>&"prod"</b> is DOWN"#), "{shown}");
}

#[tokio::test]
async fn slack_webhook_gets_the_same_alert_as_text() {
    use axum::routing::post;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let receiver = axum::Router::new().route(
        "/hook/T0/B0/secret",
        post(move |axum::Json(v): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/hook/T0/B0/secret",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    target.set_status(503);
    let store = sqlite_url(dir.path());
    let extra = format!("\n[[webhook]]\nname = \"ops\"\nurl = \"{hook}\"\nformat = \"slack\"\n");
    let app =
        Opswatch::start_with_config(dir.path(), &config(&store, &target, &fake, "api", &extra));
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("webhook called")
        .unwrap();
    let text = got["text"].as_str().unwrap();
    assert!(
        text.contains("CRITICAL") && text.contains("api is DOWN") && !text.contains("<b>"),
        "{text}"
    );
    fake.wait_delivered(1, WAIT).await;
    let log = app.get_json("/api/v1/alerts").await;
    let channels: Vec<&str> = log["alerts"][0]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["telegram", "webhook:ops"]);
    assert!(
        !app.log().contains("secret"),
        "webhook URL leaked into the log"
    );
}

#[tokio::test]
async fn a_blocked_bot_marks_the_channel_unhealthy_and_keeps_the_alert_queued() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    fake.set_default(Reply::Blocked);
    let target = Target::start().await;
    target.set_status(503);
    let store = sqlite_url(dir.path());
    let app = spawn_app(
        dir.path(),
        &config(&store, &target, &fake, "api", ""),
        Clock::System,
    )
    .await;
    fake.wait_requests(1, WAIT).await;
    let health = eventually(WAIT, || async {
        let h: Value = reqwest::get(app.url("/health"))
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (h["channels"]["telegram"]["ok"] == false).then_some(h)
    })
    .await
    .expect("channel never shown unhealthy");
    assert_eq!(health["status"], "ok", "opswatch itself is still healthy");
    assert!(
        health["channels"]["telegram"]["error"]
            .as_str()
            .unwrap()
            .contains("blocked"),
        "{health}"
    );
    // The dispatcher marks the channel down during the attempt and counts the queue right
    // after it, so the scrape may land between the two: wait for both.
    let metrics = || async {
        reqwest::get(app.url("/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let scraped = eventually(WAIT, || async {
        let m = metrics().await?;
        (m.contains("opswatch_channel_up{channel=\"telegram\"} 0")
            && m.contains("opswatch_outbox_depth{channel=\"telegram\"} 1"))
        .then_some(m)
    })
    .await;
    assert!(
        scraped.is_some(),
        "the channel is not shown down with one alert queued: {}",
        metrics().await.unwrap_or_default()
    );
    let log = app.get_json("/api/v1/alerts").await;
    assert_eq!(
        log["alerts"][0]["deliveries"][0]["state"], "pending",
        "{log}"
    );
}

#[tokio::test]
async fn the_read_api_answers_bad_input_with_json_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let store = sqlite_url(dir.path());
    let app = spawn_app(
        dir.path(),
        &config(&store, &target, &fake, "api", ""),
        Clock::System,
    )
    .await;
    wait_results(&app, "api", true, 1, 0).await;
    for (path, status, code) in [
        ("/api/v1/checks/nope/results", 404, "not_found"),
        (
            "/api/v1/checks/api/results?since=yesterday",
            400,
            "bad_request",
        ),
        ("/api/v1/checks/api/results?limit=0", 400, "bad_request"),
        // Over the maximum is clamped (issue 15); a negative limit is still refused.
        ("/api/v1/checks/api/results?limit=-5", 400, "bad_request"),
        (
            "/api/v1/checks/api/results?since=2000&until=1000",
            400,
            "bad_request",
        ),
        ("/api/v1/checks/api/results?colour=red", 400, "bad_request"),
        ("/api/v1/alerts?until=soon", 400, "bad_request"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ] {
        let res = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{path}");
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|_| panic!("{path}: not JSON"));
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}"
        );
    }

    let status = app.get_json("/api/v1/status").await;
    assert_eq!(status["status"], "ok", "{status}");
    assert_eq!(status["checks"][0]["name"], "api");
    assert_eq!(status["checks"][0]["state"], "up");
    let checks = app.get_json("/api/v1/checks").await;
    assert_eq!(checks["checks"][0]["target"]["url"], target.url());
    // Steady good probes write only their result; the check's last result time still follows.
    wait_results(&app, "api", true, 3, 0).await;
    // Read the newest stored result first, then the check: the check's time can only be that
    // result's or a later one's (a probe may land in between, never one that goes missing).
    let newest = app.get_json("/api/v1/checks/api/results?limit=1").await;
    let newest_ms = newest["results"][0]["at_ms"].as_i64().unwrap();
    let checks = app.get_json("/api/v1/checks").await;
    let last = checks["checks"][0]["last_result_ms"].as_i64().unwrap();
    assert!(
        last >= newest_ms,
        "last_result_ms lags behind the stored results: {checks} {newest}"
    );
    let at_last = app
        .get_json(&format!(
            "/api/v1/checks/api/results?until={}&limit=1",
            last + 1
        ))
        .await;
    assert_eq!(at_last["results"][0]["at_ms"], last, "{checks} {at_last}");
    let results = app.get_json("/api/v1/checks/api/results?limit=1").await;
    assert_eq!(results["results"].as_array().unwrap().len(), 1);
    assert_eq!(results["results"][0]["status_code"], 200);
}

#[tokio::test]
async fn a_hanging_target_never_delays_another_check_nor_health() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let slow = Target::start().await;
    slow.hang();
    let fast = Target::start().await;
    let store = sqlite_url(dir.path());
    let extra = format!(
        "\n[[http]]\nname = \"fast\"\nurl = \"{}\"\nevery = \"1s\"\n",
        fast.url()
    );
    let mut cfg = config(&store, &slow, &fake, "slow", &extra);
    cfg = cfg.replace(
        "every = \"1s\"\ntimeout = \"1s\"",
        "every = \"30s\"\ntimeout = \"30s\"",
    );
    let app = spawn_app(dir.path(), &cfg, Clock::System).await;
    let t0 = now_ms();
    wait_results(&app, "fast", true, 4, t0).await;
    assert!(slow.hits() >= 1, "the slow target was never probed");
    // The slow probe hangs for its whole 30 s timeout; /health must answer while it does.
    let res = tokio::time::timeout(Duration::from_secs(10), reqwest::get(app.url("/health")))
        .await
        .expect("/health waited on the hanging check")
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn alert_test_reports_per_channel_and_fails_when_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let cli = Cli::new(dir.path(), &target, &fake);
    let out = cli.run(&["alert", "test"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok    telegram"));
    assert!(text(&fake.delivered()[0]).contains("Test alert"));

    fake.set_default(Reply::Unauthorized);
    let out = cli.run(&["alert", "test"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL  telegram"), "{stdout}");
    assert!(!stdout.contains("TEST-token-never-logged"));
}

#[tokio::test]
async fn check_prints_a_table_and_exits_1_when_something_fails() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let cli = Cli::new(dir.path(), &target, &fake);
    let out = cli.run(&["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("api") && l.contains(" ok ")),
        "{stdout}"
    );
    for host_line in ["memory", "load", "disk /"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(host_line)),
            "no {host_line} line: {stdout}"
        );
    }
    target.set_status(500);
    let out = cli.run(&["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("HTTP 500"),
        "{stdout}"
    );
    assert!(fake.requests().is_empty(), "`check` must not alert");
}

#[tokio::test]
async fn config_check_connect_tries_each_store_channel_and_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let target = Target::start().await;
    let cli = Cli::new(dir.path(), &target, &fake);
    let out = cli.run(&["config", "check", "--connect"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for line in ["ok    storage", "ok    telegram", "ok    http api"] {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    assert_eq!(fake.requests()[0].method, "getMe");
    target.set_status(500);
    fake.set_default(Reply::Unauthorized);
    let out = cli.run(&["config", "check", "--connect"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  telegram")
            && stdout.contains("FAIL  http api")
            && stdout.contains("HTTP 500"),
        "{stdout}"
    );
    assert!(!stdout.contains("TEST-token-never-logged"));
}
