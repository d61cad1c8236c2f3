//! The app database's health report against a real PostgreSQL: a scratch app database per test
//! with each problem planted, the real binary, the fake Telegram.

use std::time::Duration;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::{
    Opswatch, PgDatabase, app_sql, pg_admin_url, run_cli_async, sqlite_url, telegram_config,
    wait_for_texts, write_config,
};

const WAIT: Duration = Duration::from_secs(30);

fn config(dir: &std::path::Path, db_url: &str, fake: &FakeTelegram, extra: &str) -> String {
    format!(
        r#"{head}[system]
enabled = false
[pm2]
enabled = false
[database]
url = "{db_url}"
dead_tuples_warn = 1000
long_query = "1s"
{extra}
"#,
        head = telegram_config(&sqlite_url(dir), fake),
    )
}

/// Each problem the issue names, planted in `db`.
const PROBLEMS: &str = "
CREATE TABLE orders (id serial PRIMARY KEY, v int);
CREATE INDEX orders_v_a ON orders (v);
CREATE INDEX orders_v_b ON orders (v);
CREATE TABLE event_log (at timestamptz, msg text);
CREATE TABLE sessions (id int PRIMARY KEY, data text) WITH (autovacuum_enabled = false);
INSERT INTO sessions SELECT g, 'x' FROM generate_series(1, 3000) g;
DELETE FROM sessions WHERE id <= 2000;
CREATE SEQUENCE near_max AS integer;
SELECT setval('near_max', 2140000000);
CREATE TABLE _sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
  installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL,
  checksum bytea NOT NULL, execution_time bigint NOT NULL);
INSERT INTO _sqlx_migrations VALUES
  (20260101, 'create orders', now(), true, '\\x00', 1),
  (20260201, 'add sessions', now(), true, '\\x00', 1);
";

#[tokio::test]
async fn the_report_finds_each_planted_problem_and_alerts_as_stated() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    app_sql(&db.url, PROBLEMS).await;
    // A query held open in another connection, and a transaction left idle.
    let sleeper = {
        let url = db.url.clone();
        tokio::spawn(async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let _ = sqlx::query("SELECT pg_sleep(60)").execute(&mut conn).await;
        })
    };
    let mut idle = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql("BEGIN; SELECT count(*) FROM orders;")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let cfg = write_config(
        dir.path(),
        &config(
            dir.path(),
            &db.url,
            &fake,
            "[digest]\nschedule = \"* * * * * *\"",
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let out = run_cli_async(dir.path(), &["--config", cfg, "report", "db", "--send"]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "public.event_log",          // no primary key
        "public.sessions 2000 dead", // dead tuples with their last (auto)vacuum
        "autovacuum never",
        "pg_sleep(60)",                // the query held open
        "SELECT count(*) FROM orders", // the idle transaction
        "public.near_max 99.",         // the sequence
        "orders_v_a, orders_v_b",      // the duplicate index
        "_sqlx_migrations (sqlx): 2 applied, latest 20260201 add sessions",
        "median of 5 SELECT 1",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        text.contains("CRITICAL  Sequence public.near_max"),
        "{text}"
    );

    // The CRITICAL went out at once, with value, threshold and what to do; then the report.
    let texts = fake.delivered_texts();
    let critical = texts
        .iter()
        .find(|t| t.contains("CRITICAL") && t.contains("near_max"))
        .unwrap_or_else(|| panic!("no CRITICAL for the sequence: {texts:#?}"));
    assert!(critical.contains("critical above 95"), "{critical}");
    assert!(critical.contains("bigint"), "{critical}");
    assert!(
        texts.iter().any(|t| t.contains("Database report")),
        "{texts:#?}"
    );
    assert!(
        !texts.iter().any(|t| t.contains("<b>WARNING</b>")),
        "WARNINGs wait for the digest: {texts:#?}"
    );

    // The WARNINGs arrive in the digest.
    let app = Opswatch::start(dir.path(), &["--config", cfg]);
    wait_for_texts(&fake, &app, WAIT, |t| {
        t.iter().any(|t| {
            [
                "without a primary key",
                "dead tuples",
                "duplicate indexes",
                "running longer than 1s",
                "idle in a transaction",
            ]
            .iter()
            .all(|w| t.contains(w))
        })
    })
    .await;

    // Stored: the report and the series.
    let reports = app.get_json("/api/v1/reports").await;
    assert_eq!(reports["reports"][0]["kind"], "db", "{reports}");
    let size = app
        .get_json("/api/v1/metrics/appdb.size_bytes?range=24h")
        .await;
    assert!(
        size["series"][0]["points"][0]["avg"].as_f64().unwrap() > 1_000_000.0,
        "{size}"
    );
    let dead = app
        .get_json("/api/v1/metrics/appdb.dead_tuples.total?range=24h")
        .await;
    assert!(
        dead["series"][0]["points"][0]["avg"].as_f64().unwrap() >= 2000.0,
        "{dead}"
    );
    sleeper.abort();
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut idle).await;
}

#[tokio::test]
async fn a_monitoring_role_reads_what_it_may_and_names_the_rest() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    app_sql(&db.url, PROBLEMS).await;
    let role = format!("{}_mon", db.name);
    app_sql(
        &admin,
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'mon-pw-S3cret'; GRANT pg_monitor TO {role}; \
             GRANT CONNECT ON DATABASE {} TO {role};",
            db.name
        ),
    )
    .await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("mon-pw-S3cret")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let cfg = write_config(dir.path(), &config(dir.path(), url.as_str(), &fake, ""));
    let out = run_cli_async(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "report", "db"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    db.drop_now().await;
    app_sql(&admin, &format!("DROP ROLE IF EXISTS {role}")).await;
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The catalogs and statistics are readable with pg_monitor ...
    assert!(text.contains("public.event_log"), "{text}");
    assert!(text.contains("public.sessions 2000 dead"), "{text}");
    // ... the app's own tables are not, and the report says so instead of failing.
    assert!(text.contains("Could not read"), "{text}");
    assert!(
        text.contains("migrations (public._sqlx_migrations): permission denied"),
        "{text}"
    );
    assert!(fake.delivered_texts().is_empty(), "no --send, nothing sent");
}

#[tokio::test]
async fn report_db_exits_1_when_the_database_cannot_be_reached() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_password(Some("wrong-S3cret-pw")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let cfg = write_config(dir.path(), &config(dir.path(), url.as_str(), &fake, ""));
    let out = run_cli_async(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "report", "db", "--send"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-S3cret-pw"), "{stderr}");
    let texts = fake.delivered_texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(
        texts[0].contains("CRITICAL") && texts[0].contains("cannot be reached"),
        "{texts:#?}"
    );
    assert!(
        texts[0].contains("password authentication failed"),
        "{}",
        texts[0]
    );
    assert!(!texts[0].contains("wrong-S3cret-pw"));
}
