//! The spine as an operator meets it: the real binary, zero config, /health, /metrics, config
//! mistakes, secrets, shutdown — on SQLite and on PostgreSQL.

use std::time::Duration;

use crate::support::{
    Opswatch, PgDatabase, eventually, pg_admin_url, run_cli, write, write_config,
};

/// A config with nothing but the store.
fn storage_config(url: &str) -> String {
    format!("[storage]\nurl = \"{url}\"\n")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn zero_config_start_creates_the_data_dir_and_answers_health() {
    let dir = tempfile::tempdir().unwrap();
    let app = Opswatch::start(dir.path(), &[]);
    let http = client();

    let res = http.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_s"].is_u64(), "{body}");
    assert_eq!(body["store"]["backend"], "sqlite");

    let head = http.head(app.url("/health")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(
        head.bytes().await.unwrap().is_empty(),
        "HEAD must have no body"
    );

    assert!(
        dir.path().join("data/opswatch.db").is_file(),
        "store not created under ./data"
    );
}

#[tokio::test]
async fn health_turns_503_when_the_sqlite_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let app = Opswatch::start(dir.path(), &[]);
    let http = client();
    assert_eq!(
        http.get(app.url("/health")).send().await.unwrap().status(),
        200
    );

    for f in ["opswatch.db", "opswatch.db-wal", "opswatch.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join("data").join(f));
    }
    let body = eventually(Duration::from_secs(15), || async {
        let res = http.get(app.url("/health")).send().await.ok()?;
        (res.status() == 503).then_some(())?;
        res.json::<serde_json::Value>().await.ok()
    })
    .await
    .expect("/health stayed 200 after the store file was removed");
    assert_eq!(body["status"], "unavailable");
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("store:"),
        "{body}"
    );
}

#[tokio::test]
async fn health_turns_503_when_the_postgres_database_is_dropped() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Opswatch::start_with_config(dir.path(), &storage_config(&db.url));
    let http = client();
    let body: serde_json::Value = http
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["store"]["backend"], "postgres");

    db.drop_now().await;
    let status = eventually(Duration::from_secs(15), || async {
        let res = http.get(app.url("/health")).send().await.ok()?;
        (res.status() == 503).then_some(res.status())
    })
    .await;
    assert!(
        status.is_some(),
        "/health stayed 200 after the database was dropped"
    );
    // The log may say why, but never the password of the store URL.
    let password = url::Url::parse(&db.url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(
        !app.log().contains(&password),
        "store password leaked into the log"
    );
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _guard) in crate::support::store_urls(dir.path()).await {
        let run = tempfile::tempdir().unwrap();
        let app = Opswatch::start_with_config(run.path(), &storage_config(&url));
        let http = client();
        // One request first so the request histogram has a series.
        http.get(app.url("/health")).send().await.unwrap();
        let res = http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition format");
        let value = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        };
        let build = value("opswatch_build_info");
        assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
        assert!(
            matches!(value("opswatch_store_up").value, prometheus_parse::Value::Gauge(v) if v == 1.0)
        );
        assert!(
            matches!(value("opswatch_scheduler_up").value, prometheus_parse::Value::Gauge(v) if v == 1.0)
        );
        assert!(
            matches!(value("process_resident_memory_bytes").value, prometheus_parse::Value::Gauge(v) if v > 1_000_000.0),
            "RSS not reported"
        );
        let health_requests = scrape.samples.iter().find(|s| {
            s.metric == "opswatch_http_request_duration_seconds_count"
                && s.labels.get("route") == Some("/health")
        });
        assert!(
            health_requests.is_some(),
            "request histogram is not labelled by route:\n{text}"
        );
    }
}

/// Each config mistake: exit 2, and one line naming the file, the line, the key and the reason.
#[test]
fn config_mistakes_exit_2_naming_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &str)] = &[
        ("syntax", "[server\nlisten = \"x\"\n", ":1:", "TOML syntax"),
        (
            "unknown key",
            "[server]\nlisen = \"127.0.0.1:1\"\n",
            ":2:1: key server.lisen:",
            "unknown key",
        ),
        (
            "bad duration",
            "[[http]]\nname = \"api\"\nurl = \"http://127.0.0.1:1/\"\nevery = \"5 minutes\"\n",
            ":4:1: key http[0].every:",
            "invalid duration",
        ),
        (
            "bad cron",
            "[digest]\nschedule = \"61 * * * *\"\n",
            ":2:1: key digest.schedule:",
            "invalid cron",
        ),
        (
            "unset variable",
            "[telegram]\nbot_token = \"${OPSWATCH_TEST_SURELY_UNSET}\"\nchat_id = \"1\"\n",
            ":2:1: key telegram.bot_token:",
            "OPSWATCH_TEST_SURELY_UNSET is not set",
        ),
        (
            "missing env_file",
            "env_file = \"nope.env\"\n",
            ":1:1: key env_file:",
            "no such file",
        ),
    ];
    for (what, text, position, reason) in cases {
        let path = write(dir.path(), "bad.toml", text);
        for args in [
            vec!["--config", path.to_str().unwrap(), "config", "check"],
            vec!["--config", path.to_str().unwrap(), "serve"],
        ] {
            let out = run_cli(dir.path(), &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{what}: {args:?} exit code; stderr: {stderr}"
            );
            let expected_start = format!("{}{position}", path.display());
            assert!(
                stderr.starts_with(&expected_start),
                "{what}: expected {expected_start:?} in {stderr:?}"
            );
            assert!(
                stderr.contains(reason),
                "{what}: reason {reason:?} missing in {stderr:?}"
            );
            assert!(
                out.stdout.is_empty(),
                "{what}: printed a config despite the error"
            );
        }
    }
}

