//! The dashboard pages through the real router, on a seeded real store (SQLite, and
//! PostgreSQL when available): status, content type, the facts each page must show, escaping
//! of hostile names, empty states, and the public status page.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

use opswatch::checks::pm2::Pm2App;
use opswatch::checks::system::{
    HostSnapshot, LoadAvg, MemoryUsage, MountUsage, ProcessUsage, SwapUsage,
};
use opswatch::checks::systemd::UnitStatus;
use opswatch::config::Config;
use opswatch::daemon::live::Reading;
use opswatch::daemon::state::AppState;
use opswatch::rules::alert::Severity;
use opswatch::store::{IncidentChange, NewAlert, NewReport, ResultRow, Store, now_ms};

const HOSTILE: &str = "<script>alert(1)</script>";
const MIN: i64 = 60_000;

pub(crate) fn config(extra: &str) -> String {
    format!(
        "[[http]]\nname = \"api\"\nurl = \"https://api.example.test/health\"\n\n\
         [[http]]\nname = \"{HOSTILE}\"\nurl = \"https://evil.example.test/\"\n\n{extra}"
    )
}

pub(crate) async fn app_on(url: &str, config_text: &str) -> AppState {
    let config = Config::from_toml(std::path::Path::new("o.toml"), config_text).unwrap();
    let store = Store::open(url).await.unwrap();
    AppState::new(config, store)
}

struct Page {
    status: StatusCode,
    content_type: String,
    cache_control: String,
    location: String,
    body: String,
}

