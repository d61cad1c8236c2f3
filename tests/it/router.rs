//! The router driven in-process with `oneshot`, on a real SQLite store: what a client sees
//! before the background tasks have run, and how bad requests are answered.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

use opswatch::checks::CheckKind;
use opswatch::config::Config;
use opswatch::daemon::state::AppState;
use opswatch::store::Store;

async fn app(config_text: &str) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(&dir.path().join("o.toml"), config_text).unwrap();
    let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    (AppState::new(config, store), dir)
}

async fn call(app: &AppState, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(token) = auth {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let res = opswatch::web::router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health_is_503_until_the_store_was_probed_and_the_scheduler_ticked() {
    let (app, _dir) = app("").await;
    let (status, body) = call(&app, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reasons"][0], "store: not probed yet");
    assert_eq!(body["reasons"][1], "scheduler: heartbeat stalled");

    let now = opswatch::store::now_ms();
    app.store.probe(now).await.unwrap();
    app.health.record_store_ok(now);
    app.health.record_heartbeat(now);
    let (status, body) = call(&app, "GET", "/health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn api_errors_are_json_with_a_4xx_and_tokens_are_enforced() {
    let (app, _dir) = app("[[auth.tokens]]\nname = \"r\"\ntoken = \"reader-token-123\"\n").await;
    let (status, body) = call(&app, "GET", "/api/v1/checks", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = call(&app, "GET", "/api/v1/checks", Some("nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(&app, "GET", "/api/v1/checks", Some("reader-token-123")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["checks"], Value::Array(Vec::new()));
    let (status, body) = call(&app, "POST", "/api/v1/silences", Some("reader-token-123")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    for uri in [
        "/api/v1/alerts?limit=-1",
        "/api/v1/alerts?since=tomorrow-ish",
        "/api/v1/metrics/load?range=2d",
    ] {
        let (status, body) = call(&app, "GET", uri, Some("reader-token-123")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{uri}");
    }
    let (status, body) = call(
        &app,
        "GET",
        "/api/v1/checks/ghost/results",
        Some("reader-token-123"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // /health never needs a token; /metrics does once tokens are configured (issue 15).
    let (status, _) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, "GET", "/metrics", Some("reader-token-123")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_check_removed_from_the_config_no_longer_shows_as_current() {
    let (app, _dir) = app("[[http]]\nname = \"kept\"\nurl = \"http://127.0.0.1:9/\"\n").await;
    app.store
        .ensure_check("kept", CheckKind::Http)
        .await
        .unwrap();
    let removed = app
        .store
        .ensure_check("removed", CheckKind::Http)
        .await
        .unwrap();
    // It was down when the operator removed it.
    let mut down = removed.clone();
    down.state = opswatch::store::CheckState::Down;
    let result = opswatch::store::ResultRow {
        at_ms: 1,
        ok: false,
        latency_ms: None,
        status_code: None,
        error_kind: Some("connect".to_owned()),
        error: Some("refused".to_owned()),
        cert_expires_ms: None,
    };
    app.store
        .record_check_outcome(
            &removed,
            &down,
            &result,
            &opswatch::store::IncidentChange::None,
            None,
            &[],
        )
        .await
        .unwrap();
    let (status, body) = call(&app, "GET", "/api/v1/status", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok", "{body}");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kept"]);
}

#[tokio::test]
async fn stored_reports_are_listed_newest_first_and_returned_whole() {
    let (app, _dir) = app("").await;
    let now = opswatch::store::now_ms();
    let body = serde_json::json!({"findings": ["disk 91 %"]});
    for (kind, at, occurrence) in [
        ("daily", now - 2_000, Some(now - 2_000)),
        ("db", now - 1_000, None),
    ] {
        let report = opswatch::store::NewReport {
            host: "web-1",
            kind,
            created_ms: at,
            occurrence_ms: occurrence,
            summary: "1 finding",
            body: &body,
            text: "disk 91 %",
        };
        assert!(app.store.insert_report(&report).await.unwrap().is_some());
    }
    // The same scheduled occurrence is never stored (and so never sent) twice.
    let again = opswatch::store::NewReport {
        host: "web-1",
        kind: "daily",
        created_ms: now,
        occurrence_ms: Some(now - 2_000),
        summary: "again",
        body: &body,
        text: "again",
    };
    assert_eq!(app.store.insert_report(&again).await.unwrap(), None);

    let (status, list) = call(&app, "GET", "/api/v1/reports", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let kinds: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["db", "daily"]);
    let id = list["reports"][1]["id"].as_i64().unwrap();
    let (status, one) = call(&app, "GET", &format!("/api/v1/reports/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["body"]["findings"][0], "disk 91 %");
    assert_eq!(one["text"], "disk 91 %");

    let (status, err) = call(&app, "GET", "/api/v1/reports/x", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "bad_request");
    let (status, err) = call(&app, "GET", "/api/v1/reports/999999", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
}