#[test]
fn a_missing_config_file_is_a_config_error_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(
        dir.path(),
        &["--config", "/nonexistent/opswatch.toml", "config", "check"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/opswatch.toml: cannot read")
    );
}

#[test]
fn config_check_prints_the_effective_config_without_any_secret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "app.env",
        "BOT=987654:AAE-secret-bot-token\nDBPASS=db-Pa55word\n",
    );
    let config = write_config(
        dir.path(),
        r#"env_file = "app.env"
[storage]
url = "postgres://opswatch:store-Pa55@127.0.0.1/opswatch"
[telegram]
bot_token = "${BOT}"
chat_id = "-100123"
[[webhook]]
name = "slack"
url = "https://hooks.example.com/services/T000/B000/webhook-secret-path"
format = "slack"
[[http]]
name = "api"
url = "https://example.com/health"
headers = { Authorization = "Bearer header-secret-value" }
[database]
url = "postgres://monitor:${DBPASS}@127.0.0.1/app?sslmode=disable"
[[auth.users]]
name = "admin"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$hash-secret-value"
[[auth.tokens]]
name = "ci"
token = "api-token-secret-value"
scope = "write"
"#,
    );
    let out = run_cli(
        dir.path(),
        &["--config", config.to_str().unwrap(), "config", "check"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for secret in [
        "AAE-secret-bot-token",
        "store-Pa55",
        "db-Pa55word",
        "webhook-secret-path",
        "header-secret-value",
        "hash-secret-value",
        "$argon2id",
        "api-token-secret-value",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked:\n{stdout}{stderr}"
        );
    }
    // The effective config: defaults filled in, redacted values in place.
    let shown: toml::Table = toml::from_str(&stdout).expect("config check prints TOML");
    assert_eq!(shown["server"]["listen"].as_str(), Some("127.0.0.1:7070"));
    assert_eq!(shown["system"]["disk_warn"].as_float(), Some(80.0));
    assert_eq!(shown["telegram"]["bot_token"].as_str(), Some("<redacted>"));
    assert_eq!(
        shown["telegram"]["api_base"].as_str(),
        Some("https://api.telegram.org")
    );
    assert_eq!(
        shown["database"]["url"].as_str(),
        Some("postgres://monitor:<redacted>@127.0.0.1/app?sslmode=disable")
    );
}

#[test]
fn a_port_in_use_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_cli(dir.path(), &["serve", "--listen", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = format!("opswatch: cannot listen on {addr}: the address is already in use");
    assert!(stderr.lines().any(|l| l.starts_with(&line)), "{stderr}");
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _guard) in crate::support::store_urls(dir.path()).await {
        let run = tempfile::tempdir().unwrap();
        let mut app = Opswatch::start_with_config(run.path(), &storage_config(&url));
        assert_eq!(
            client()
                .get(app.url("/health"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let status = app.terminate(Duration::from_secs(10));
        assert!(
            status.success(),
            "exit status {status:?}; log:\n{}",
            app.log()
        );
        assert!(
            client().get(app.url("/health")).send().await.is_err(),
            "still listening after exit"
        );
    }
}

#[tokio::test]
async fn migrate_applies_the_schema_on_both_backends_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _guard) in crate::support::store_urls(dir.path()).await {
        let config = write_config(dir.path(), &storage_config(&url));
        for _ in 0..2 {
            let out = run_cli(
                dir.path(),
                &["--config", config.to_str().unwrap(), "migrate"],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let store = opswatch::store::Store::connect(&url).await.unwrap();
        store.probe(1).await.expect("migrated store takes writes");
        store.close().await;
    }
}

#[test]
fn verbs_of_later_issues_exist_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let help = run_cli(dir.path(), &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for verb in [
        "serve", "check", "alert", "report", "disputes", "db", "config", "migrate",
    ] {
        assert!(help.contains(verb), "--help does not list {verb}:\n{help}");
    }
    let out = run_cli(dir.path(), &["report", "db"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not built yet"));
    let version = run_cli(dir.path(), &["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn the_example_config_documents_valid_keys() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/opswatch.example.toml"
    ))
    .unwrap();
    write(
        dir.path(),
        "app.env",
        "TELEGRAM_BOT_TOKEN=1:x\nTELEGRAM_CHAT_ID=-1\nSLACK_WEBHOOK_URL=https://hooks.example.com/x\n\
         API_HEALTH_TOKEN=t\nDB_PASS=p\nOPSWATCH_API_TOKEN=a\n",
    );
    let config = write_config(dir.path(), &example.replace("/srv/app/.env", "app.env"));
    let out = run_cli(
        dir.path(),
        &["--config", config.to_str().unwrap(), "config", "check"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
