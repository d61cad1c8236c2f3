//! API lists page with a cursor (`next`): keyset on (time, id), so rows sharing one
//! millisecond are each returned exactly once, on SQLite and on PostgreSQL.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use opswatch::config::Config;
use opswatch::daemon::state::AppState;
use opswatch::rules::alert::Severity;
use opswatch::store::{NewAlert, NewDispute, NewReport, Store};
use serde_json::{Value, json};

use crate::support::store_urls;
use crate::support::web::Browser;

/// Every row of the lists below was made at this one millisecond.
const AT: i64 = 1_795_737_600_123;
const ROWS: usize = 250;

fn alert(key: &str) -> NewAlert {
    NewAlert {
        dedup_key: key.to_owned(),
        severity: Severity::Warning,
        source: "paging".to_owned(),
        kind: "test".to_owned(),
        title: key.to_owned(),
        value: None,
        threshold: None,
        hint: None,
        body: None,
        silenced: false,
    }
}

/// Follows `next` from `first`; returns each page's `key` values of the rows in `list`.
async fn walk(b: &mut Browser, first: &str, list: &str, key: &str) -> Vec<Vec<Value>> {
    let mut uri = first.to_owned();
    let mut pages = Vec::new();
    for _ in 0..10 {
        let answer = b.get(&uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        let page = answer.json();
        pages.push(
            page[list]
                .as_array()
                .unwrap_or_else(|| panic!("{uri}: no {list}: {page}"))
                .iter()
                .map(|row| row[key].clone())
                .collect(),
        );
        match page["next"].as_str() {
            Some(next) => uri = next.to_owned(),
            None => return pages,
        }
    }
    panic!("{first}: more than 10 pages");
}

/// Each value once, and how the rows fell into pages.
fn assert_each_once(what: &str, pages: &[Vec<Value>]) {
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50], "{what}: page sizes");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for v in pages.iter().flatten() {
        *seen.entry(v.to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), ROWS, "{what}: distinct rows over all pages");
    assert!(seen.values().all(|n| *n == 1), "{what}: a row came twice");
}

#[tokio::test]
async fn rows_of_one_millisecond_are_each_listed_once_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in store_urls(dir.path()).await {
        let store = Store::open(&url).await.unwrap();
        for i in 0..ROWS {
            store
                .record_alert(&alert(&format!("same-ms-{i}")), &[], AT)
                .await
                .unwrap();
            let body = json!({});
            let report = NewReport {
                host: "h",
                kind: "daily",
                created_ms: AT,
                occurrence_ms: None,
                summary: "same millisecond",
                body: &body,
                text: "t",
            };
            store.insert_report(&report).await.unwrap();
        }
        let disputes: Vec<NewDispute> = (0..ROWS)
            .map(|i| NewDispute {
                id: format!("D-{i}"),
                source: "http",
                fields: json!({ "n": i }),
                alert: alert(&format!("dispute-{i}")),
            })
            .collect();
        // One millisecond later: the disputes' own alerts stay out of the alerts' window.
        store
            .record_disputes(&disputes, None, &[], AT + 1)
            .await
            .unwrap();
        let config = Config::from_toml(&dir.path().join("o.toml"), "").unwrap();
        let app = AppState::new(config, store);
        let mut b = Browser::new(opswatch::web::router(app));
        let window = format!("since={AT}&until={}&limit=100", AT + 1);

        let alerts = walk(&mut b, &format!("/api/v1/alerts?{window}"), "alerts", "id").await;
        assert_each_once(&format!("{url} alerts"), &alerts);
        let reports = walk(
            &mut b,
            &format!("/api/v1/reports?{window}"),
            "reports",
            "id",
        )
        .await;
        assert_each_once(&format!("{url} reports"), &reports);
        let window_d = format!("since={}&until={}&limit=100", AT + 1, AT + 2);
        let disputes = walk(
            &mut b,
            &format!("/api/v1/disputes?{window_d}"),
            "disputes",
            "id",
        )
        .await;
        assert_each_once(&format!("{url} disputes"), &disputes);

        for bad in ["not-a-cursor", "00", &hex::encode("x.1")] {
            let answer = b.get(&format!("/api/v1/alerts?cursor={bad}")).await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{bad}: {}",
                answer.body
            );
            assert!(
                answer.json()["error"]["message"].is_string(),
                "{}",
                answer.body
            );
        }
        // A cursor of the disputes (text ids) on the alerts (integer ids) is refused too.
        let first = b.get(&format!("/api/v1/disputes?{window_d}")).await.json();
        let next = first["next"]
            .as_str()
            .unwrap()
            .replace("/disputes", "/alerts");
        assert_eq!(b.get(&next).await.status, StatusCode::BAD_REQUEST, "{next}");
    }
}
