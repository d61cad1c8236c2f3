//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! started here on a free port) against the real router on loopback with a seeded store.
//! Every page at desktop and phone width, with JavaScript on and off: nothing requested from
//! another origin, no console errors, the chart range switch works both ways. Screenshots go
//! to `target/screenshots/` (kept when the test fails, for a look).
//!
//! Needs Debian's `chromium` and `chromium-driver` (tests/run.sh installs them). Without them
//! the test prints a notice and passes, except with CI=true, where it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// `(label, width, height)`
const SIZES: &[(&str, u32, u32)] = &[("desktop", 1280, 900), ("phone", 375, 812)];

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Chrome's console log (`goog:loggingPrefs`), read with chromedriver's log endpoint.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

async fn connect(driver_url: &str, chromium: &PathBuf, javascript: bool) -> Client {
    let mut prefs = serde_json::Map::new();
    if !javascript {
        prefs.insert(
            "profile.managed_default_content_settings.javascript".into(),
            json!(2),
        );
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-background-networking",
                     "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"],
            "prefs": prefs,
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    // chromedriver takes a moment to listen after it was started.
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(connector.clone())
            .capabilities(caps.clone())
            .connect(driver_url)
            .await
        {
            Ok(c) => return c,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start a session: {last:?}");
}

/// Fails on any resource from another origin and on console errors since the last call.
async fn check_page(c: &Client, origin: &str, what: &str) {
    let names = c
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name)\
             .concat(Array.from(document.querySelectorAll('[src],link[href]'))\
             .map(e => e.src || e.href));",
            vec![],
        )
        .await;
    // With JavaScript off `execute` is refused; the markup is then checked instead.
    match names {
        Ok(Value::Array(names)) => {
            for n in names {
                let n = n.as_str().unwrap_or_default();
                assert!(
                    n.starts_with(origin),
                    "{what}: requested {n} from another origin"
                );
            }
        }
        _ => {
            let html = c.source().await.unwrap();
            for attr in ["src=\"", "href=\""] {
                for part in html.split(attr).skip(1) {
                    let target = part.split('"').next().unwrap_or_default();
                    assert!(
                        !target.starts_with("http") && !target.starts_with("//"),
                        "{what}: links {target} on another origin"
                    );
                }
            }
        }
    }
    let log = c.issue_cmd(BrowserLog).await.unwrap_or(Value::Null);
    if let Value::Array(entries) = log {
        let errors: Vec<&Value> = entries.iter().filter(|e| e["level"] == "SEVERE").collect();
        assert!(errors.is_empty(), "{what}: console errors {errors:?}");
    }
}

/// The whole page where the browser can measure it (JavaScript on), else the viewport.
async fn screenshot(c: &Client, dir: &std::path::Path, name: &str, (w, h): (u32, u32)) {
    let full = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64());
    if let Some(full) = full {
        // The window is taller than the page area by the browser's own frame.
        c.set_window_size(w, (full as u32 + 140).clamp(h, 6000))
            .await
            .unwrap();
    }
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    if full.is_some() {
        c.set_window_size(w, h).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_in_chromium_at_two_widths_with_and_without_javascript() {
    let (Some(chromium), Some(chromedriver)) = (
        find_tool(&["chromium", "chromium-browser", "google-chrome"]),
        find_tool(&["chromedriver"]),
    ) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "chromium and chromedriver are needed with CI=true (tests/run.sh installs them)"
            );
        }
        eprintln!(
            "SKIPPED: chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/o.db", dir.path().display());
    let app = crate::dashboard::app_on(
        &url,
        &crate::dashboard::config("[status_page]\nenabled = true\ntitle = \"Example status\"\n"),
    )
    .await;
    crate::dashboard::seed(&app).await;
    let now = opswatch::store::now_ms();
    app.health.record_store_ok(now);
    app.health.record_heartbeat(now);
    let report = app.store.list_reports(0, now + 1, 1).await.unwrap()[0].id;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(opswatch::web::serve(app.clone(), listener, async {
        let _ = stopped.await;
    }));

    let port = free_port();
    let _driver = Driver(
        Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let driver_url = format!("http://127.0.0.1:{port}");

    let pages = [
        ("overview", "/".to_owned()),
        ("endpoints", "/endpoints".to_owned()),
        ("endpoint", "/endpoints/api".to_owned()),
        (
            "endpoint-hostile",
            "/endpoints/%3Cscript%3Ealert%281%29%3C%2Fscript%3E".to_owned(),
        ),
        ("host", "/host".to_owned()),
        ("processes", "/processes".to_owned()),
        ("alerts", "/alerts".to_owned()),
        ("disputes", "/disputes".to_owned()),
        ("reports", "/reports".to_owned()),
        ("report", format!("/reports/{report}")),
        ("status", "/status".to_owned()),
    ];
    for javascript in [true, false] {
        let c = connect(&driver_url, &chromium, javascript).await;
        let js = if javascript { "js" } else { "nojs" };
        for (size, w, h) in SIZES {
            c.set_window_size(*w, *h).await.unwrap();
            for (name, path) in &pages {
                c.goto(&format!("{origin}{path}")).await.unwrap();
                let what = format!("{path} {size} {js}");
                let h1 = c.find(Locator::Css("h1")).await;
                assert!(h1.is_ok(), "{what}: no heading");
                // Proves the JavaScript setting took: our script marks the page when it runs.
                let marked = c
                    .execute(
                        "return document.documentElement.classList.contains('js');",
                        vec![],
                    )
                    .await
                    .unwrap();
                let expect_js = javascript && *name != "status";
                assert_eq!(marked, json!(expect_js), "{what}: script ran = {marked}");
                // A hostile check name that became markup would have opened an alert.
                assert!(c.get_alert_text().await.is_err(), "{what}: a script ran");
                check_page(&c, &origin, &what).await;
                screenshot(&c, &shots, &format!("{name}-{size}-{js}"), (*w, *h)).await;
            }
        }

        // The range switch: with JavaScript, in place (no reload: a marker survives);
        // without, a plain link to ?range=.
        c.set_window_size(1280, 900).await.unwrap();
        c.goto(&format!("{origin}/host?range=24h")).await.unwrap();
        if javascript {
            c.execute("window.__marker = 42;", vec![]).await.unwrap();
        }
        c.find(Locator::Css(".ranges a[href='/host?range=7d']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(
                ".ranges a[aria-current][href='/host?range=7d']",
            ))
            .await
            .unwrap_or_else(|e| panic!("range switch ({js}) did not land: {e}"));
        assert!(
            c.current_url()
                .await
                .unwrap()
                .as_str()
                .ends_with("/host?range=7d")
        );
        let heading = c
            .find(Locator::Css("#h-trends"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(heading, "Last 7d");
        if javascript {
            let marker = c.execute("return window.__marker;", vec![]).await.unwrap();
            assert_eq!(marker, json!(42), "the range switch reloaded the page");
        }
        check_page(&c, &origin, &format!("range switch {js}")).await;
        screenshot(&c, &shots, &format!("host-range-7d-{js}"), (1280, 900)).await;
        c.close().await.unwrap();
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
