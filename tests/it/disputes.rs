//! Disputes end to end: a real app database (PostgreSQL, one per test), the real binary, the
//! fake Telegram. Each dispute alerts exactly once, whether it was found by SQL or posted,
//! while opswatch runs, while it is down and around a kill -9.

use std::path::Path;
use std::time::Duration;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::{
    Opswatch, PgDatabase, app_sql, eventually, pg_admin_url, run_cli_async, sqlite_url,
    wait_for_texts, write_config,
};

const WAIT: Duration = Duration::from_secs(30);

/// An app database with a `disputes` table; `None` (test skipped) without PostgreSQL.
async fn app_db(ddl: &str) -> Option<PgDatabase> {
    let admin = pg_admin_url().await?;
    let db = PgDatabase::create(&admin).await;
    app_sql(&db.url, ddl).await;
    Some(db)
}

const INT_TABLE: &str = "CREATE TABLE disputes (id serial PRIMARY KEY, \
    created_at timestamptz NOT NULL DEFAULT now(), amount numeric(10,2), reason text);";

fn config(dir: &Path, db: &PgDatabase, fake: &FakeTelegram, disputes: &str, extra: &str) -> String {
    format!(
        r#"[storage]
url = "{store}"
[telegram]
bot_token = "123456:TEST-token"
chat_id = "77"
api_base = "{api}"
[system]
enabled = false
[pm2]
enabled = false
[database]
url = "{db}"
[disputes]
every = "1s"
{disputes}
{extra}
"#,
        store = sqlite_url(dir),
        api = fake.api_base(),
        db = db.url,
    )
}

const INT_QUERY: &str = r#"query = "SELECT id, created_at, amount, reason FROM disputes WHERE id > $1 ORDER BY id LIMIT 2""#;

/// How many delivered texts announce dispute `id`.
fn alerts_for(texts: &[String], id: &str) -> usize {
    texts
        .iter()
        .filter(|t| t.contains("DISPUTE") && t.contains(&format!("New dispute {id}\n")))
        .count()
}

async fn insert(db: &PgDatabase, reason: &str) {
    app_sql(
        &db.url,
        &format!("INSERT INTO disputes (amount, reason) VALUES (12.50, '{reason}')"),
    )
    .await;
}