async fn send(app: &AppState, req: Request<Body>) -> Page {
    let res = opswatch::web::router(app.clone())
        .oneshot(req)
        .await
        .unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, cache_control, location) = (
        header("content-type"),
        header("cache-control"),
        header("location"),
    );
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        content_type,
        cache_control,
        location,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &AppState, uri: &str) -> Page {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn assert_html(page: &Page, uri: &str) {
    assert_eq!(page.status, StatusCode::OK, "{uri}: {}", page.body);
    assert_eq!(page.content_type, "text/html; charset=utf-8", "{uri}");
    assert!(page.body.starts_with("<!doctype html>"), "{uri}");
}

/// Results for both checks over the last two days, one outage of `api` that is still open,
/// alerts with deliveries, a report, host samples and a live host reading.
pub(crate) async fn seed(app: &AppState) {
    let now = now_ms();
    let channels = vec!["telegram".to_owned()];
    for name in ["api", HOSTILE] {
        let mut prev = app
            .store
            .ensure_check(name, opswatch::checks::CheckKind::Http)
            .await
            .unwrap();
        for i in (1..=48 * 12).rev() {
            let at = now - i * 5 * MIN;
            let failing = name == "api" && i <= 3;
            let mut check = prev.clone();
            let mut change = IncidentChange::None;
            let mut alert = None;
            if failing && check.state != opswatch::store::CheckState::Down {
                check.state = opswatch::store::CheckState::Down;
                check.last_change_ms = Some(at);
                check.last_error = Some("connect: connection refused".into());
                change = IncidentChange::Open {
                    cause: "connection refused".into(),
                    notified: true,
                };
                alert = Some(NewAlert {
                    dedup_key: format!("test:{name}:down"),
                    severity: Severity::Critical,
                    source: name.into(),
                    kind: "http".into(),
                    title: format!("{name} is DOWN"),
                    value: Some("connection refused".into()),
                    threshold: Some("2 failures".into()),
                    hint: None,
                    body: None,
                    silenced: false,
                });
            } else if !failing && check.state != opswatch::store::CheckState::Up {
                check.state = opswatch::store::CheckState::Up;
                check.last_change_ms = Some(at);
                check.last_error = None;
            }
            let result = ResultRow {
                at_ms: at,
                ok: !failing,
                latency_ms: (!failing).then_some(100 + (i % 7) * 10),
                status_code: (!failing).then_some(200),
                error_kind: failing.then(|| "connect".into()),
                error: failing.then(|| "connection refused".into()),
                cert_expires_ms: Some(now + 40 * 86_400_000),
            };
            app.store
                .record_check_outcome(&prev, &check, &result, &change, alert.as_ref(), &channels)
                .await
                .unwrap();
            prev = check;
        }
    }
    let warn = NewAlert {
        dedup_key: format!("test:{HOSTILE}:warn"),
        severity: Severity::Warning,
        source: HOSTILE.into(),
        kind: "system".into(),
        title: format!("Disk {HOSTILE} is 85 % full"),
        value: None,
        threshold: None,
        hint: None,
        body: None,
        silenced: false,
    };
    app.store
        .record_alert(&warn, &channels, now - MIN)
        .await
        .unwrap();
    let body = serde_json::json!({ "ok": true });
    app.store
        .insert_report(&NewReport {
            host: "web-1",
            kind: "daily",
            created_ms: now - 3_600_000,
            occurrence_ms: None,
            summary: "all endpoints up 99.9 %",
            body: &body,
            text: "Daily summary\nnew users: 12",
        })
        .await
        .unwrap();
    for i in (0..120).rev() {
        let at = now - i * MIN;
        app.store
            .record_samples(
                at,
                &[
                    ("memory.used_pct".into(), 40.0 + (i % 10) as f64),
                    ("swap.used_pct".into(), 5.0),
                    ("disk.used_pct:/".into(), 71.0),
                    ("load.1".into(), 0.5),
                    ("load.5".into(), 0.4),
                    ("load.15".into(), 0.3),
                ],
            )
            .await
            .unwrap();
    }
    // A crash-looping PM2 app (restarts climbing every minute), a healthy one, a unit.
    for i in (0..30).rev() {
        let at = now - i * MIN;
        app.store
            .record_samples(
                at,
                &[
                    ("pm2.restarts:worker#1".into(), (30 - i) as f64 * 2.0),
                    ("pm2.restarts:web#0".into(), 3.0),
                ],
            )
            .await
            .unwrap();
    }
    let pm2 = |name: &str, id: i64, status: &str, restarts: i64| Pm2App {
        name: name.into(),
        pm_id: id,
        status: status.into(),
        pid: (status == "online").then_some(1000 + id),
        cpu_pct: 2.5,
        memory_bytes: 80 << 20,
        uptime_ms: (status == "online").then_some(3_600_000),
        restarts,
        unstable_restarts: 0,
        exec_mode: "fork_mode".into(),
    };
    app.live.set_pm2(Reading {
        at_ms: now,
        error: None,
        items: vec![pm2("web", 0, "online", 3), pm2("worker", 1, "errored", 60)],
    });
    app.live.set_systemd(Reading {
        at_ms: now,
        error: None,
        items: vec![UnitStatus {
            unit: "nginx.service".into(),
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            n_restarts: Some(0),
            main_pid: Some(77),
            memory_bytes: Some(12 << 20),
            active_enter_ms: Some(now - 86_400_000),
        }],
    });
    app.live.set_host(HostSnapshot {
        at_ms: now,
        mounts: vec![MountUsage {
            mount: "/".into(),
            device: "/dev/vda1".into(),
            fstype: "ext4".into(),
            total_bytes: 100 << 30,
            used_bytes: 71 << 30,
            avail_bytes: 29 << 30,
            used_pct: 71.0,
            inodes_total: 1000,
            inodes_used: 100,
            inode_used_pct: Some(10.0),
        }],
        memory: MemoryUsage {
            total_bytes: 4 << 30,
            available_bytes: 2 << 30,
            used_pct: 50.0,
        },
        swap: Some(SwapUsage {
            total_bytes: 1 << 30,
            used_bytes: 50 << 20,
            used_pct: 4.9,
        }),
        load: LoadAvg {
            one: 0.5,
            five: 0.4,
            fifteen: 0.3,
        },
        cpus: 2,
        uptime_s: 86_400.0,
        top_memory: vec![ProcessUsage {
            pid: 42,
            name: "postgres".into(),
            rss_bytes: 300 << 20,
            cpu_pct: 1.5,
        }],
        top_cpu: vec![ProcessUsage {
            pid: 43,
            name: HOSTILE.into(),
            rss_bytes: 10 << 20,
            cpu_pct: 12.0,
        }],
    });
}

fn assert_escaped(uri: &str, body: &str) {
    assert!(
        !body.contains(HOSTILE),
        "{uri}: the hostile name reached the page unescaped"
    );
}

#[tokio::test]
async fn every_page_shows_its_facts_and_escapes_hostile_names() {
    let dir = tempfile::tempdir().unwrap();
    for (url, _db) in crate::support::store_urls(dir.path()).await {
        let app = app_on(&url, &config("")).await;
        seed(&app).await;

        let overview = get(&app, "/").await;
        assert_html(&overview, "/");
        let b = &overview.body;
        assert!(b.contains("Needs attention"), "{url}: {b}");
        assert!(b.contains("api is down"), "{url}");
        assert!(b.contains("connection refused"), "{url}");
        assert!(b.contains("Disk /"), "gauge per mount: {url}");
        assert!(b.contains("warning above 80"), "thresholds shown: {url}");
        assert!(
            b.contains("alert(1)"),
            "the hostile check is listed, escaped: {url}"
        );
        assert!(b.contains("api is DOWN"), "last alerts: {url}");
        assert!(b.contains("No disputes source configured"), "{url}");
        assert!(b.contains("href=\"/api/v1/status\""), "JSON twin: {url}");
        assert!(b.contains(opswatch::web::dashboard::host_name()), "{url}");
        assert_escaped("/", b);

        let list = get(&app, "/endpoints").await;
        assert_html(&list, "/endpoints");
        assert!(
            list.body
                .contains("/endpoints/%3Cscript%3Ealert%281%29%3C%2Fscript%3E")
        );
        assert_escaped("/endpoints", &list.body);

        let one = get(&app, "/endpoints/api").await;
        assert_html(&one, "/endpoints/api");
        let b = &one.body;
        for fact in [
            "24 h",
            "90 d",
            "Daily uptime, last 90 days",
            "p50–p95",
            "still open",
            "expires",
            "connect: connection refused",
            "/api/v1/checks/api/results",
        ] {
            assert!(b.contains(fact), "{url}: /endpoints/api lacks {fact:?}");
        }
        let hostile = get(&app, "/endpoints/%3Cscript%3Ealert%281%29%3C%2Fscript%3E").await;
        assert_html(&hostile, "hostile endpoint");
        assert_escaped("hostile endpoint", &hostile.body);
        for range in ["7d", "30d", "90d"] {
            let p = get(&app, &format!("/endpoints/api?range={range}")).await;
            assert_html(&p, range);
        }

        let host = get(&app, "/host?range=6h").await;
        assert_html(&host, "/host");
        let b = &host.body;
        assert!(b.contains("Memory used"), "{url}");
        assert!(b.contains("class=\"thr warn\""), "threshold line: {url}");
        assert!(b.contains("postgres"), "top processes: {url}");
        assert!(b.contains("aria-current=\"true\">6h"), "{url}");
        assert_escaped("/host", b);

        let alerts = get(&app, "/alerts").await;
        assert_html(&alerts, "/alerts");
        assert!(alerts.body.contains("pending"), "delivery state: {url}");
        assert!(alerts.body.contains("telegram"), "{url}");
        assert_escaped("/alerts", &alerts.body);

        let reports = get(&app, "/reports").await;
        assert_html(&reports, "/reports");
        assert!(reports.body.contains("all endpoints up 99.9 %"), "{url}");
        let id: String = reports
            .body
            .split("href=\"/reports/")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let report = get(&app, &format!("/reports/{id}")).await;
        assert_html(&report, "/reports/{id}");
        assert!(report.body.contains("new users: 12"), "{url}");

        let procs = get(&app, "/processes").await;
        assert_html(&procs, "/processes");
        for fact in [
            "web #0",
            "worker #1",
            "crash loop",
            "nginx.service",
            "active (running)",
        ] {
            assert!(
                procs.body.contains(fact),
                "{url}: /processes lacks {fact:?}"
            );
        }
        assert!(
            overview.body.contains("worker #1 is in a crash loop"),
            "{url}"
        );
        assert!(
            !overview.body.contains("web #0"),
            "a healthy process is not on the overview"
        );
        assert_html(&get(&app, "/disputes").await, "/disputes");
        app.store.close().await;
    }
}

#[tokio::test]
async fn empty_store_pages_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let app = app_on(&url, "").await;
    let now = now_ms();
    app.health.record_store_ok(now);
    app.health.record_heartbeat(now);
    let expect = [
        ("/", "All clear"),
        ("/", "No HTTP checks configured"),
        ("/", "No host reading yet"),
        ("/endpoints", "No HTTP checks configured"),
        ("/host", "No data in this range."),
        ("/processes", "No PM2 apps or systemd units watched yet"),
        ("/alerts", "No alerts in the last 30 days."),
        ("/disputes", "No disputes source configured"),
        ("/reports", "No reports yet."),
    ];
    for (uri, text) in expect {
        let page = get(&app, uri).await;
        assert_html(&page, uri);
        assert!(
            page.body.contains(text),
            "{uri} lacks {text:?}: {}",
            page.body
        );
    }
    for (uri, status) in [
        ("/endpoints/nope", StatusCode::NOT_FOUND),
        ("/reports/999", StatusCode::NOT_FOUND),
        ("/reports/abc", StatusCode::NOT_FOUND),
        ("/host?range=2d", StatusCode::BAD_REQUEST),
        ("/status", StatusCode::NOT_FOUND),
        ("/no-such-page", StatusCode::NOT_FOUND),
    ] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, status, "{uri}");
    }
    let missing = get(&app, "/no-such-page").await;
    assert!(missing.body.contains("There is no page at /no-such-page."));
    assert_eq!(missing.content_type, "text/html; charset=utf-8");
    let api = get(&app, "/api/v1/nope").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(
        api.content_type.starts_with("application/json"),
        "API 404s stay JSON"
    );
}

