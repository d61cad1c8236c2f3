//! `opswatch db vacuum` against a real PostgreSQL: dead tuples cleared with a before/after
//! report, a locked table skipped rather than waited for, and a role that owns nothing
//! skipped with notes instead of errors.

use crate::support::fake_telegram::FakeTelegram;
use crate::support::{
    PgDatabase, app_sql, pg_admin_url, run_cli_async, sqlite_url, telegram_config, write_config,
};

async fn dead_tuples(url: &str, table: &str) -> i64 {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1")
            .bind(table)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    n
}

const SETUP: &str = "
CREATE TABLE sessions (id int PRIMARY KEY, data text) WITH (autovacuum_enabled = false);
INSERT INTO sessions SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g;
DELETE FROM sessions WHERE id <= 2000;
CREATE TABLE busy (id int PRIMARY KEY);
";

fn config(dir: &std::path::Path, db_url: &str, fake: &FakeTelegram) -> String {
    format!(
        r#"{head}[system]
enabled = false
[pm2]
enabled = false
[database]
url = "{db_url}"
[vacuum]
enabled = false
lock_timeout = "1s"
"#,
        head = telegram_config(&sqlite_url(dir), fake),
    )
}

#[tokio::test]
async fn vacuum_clears_dead_tuples_skips_a_locked_table_and_reports_before_after() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    app_sql(&db.url, SETUP).await;
    assert_eq!(dead_tuples(&db.url, "sessions").await, 2000);
    // The app holds a lock on `busy` for the whole run.
    let mut holder = {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql("BEGIN; LOCK TABLE busy IN ACCESS EXCLUSIVE MODE;")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    };
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let cfg = write_config(dir.path(), &config(dir.path(), &db.url, &fake));
    // `enabled = false`: the command runs all the same.
    let out = run_cli_async(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "db", "vacuum"],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut holder).await;
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("public.sessions "))
        .unwrap_or_else(|| panic!("no line for sessions:\n{text}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[1], "2000", "dead before: {line}");
    assert_eq!(cols[2], "0", "dead after: {line}");
    assert!(
        text.contains("public.busy: skipped: the app held a lock longer than 1s"),
        "{text}"
    );
    assert_eq!(dead_tuples(&db.url, "sessions").await, 0);

    let texts = fake.delivered_texts();
    assert_eq!(texts.len(), 1, "{texts:#?}");
    assert!(texts[0].contains("VACUUM (ANALYZE)"), "{}", texts[0]);
    assert!(
        texts[0].contains("public.sessions: dead 2000 → 0"),
        "{}",
        texts[0]
    );

    // Stored as a report of kind "vacuum".
    use sqlx::Connection as _;
    let mut store = sqlx::SqliteConnection::connect(&sqlite_url(dir.path()))
        .await
        .unwrap();
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM reports")
        .fetch_all(&mut store)
        .await
        .unwrap();
    assert_eq!(kinds, ["vacuum"]);
}

#[tokio::test]
async fn a_role_that_owns_nothing_gets_skip_notes_not_errors() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    app_sql(&db.url, SETUP).await;
    let role = format!("{}_ro", db.name);
    app_sql(
        &admin,
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'ro-pw-S3cret'; \
             GRANT CONNECT ON DATABASE {} TO {role};",
            db.name
        ),
    )
    .await;
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("ro-pw-S3cret")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeTelegram::start().await;
    let cfg = write_config(dir.path(), &config(dir.path(), url.as_str(), &fake));
    let out = run_cli_async(
        dir.path(),
        &["--config", cfg.to_str().unwrap(), "db", "vacuum"],
    )
    .await;
    let dead_after = dead_tuples(&db.url, "sessions").await;
    db.drop_now().await;
    app_sql(&admin, &format!("DROP ROLE IF EXISTS {role}")).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 table(s) vacuumed, 2 skipped"), "{text}");
    assert!(
        text.contains(
            "public.sessions: skipped: only the table's or the database's owner may vacuum it"
        ),
        "{text}"
    );
    assert_eq!(dead_after, 2000, "nothing was vacuumed");
}