async fn wait_first_run(app: &Opswatch) {
    eventually(WAIT, || async {
        app.log()
            .contains("disputes: first run, starting after the existing rows")
            .then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("no first run; log:\n{}", app.log()));
}

#[tokio::test]
async fn each_dispute_alerts_once_while_running_while_down_and_around_a_kill() {
    let Some(db) = app_db(INT_TABLE).await else {
        return;
    };
    // Rows that exist before opswatch ever ran: never an alert without backfill.
    insert(&db, "old one").await;
    insert(&db, "old two").await;
    insert(&db, "old three").await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    write_config(dir.path(), &config(dir.path(), &db, &fake, INT_QUERY, ""));
    let cfg = dir.path().join("opswatch.toml");
    let args = ["--config", cfg.to_str().unwrap()];

    let mut app = Opswatch::start(dir.path(), &args);
    wait_first_run(&app).await;
    // While running: id 4 (and the <b> in its reason arrives escaped).
    insert(&db, "<b>parcel</b> never arrived").await;
    wait_for_texts(&fake, &app, WAIT, |t| alerts_for(t, "4") == 1).await;
    let text = fake
        .delivered_texts()
        .into_iter()
        .find(|t| t.contains("New dispute 4"))
        .unwrap();
    assert!(text.contains("dispute"), "{text}");
    assert!(text.contains("amount: 12.5"), "{text}");
    assert!(
        text.contains("reason: &lt;b&gt;parcel&lt;/b&gt; never arrived"),
        "{text}"
    );

    // While down: 5, 6, 7 (more than one page of LIMIT 2).
    app.terminate(Duration::from_secs(15));
    for r in ["down a", "down b", "down c"] {
        insert(&db, r).await;
    }
    let mut app = Opswatch::start(dir.path(), &args);
    wait_for_texts(&fake, &app, WAIT, |t| {
        ["5", "6", "7"].iter().all(|id| alerts_for(t, id) == 1)
    })
    .await;

    // Around a kill -9: 8 before, 9 after.
    insert(&db, "before the kill").await;
    std::thread::sleep(Duration::from_millis(700));
    app.kill_hard();
    let app = Opswatch::start(dir.path(), &args);
    insert(&db, "after the kill").await;
    wait_for_texts(&fake, &app, WAIT, |t| {
        ["8", "9"].iter().all(|id| alerts_for(t, id) == 1)
    })
    .await;
    // Several more runs: nothing is found twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let texts = fake.delivered_texts();
    for id in ["4", "5", "6", "7", "8", "9"] {
        assert_eq!(alerts_for(&texts, id), 1, "dispute {id}: {texts:#?}");
    }
    for id in ["1", "2", "3"] {
        assert_eq!(alerts_for(&texts, id), 0, "pre-existing {id}: {texts:#?}");
    }
    let listed = app.get_json("/api/v1/disputes?limit=100").await;
    let ids: Vec<&str> = listed["disputes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "{listed}");
    assert_eq!(
        listed["disputes"][0]["fields"]["reason"], "after the kill",
        "newest first: {listed}"
    );
}

#[tokio::test]
async fn posted_twice_or_found_by_sql_and_posted_alerts_once() {
    // A text id and a timestamp cursor: the cursor binds as timestamptz.
    let Some(db) = app_db(
        "CREATE TABLE claims (ref text PRIMARY KEY, opened timestamptz NOT NULL DEFAULT now(), note text);",
    )
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let query =
        r#"query = "SELECT opened, ref AS id, note FROM claims WHERE opened > $1 ORDER BY opened""#;
    let tokens = r#"
[[auth.tokens]]
name = "app"
token = "write-token-123"
scope = "write"
[[auth.tokens]]
name = "viewer"
token = "read-token-123"
scope = "read"
"#;
    write_config(dir.path(), &config(dir.path(), &db, &fake, query, tokens));
    let cfg = dir.path().join("opswatch.toml");
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    wait_first_run(&app).await;
    let http = reqwest::Client::new();
    let post = |token: &'static str, body: &'static str| {
        http.post(app.url("/api/v1/disputes"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    assert_eq!(
        post("write-token-123", r#"{"id":"D-1","note":"first"}"#)
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        post("write-token-123", r#"{"id":"D-1","note":"again"}"#)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("read-token-123", r#"{"id":"D-9"}"#)
            .await
            .unwrap()
            .status(),
        403
    );
    for bad in ["not json", "[]", "{}", r#"{"id":1.5}"#, r#"{"id":""}"#] {
        let res = post("write-token-123", bad).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
    }
    // The app writes D-1 to its table too, and D-2 only there; then posts D-2 as well.
    app_sql(
        &db.url,
        "INSERT INTO claims (ref, note) VALUES ('D-1', 'row'), ('D-2', 'row two')",
    )
    .await;
    wait_for_texts(&fake, &app, WAIT, |t| alerts_for(t, "D-2") == 1).await;
    assert_eq!(
        post("write-token-123", r#"{"id":"D-2"}"#)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post("write-token-123", r#"{"id":7}"#)
            .await
            .unwrap()
            .status(),
        201
    );
    wait_for_texts(&fake, &app, WAIT, |t| alerts_for(t, "7") == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let texts = fake.delivered_texts();
    assert_eq!(alerts_for(&texts, "D-1"), 1, "{texts:#?}");
    assert_eq!(alerts_for(&texts, "D-2"), 1, "{texts:#?}");
    let d1 = texts
        .iter()
        .find(|t| t.contains("New dispute D-1"))
        .unwrap();
    assert!(
        d1.contains("note: first"),
        "the first source's fields: {d1}"
    );
}

#[tokio::test]
async fn a_failing_query_is_one_critical_and_no_dispute_is_lost() {
    let Some(db) = app_db(INT_TABLE).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    write_config(dir.path(), &config(dir.path(), &db, &fake, INT_QUERY, ""));
    let cfg = dir.path().join("opswatch.toml");
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    wait_first_run(&app).await;
    app_sql(&db.url, "ALTER TABLE disputes RENAME TO disputes_old").await;
    wait_for_texts(&fake, &app, WAIT, |t| {
        t.iter().any(|t| t.contains("CRITICAL"))
    })
    .await;
    // Meanwhile a dispute arrives in the renamed table.
    app_sql(
        &db.url,
        "INSERT INTO disputes_old (amount, reason) VALUES (1, 'during the outage')",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    app_sql(&db.url, "ALTER TABLE disputes_old RENAME TO disputes").await;
    wait_for_texts(&fake, &app, WAIT, |t| {
        alerts_for(t, "1") == 1 && t.iter().any(|t| t.contains("RESOLVED"))
    })
    .await;
    let texts = fake.delivered_texts();
    let critical: Vec<&String> = texts.iter().filter(|t| t.contains("CRITICAL")).collect();
    assert_eq!(
        critical.len(),
        1,
        "one CRITICAL, not one per run: {texts:#?}"
    );
    assert!(
        critical[0].contains("relation &quot;disputes&quot; does not exist")
            || critical[0].contains("relation \"disputes\" does not exist"),
        "the database's message: {}",
        critical[0]
    );
}

#[tokio::test]
async fn disputes_check_backfills_prints_and_exits_1_when_unreachable() {
    let Some(db) = app_db(INT_TABLE).await else {
        return;
    };
    insert(&db, "old one").await;
    insert(&db, "old two").await;
    insert(&db, "old three").await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    write_config(
        dir.path(),
        &config(dir.path(), &db, &fake, INT_QUERY, "backfill = true"),
    );
    let cfg = dir.path().join("opswatch.toml");
    let args = ["--config", cfg.to_str().unwrap(), "disputes", "check"];
    let out = run_cli_async(dir.path(), &args).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ["1", "2", "3"] {
        assert!(stdout.contains(&format!("dispute {id} ")), "{stdout}");
    }
    assert_eq!(
        fake.delivered_texts().len(),
        3,
        "{:#?}",
        fake.delivered_texts()
    );
    let again = run_cli_async(dir.path(), &args).await;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("no new dispute"));
    assert_eq!(fake.delivered_texts().len(), 3);

    db.drop_now().await;
    let down = run_cli_async(dir.path(), &args).await;
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&down.stderr);
    assert!(
        stderr.contains("cannot connect to the app's database"),
        "{stderr}"
    );
    let password = url::Url::parse(&db.url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(!stderr.contains(&password), "password leaked: {stderr}");
}