#[tokio::test]
async fn status_page_is_public_cached_and_shows_only_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let app = app_on(
        &url,
        &config(
            "[status_page]\nenabled = true\ntitle = \"Example & Co status\"\nchecks = [\"api\"]\n",
        ),
    )
    .await;
    seed(&app).await;
    let page = get(&app, "/status").await;
    assert_html(&page, "/status");
    assert_eq!(page.cache_control, "public, max-age=30");
    let b = &page.body;
    assert!(b.contains("Example &#38; Co status") || b.contains("Example &amp; Co status"));
    assert!(b.contains("down since"), "open incident shown");
    assert!(b.contains("Some systems are having problems"));
    assert!(
        !b.contains("script"),
        "only the listed checks, and no script"
    );
    assert!(
        !b.contains(opswatch::web::dashboard::host_name()),
        "nothing of the host"
    );
    assert!(!b.contains("/api/v1"), "no links into the API");
}

#[tokio::test]
async fn static_files_are_hashed_immutable_and_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let app = app_on(&url, "").await;
    let page = get(&app, "/").await;
    let css = page
        .body
        .split("href=\"/static/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        css.starts_with("dashboard.") && css.ends_with(".css"),
        "{css}"
    );
    assert!(page.body.contains("<script src=\"/static/dashboard."));
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no other origin"
    );
    let req = Request::get(format!("/static/{css}"))
        .header("accept-encoding", "gzip")
        .body(Body::empty())
        .unwrap();
    let res = opswatch::web::router(app.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert_eq!(
        get(&app, "/static/dashboard.0000.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn silences_are_added_and_ended_from_the_alerts_page() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let app = app_on(&url, "").await;
    let form = |body: &str| {
        Request::post("/alerts/silences")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "127.0.0.1:7070")
            .header("origin", "http://127.0.0.1:7070")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let added = send(
        &app,
        form("check=api&kind=&severity=&duration=2h&comment=deploying+%3Cb%3E"),
    )
    .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location, "/alerts#silences");
    let silences = app.store.current_silences(now_ms()).await.unwrap();
    assert_eq!(silences.len(), 1);
    assert_eq!(silences[0].check_name.as_deref(), Some("api"));
    let page = get(&app, "/alerts").await;
    assert!(
        page.body.contains("deploying &#60;b&#62;") || page.body.contains("deploying &lt;b&gt;")
    );
    assert!(!page.body.contains("deploying <b>"));

    let bad = send(&app, form("check=api&duration=2h&comment=")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("Comment: say why"), "{}", bad.body);

    let cross_site = Request::post(format!("/alerts/silences/{}/end", silences[0].id))
        .header("host", "127.0.0.1:7070")
        .header("origin", "https://evil.example")
        .body(Body::empty())
        .unwrap();
    // Refused by the session layer in front of every page (403), before the form's own check.
    assert_eq!(send(&app, cross_site).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store.current_silences(now_ms()).await.unwrap().len(), 1);

    let end = Request::post(format!("/alerts/silences/{}/end", silences[0].id))
        .header("host", "127.0.0.1:7070")
        .header("origin", "http://127.0.0.1:7070")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, end).await.status, StatusCode::SEE_OTHER);
    assert!(
        app.store
            .current_silences(now_ms())
            .await
            .unwrap()
            .is_empty()
    );
}
