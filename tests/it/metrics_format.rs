//! `/metrics` speaks both text formats: the Prometheus text format 0.0.4 by default (what
//! `curl` and `promtool check metrics` read) and OpenMetrics when the `Accept` header asks.
//! Each answer goes through a real parser, and through `promtool check metrics` when it is
//! installed (Debian package `prometheus`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use opswatch::config::Config;
use opswatch::daemon::state::AppState;
use opswatch::store::Store;

async fn scrape(app: &AppState, accept: Option<&str>) -> (String, String) {
    let mut req = Request::builder().uri("/metrics");
    if let Some(accept) = accept {
        req = req.header(header::ACCEPT, accept);
    }
    let res = opswatch::web::router(app.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let content_type = res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (content_type, String::from_utf8(bytes.to_vec()).unwrap())
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not parseable: {e}\n{text}"))
}

/// `promtool check metrics` on `text`, or `None` when promtool is not installed.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

async fn app() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    let app = AppState::new(Config::default(), store);
    // A counter and a labelled gauge with samples, so every family kind is exposed.
    app.metrics
        .alerts_sent
        .get_or_create(&opswatch::daemon::metrics::AlertLabels {
            channel: "telegram".to_owned(),
            severity: "critical".to_owned(),
        })
        .inc();
    app.metrics
        .check_up
        .get_or_create(&opswatch::daemon::metrics::CheckLabels {
            check: "db".to_owned(),
            kind: "tcp".to_owned(),
        })
        .set(1);
    (app, dir)
}

#[tokio::test]
async fn plain_scrapers_get_the_prometheus_text_format_that_promtool_accepts() {
    let (app, _dir) = app().await;
    for accept in [None, Some("*/*"), Some("text/plain;version=0.0.4")] {
        let (content_type, text) = scrape(&app, accept).await;
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(!text.contains("# EOF"), "{text}");
        assert!(!text.contains(" info\n"), "no info type in 0.0.4:\n{text}");
        assert!(
            text.contains("# TYPE opswatch_build_info gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE opswatch_alerts_sent_total counter\n"),
            "a counter's family is named after its samples:\n{text}"
        );
        let scrape = parse(&text);
        let build = scrape
            .samples
            .iter()
            .find(|s| s.metric == "opswatch_build_info")
            .expect("build info");
        assert_eq!(build.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
        let sent = scrape
            .samples
            .iter()
            .find(|s| s.metric == "opswatch_alerts_sent_total")
            .expect("alerts sent");
        assert!(
            matches!(sent.value, prometheus_parse::Value::Counter(v) if v == 1.0),
            "{:?}",
            sent.value
        );
        match promtool(&text) {
            Some((ok, said)) => assert!(ok, "promtool check metrics refused it: {said}\n{text}"),
            None => eprintln!("notice: promtool is not installed; skipping its check"),
        }
    }
}

#[tokio::test]
async fn scrapers_that_ask_for_openmetrics_get_it() {
    let (app, _dir) = app().await;
    let (content_type, text) = scrape(
        &app,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE opswatch_build info\n"), "{text}");
    assert!(
        text.contains("# TYPE opswatch_alerts_sent counter\n"),
        "{text}"
    );
    let scrape = parse(&text);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "opswatch_check_up" && s.labels.get("kind") == Some("tcp")),
        "{text}"
    );
}
