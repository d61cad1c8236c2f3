//! The API's gate (token or session, read or write scope, CSRF on session writes), its error
//! answers on every route, paging, and the OpenAPI document against the router.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::web::{Browser, app};
use opswatch::daemon::state::AppState;

const TOKENS: &str = "[[auth.tokens]]\nname = \"reader\"\ntoken = \"read-token-0123456789\"\n\
                      [[auth.tokens]]\nname = \"deployer\"\ntoken = \"write-token-0123456789\"\nscope = \"write\"\n";

fn users() -> String {
    let hash = opswatch::web::auth::password::hash_password("pw-of-admin").unwrap();
    format!("[[auth.users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n")
}

fn silence_body() -> String {
    json!({"check": "api", "duration": "1h", "comment": "deploy"}).to_string()
}

async fn post_json(
    b: &mut Browser,
    uri: &str,
    headers: &[(&str, &str)],
    body: String,
) -> crate::support::web::Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    b.send("POST", uri, &all, Body::from(body)).await
}

#[tokio::test]
async fn tokens_and_sessions_open_the_api_with_their_scope() {
    let (app, _dir) = app(&format!("{TOKENS}{}", users())).await;
    let mut b = Browser::new(opswatch::web::router(app.clone()));

    let none = b.get("/api/v1/checks").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json()["error"]["code"], "unauthorized");
    let read = [("authorization", "Bearer read-token-0123456789")];
    let write = [("authorization", "Bearer write-token-0123456789")];
    assert_eq!(
        b.send("GET", "/api/v1/checks", &read, Body::empty())
            .await
            .status,
        StatusCode::OK
    );
    let wrong = [("authorization", "Bearer read-token-012345678")];
    assert_eq!(
        b.send("GET", "/api/v1/checks", &wrong, Body::empty())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Read scope may not write; write scope may.
    let r = post_json(&mut b, "/api/v1/silences", &read, silence_body()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );
    let r = post_json(&mut b, "/api/v1/silences", &write, silence_body()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["silence"]["created_by"], "deployer");

    // A session reads; it writes only with the session's X-CSRF-Token, from the same origin.
    assert_eq!(
        b.log_in("admin", "pw-of-admin").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(b.get("/api/v1/checks").await.status, StatusCode::OK);
    let r = post_json(&mut b, "/api/v1/silences", &[], silence_body()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (StatusCode::FORBIDDEN, json!("csrf"))
    );
    let csrf = opswatch::web::auth::session::csrf_for(&b.cookies["opswatch_session"].clone());
    let r = post_json(
        &mut b,
        "/api/v1/silences",
        &[("x-csrf-token", &csrf), ("sec-fetch-site", "cross-site")],
        silence_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_json(
        &mut b,
        "/api/v1/silences",
        &[("x-csrf-token", &csrf), ("origin", "http://opswatch.test")],
        silence_body(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.json()["silence"]["created_by"], "admin");

    // /metrics: a token, not a session.
    assert_eq!(b.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b.send("GET", "/metrics", &read, Body::empty()).await.status,
        StatusCode::OK
    );
    assert!(!b.get("/health").await.status.is_client_error());
}

#[tokio::test]
async fn public_metrics_and_users_without_tokens() {
    let (app, _dir) = app(&format!("{TOKENS}[auth]\npublic_metrics = true\n")).await;
    let mut b = Browser::new(opswatch::web::router(app.clone()));
    assert_eq!(b.get("/metrics").await.status, StatusCode::OK);

    // Users only: the API needs the session.
    let (app, _dir) = crate::support::web::app(&users()).await;
    let mut b = Browser::new(opswatch::web::router(app.clone()));
    assert_eq!(
        b.get("/api/v1/status").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.get("/metrics").await.status,
        StatusCode::OK,
        "no tokens: /metrics open"
    );
    b.log_in("admin", "pw-of-admin").await;
    assert_eq!(b.get("/api/v1/status").await.status, StatusCode::OK);
}

/// Paths of the API in the router. axum has no public route listing; its `Debug` output
/// names every path (and the nest fallbacks, which are not routes).
fn router_paths(app: &AppState) -> BTreeSet<String> {
    let debug = format!("{:?}", opswatch::web::router(app.clone()));
    let mut paths = BTreeSet::new();
    for piece in debug.split('"') {
        if let Some(p) = piece.strip_prefix("/api/v1/")
            && !piece.contains("__private__")
        {
            paths.insert(format!("/{p}"));
        }
    }
    paths
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "ghost")
        .replace("{id}", "424242")
        .replace("{metric}", "load")
}

/// The methods the router answers on `path`, from the `Allow` header of a 405.
async fn router_methods(b: &mut Browser, path: &str) -> BTreeSet<String> {
    let r = b
        .send(
            "PUT",
            &format!("/api/v1{}", concrete(path)),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{path}: {}",
        r.body
    );
    assert_eq!(r.json()["error"]["code"], "method_not_allowed", "{path}");
    r.header("allow")
        .unwrap_or_else(|| panic!("{path}: 405 without Allow"))
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| m != "head")
        .collect()
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_every_documented_route_exists() {
    let (app, _dir) = app("").await;
    let mut b = Browser::new(opswatch::web::router(app.clone()));
    let doc = b.get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "opswatch_session");

    // Every schema the document refers to is in it.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.iter().any(|r| r.ends_with("/LoggedAlert")), "{all:?}");
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} is not in the document"
        );
    }

    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed = router_paths(&app);
    assert!(routed.len() >= 12, "{routed:?}");
    assert_eq!(routed, documented, "router paths vs document paths");
    for path in &documented {
        let in_doc: BTreeSet<String> = doc["paths"][path]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            router_methods(&mut b, path).await,
            in_doc,
            "methods of {path}"
        );
        for (method, op) in doc["paths"][path].as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: no operationId"
            );
            assert!(
                op["responses"]["200"].is_object()
                    || op["responses"]["201"].is_object()
                    || op["responses"]["204"].is_object(),
                "{method} {path}: no success answer"
            );
            if path != "/openapi.json" {
                assert_eq!(
                    op["responses"]["400"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_route_answers_bad_input_with_a_4xx_json_error() {
    let (app, _dir) = app(TOKENS).await;
    let mut b = Browser::new(opswatch::web::router(app.clone()));
    let write = [("authorization", "Bearer write-token-0123456789")];
    let doc = b.get("/api/v1/openapi.json").await.json();
    let expect_error = |status: StatusCode, body: &Value, want: StatusCode, what: &str| {
        assert_eq!(status, want, "{what}: {body}");
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{what}: {body}"
        );
    };
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if path == "/openapi.json" {
            continue;
        }
        let uri = format!("/api/v1{}", concrete(path));
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_ascii_uppercase();
            // Unknown parameter, unknown host.
            for (query, want) in [
                ("?bogus=1", StatusCode::BAD_REQUEST),
                ("?host=no-such-host", StatusCode::NOT_FOUND),
            ] {
                if m != "GET" {
                    continue;
                }
                let r = b
                    .send(&m, &format!("{uri}{query}"), &write, Body::empty())
                    .await;
                // A route with a missing resource may answer 404 first; both are JSON 4xx.
                let want = if r.status == StatusCode::NOT_FOUND {
                    StatusCode::NOT_FOUND
                } else {
                    want
                };
                expect_error(r.status, &r.json(), want, &format!("{m} {uri}{query}"));
            }
            // No token at all.
            let r = b.send(&m, &uri, &[], Body::empty()).await;
            expect_error(
                r.status,
                &r.json(),
                StatusCode::UNAUTHORIZED,
                &format!("{m} {uri} without a token"),
            );
        }
    }
    for (uri, want) in [
        ("/api/v1/alerts?since=yesterday", StatusCode::BAD_REQUEST),
        ("/api/v1/alerts?limit=0", StatusCode::BAD_REQUEST),
        (
            "/api/v1/reports?since=2000&until=1000",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/reports/abc", StatusCode::BAD_REQUEST),
        ("/api/v1/reports/99", StatusCode::NOT_FOUND),
        ("/api/v1/checks/ghost/results", StatusCode::NOT_FOUND),
        (
            "/api/v1/checks/ghost/uptime?range=2d",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v1/metrics/load?range=2d", StatusCode::BAD_REQUEST),
        ("/api/v1/metrics/nothing", StatusCode::NOT_FOUND),
        ("/api/v1/no/such/route", StatusCode::NOT_FOUND),
    ] {
        let r = b.send("GET", uri, &write, Body::empty()).await;
        expect_error(r.status, &r.json(), want, uri);
    }
    for body in [
        "",
        "{",
        "[]",
        "{\"comment\":\"x\"}",
        "{\"duration\":\"1h\",\"comment\":\"\"}",
        "{\"duration\":\"1h\",\"comment\":\"x\",\"extra\":1}",
    ] {
        let r = post_json(&mut b, "/api/v1/silences", &write, body.to_owned()).await;
        expect_error(r.status, &r.json(), StatusCode::BAD_REQUEST, body);
    }
    let r = b
        .send("DELETE", "/api/v1/silences/x", &write, Body::empty())
        .await;
    expect_error(
        r.status,
        &r.json(),
        StatusCode::BAD_REQUEST,
        "DELETE silences/x",
    );
    let r = b
        .send("DELETE", "/api/v1/silences/77", &write, Body::empty())
        .await;
    expect_error(
        r.status,
        &r.json(),
        StatusCode::NOT_FOUND,
        "DELETE silences/77",
    );
    let r = b
        .send("DELETE", "/api/v1/reports", &write, Body::empty())
        .await;
    expect_error(
        r.status,
        &r.json(),
        StatusCode::METHOD_NOT_ALLOWED,
        "DELETE reports",
    );
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
}

#[tokio::test]
async fn lists_page_with_next_and_clamp_a_limit_over_the_maximum() {
    let (app, _dir) = app("").await;
    let now = opswatch::store::now_ms();
    let body = json!({});
    for i in 0..5 {
        let report = opswatch::store::NewReport {
            host: "h",
            kind: "daily",
            created_ms: now - 10_000 + i * 1000,
            occurrence_ms: None,
            summary: "s",
            body: &body,
            text: "t",
        };
        app.store.insert_report(&report).await.unwrap();
    }
    let mut b = Browser::new(opswatch::web::router(app.clone()));
    let mut uri = "/api/v1/reports?limit=2".to_owned();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let page = b.get(&uri).await.json();
        assert_eq!(page["limit"], 2);
        seen.extend(
            page["reports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["created_ms"].as_i64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => uri = next.to_owned(),
            None => break,
        }
    }
    let want: Vec<i64> = (0..5).rev().map(|i| now - 10_000 + i * 1000).collect();
    assert_eq!(seen, want, "every report once, newest first");

    let clamped = b.get("/api/v1/reports?limit=5000").await.json();
    assert_eq!(
        (clamped["limit"].clone(), clamped["limit_clamped"].clone()),
        (json!(1000), json!(true))
    );
    assert!(clamped["next"].is_null());
}
