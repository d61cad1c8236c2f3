//! Host metrics as stored history: sampled by the real binary on this host, read back as
//! chart series through the API, on both backends.

use std::time::Duration;

use crate::support::app::{TestApp, spawn_app};
use crate::support::eventually;
use opswatch::daemon::clock::Clock;
use serde_json::Value;

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = reqwest::get(app.url(path)).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn samples_are_stored_and_charted_on_both_backends() {
    let base = tempfile::tempdir().unwrap();
    for (url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let app = spawn_app(
            dir.path(),
            &format!(
                "[storage]\nurl = \"{url}\"\n[system]\nsample_every = \"1s\"\n[pm2]\nenabled = false\n"
            ), Clock::System).await;

        let memory = eventually(Duration::from_secs(20), || async {
            let (status, body) = get(&app, "/api/v1/metrics/memory?range=1h").await;
            assert_eq!(status, 200, "{body}");
            let points = body["series"][0]["points"].as_array()?.len();
            (points >= 2).then_some(body)
        })
        .await
        .expect("memory samples never showed up");
        assert_eq!(memory["series"][0]["name"], "memory.used_pct");
        let p = &memory["series"][0]["points"][0];
        let (min, avg, max) = (
            p["min"].as_f64().unwrap(),
            p["avg"].as_f64().unwrap(),
            p["max"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= avg && avg <= max && max <= 100.0, "{p}");

        let (status, load) = get(&app, "/api/v1/metrics/load?range=6h").await;
        assert_eq!(status, 200);
        let names: Vec<&str> = load["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["load.1", "load.5", "load.15"]);

        let (status, disk) = get(&app, "/api/v1/metrics/disk?range=24h").await;
        assert_eq!(status, 200);
        let mounts: Vec<&str> = disk["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert!(
            mounts.iter().any(|m| m.starts_with("disk.used_pct:/")),
            "{mounts:?}"
        );
        assert!(
            mounts
                .iter()
                .all(|m| !m.contains("/proc") && !m.contains("/sys")),
            "pseudo filesystems: {mounts:?}"
        );

        // A full series name works too, and bad input is a JSON 4xx.
        let (status, _) = get(&app, "/api/v1/metrics/memory.used_pct?range=1h").await;
        assert_eq!(status, 200);
        let (status, body) = get(&app, "/api/v1/metrics/memory?range=2w").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("bad_request"))
        );
        let (status, body) = get(&app, "/api/v1/metrics/cpu-temperature").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found"))
        );

        let (status, procs) = get(&app, "/api/v1/processes").await;
        assert_eq!(status, 200);
        assert_eq!(procs["pm2"]["enabled"], false);
    }
}
