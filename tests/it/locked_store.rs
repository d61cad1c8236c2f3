//! Another process holding SQLite's write lock (a backup, `sqlite3` by hand) for longer than
//! the busy timeout: probe results keep coming and are all stored once the lock goes (issue 18).

use std::time::Duration;

use serde_json::Value;

use crate::support::target::Target;
use crate::support::{Opswatch, eventually, write_config};

/// How long the other connection holds the write lock: longer than SQLite's busy timeout
/// (10 s) and the pool's acquire timeout (5 s) together.
const HOLD: Duration = Duration::from_secs(16);

async fn result_times(app: &Opswatch) -> Vec<i64> {
    let url = app.url("/api/v1/checks/api/results?since=1h&limit=1000");
    let Ok(res) = reqwest::get(url).await else {
        return Vec::new();
    };
    let body: Value = res.json().await.unwrap_or_default();
    body["results"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["at_ms"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn results_probed_while_another_process_holds_the_lock_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target::start().await;
    let db = dir.path().join("data/o.db");
    write_config(
        dir.path(),
        &format!(
            r#"[storage]
url = "sqlite://{db}"
[system]
enabled = false
[pm2]
enabled = false
[[http]]
name = "api"
url = "{url}"
every = "1s"
timeout = "1s"
"#,
            db = db.display(),
            url = target.url(),
        ),
    );
    let cfg = dir.path().join("opswatch.toml");
    let app = Opswatch::start(dir.path(), &["--config", cfg.to_str().unwrap()]);
    let started = eventually(Duration::from_secs(20), || async {
        (result_times(&app).await.len() >= 2).then_some(())
    })
    .await;
    assert!(started.is_some(), "no results; log:\n{}", app.log());

    use sqlx::ConnectOptions as _;
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&db)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let hits_before = target.hits();
    tokio::time::sleep(HOLD).await;
    let hits_during = target.hits() - hits_before;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    drop(other);

    // Every probe that ran while the lock was held is stored once it is released.
    let stored = eventually(Duration::from_secs(30), || async {
        let n = result_times(&app).await.len();
        (n >= hits_before + hits_during).then_some(n)
    })
    .await;
    assert!(
        stored.is_some(),
        "{} probes ran ({hits_during} while locked) but {} results are stored; log:\n{}",
        target.hits(),
        result_times(&app).await.len(),
        app.log()
    );
    // The check did not stall behind the lock: it kept probing about once a second.
    assert!(
        hits_during as u64 >= HOLD.as_secs() / 2,
        "only {hits_during} probes in {HOLD:?}; log:\n{}",
        app.log()
    );
}
