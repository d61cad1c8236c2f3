//! The `host` column (migration 0006): rows written before it are kept whole and claimed by
//! the first instance that opens the store, and two hosts may use the same check name.
//! Both backends; the old schema is made by running migrations 0001-0005 only.

use std::path::Path;

use opswatch::checks::CheckKind;
use opswatch::store::Store;

/// Applies the migrations before 0006 of `dialect` to `url`, then writes a check with a result
/// and an incident, a series with a sample, and a condition, the way the old schema held them.
async fn old_store_with_history(url: &str, dialect: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut migrator = sqlx::migrate::Migrator::new(dir).await.unwrap();
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 6)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let inserts = [
        "INSERT INTO checks (id, name, kind, state) VALUES (7, 'api', 'http', 'down')",
        "INSERT INTO check_results (check_id, at_ms, ok) VALUES (7, 1000, false)",
        "INSERT INTO incidents (check_id, opened_ms, cause) VALUES (7, 1000, 'HTTP 503')",
        "INSERT INTO series (id, name) VALUES (3, 'memory.used_pct')",
        "INSERT INTO samples (series_id, at_ms, value) VALUES (3, 1000, 42.5)",
        "INSERT INTO conditions (key, level, since_ms, updated_ms) VALUES ('swap', 'warning', 1, 1)",
        "INSERT INTO store_probe (id, at_ms) VALUES (1, 1000)",
    ];
    if dialect == "sqlite" {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                url.parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .unwrap()
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        for sql in inserts {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for sql in inserts {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
}

#[tokio::test]
async fn old_rows_are_kept_and_claimed_and_two_hosts_share_a_check_name() {
    let base = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(base.path().join("store")).unwrap();
    for (url, _guard) in crate::support::store_urls(base.path()).await {
        let dialect = if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        };
        old_store_with_history(&url, dialect).await;

        let web1 = Store::open_as(&url, "web-1").await.unwrap();
        let api = web1
            .find_check("api")
            .await
            .unwrap()
            .expect("the old check is web-1's now");
        assert_eq!(api.id, 7, "{dialect}");
        assert_eq!(api.state, opswatch::store::CheckState::Down);
        let results = web1.list_results(7, 0, 10_000, 10).await.unwrap();
        assert_eq!(
            results.len(),
            1,
            "{dialect}: the rebuild lost check results"
        );
        assert!(
            web1.open_incident(7).await.unwrap().is_some(),
            "{dialect}: the rebuild lost the open incident"
        );
        assert_eq!(
            web1.list_series("memory.").await.unwrap(),
            vec!["memory.used_pct".to_owned()]
        );
        let points = web1
            .query_series("memory.used_pct", 0, 10_000)
            .await
            .unwrap();
        assert_eq!(points.len(), 1, "{dialect}: the rebuild lost samples");
        assert!(web1.find_condition("swap").await.unwrap().is_some());
        web1.probe(2000).await.unwrap();

        // Another host on the same store sees none of web-1's facts and may reuse its names.
        let web2 = Store::open_as(&url, "web-2").await.unwrap();
        assert!(web2.find_check("api").await.unwrap().is_none());
        assert!(web2.find_condition("swap").await.unwrap().is_none());
        assert!(web2.list_series("memory.").await.unwrap().is_empty());
        let api2 = web2.ensure_check("api", CheckKind::Tcp).await.unwrap();
        assert_ne!(api2.id, 7);
        web2.probe(2000).await.unwrap();
        let again = web1.ensure_check("api", CheckKind::Http).await.unwrap();
        assert_eq!(
            (again.id, again.kind),
            (7, CheckKind::Http),
            "{dialect}: one host's check took over the other's row"
        );
        web1.close().await;
        web2.close().await;
    }
}
