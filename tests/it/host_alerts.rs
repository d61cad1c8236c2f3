//! Host thresholds on this real host, with thresholds set low enough to cross: a CRITICAL is
//! sent at once with the top processes attached, WARNINGs only in the digest, each digest
//! exactly once; on both backends. In process, on a clock the test moves: the sampler reads
//! this host for real, only "now" (sustain, the digest's slots) is the test's.

use std::time::Duration;

use opswatch::daemon::clock::Clock;
use serde_json::Value;

use crate::support::app::{TestApp, spawn_app};
use crate::support::eventually;
use crate::support::fake_telegram::FakeTelegram;
use crate::support::telegram_config;

/// Friday 2026-11-27 00:00:30 UTC: between two digest slots.
const START: i64 = 1_795_737_630_000;
const MINUTE: Duration = Duration::from_secs(60);

/// The alert log, oldest first.
async fn logged(app: &TestApp) -> Vec<Value> {
    let body = app.get_json("/api/v1/alerts?limit=1000").await;
    let mut all = body["alerts"].as_array().cloned().unwrap_or_default();
    all.reverse();
    all
}

/// Waits until the alert log has `n` digests.
async fn digests_logged(app: &TestApp, n: usize) {
    let found = eventually(Duration::from_secs(30), || async {
        let got = logged(app).await;
        (got.iter().filter(|a| a["kind"] == "digest").count() >= n).then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "{n} digests never logged: {:#?}",
        logged(app).await
    );
}

/// Waits until the sampler recorded memory at the clock's current time.
async fn sampled_now(app: &TestApp) {
    let now = app.app.clock.now_ms();
    let found = eventually(Duration::from_secs(30), || async {
        let points = app
            .app
            .store
            .query_series("memory.used_pct", now, now + 1)
            .await
            .ok()?;
        (!points.is_empty()).then_some(())
    })
    .await;
    assert!(found.is_some(), "no memory sample at {now}");
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_critical_goes_out_at_once_and_disk_warnings_only_in_the_digest() {
    let base = tempfile::tempdir().unwrap();
    for (url, _guard) in crate::support::store_urls(base.path()).await {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeTelegram::start().await;
        // Any real host uses more than 0.2 % of its memory and 0.01 % of its root disk.
        let config = format!(
            r#"{head}[pm2]
enabled = false
[system]
sample_every = "1s"
every = "1h"
sustain = "1m"
memory_warn = 0.1
memory_crit = 0.2
disk_warn = 0.01
disk_crit = 100
[digest]
schedule = "0 */5 * * * *"
"#,
            head = telegram_config(&url, &fake),
        );
        let app = spawn_app(dir.path(), &config, Clock::manual(START)).await;
        // Minute by minute for ten minutes: the sampler reads the host at each minute, then the
        // host rules evaluate (here, not on their own schedule, so that each minute is
        // evaluated exactly once after its sample). The digest job fires by itself at 00:05
        // and 00:10 when the clock passes them.
        sampled_now(&app).await;
        opswatch::rules::host::evaluate(&app.app).await.unwrap();
        for _ in 0..10 {
            app.app.clock.advance(MINUTE);
            sampled_now(&app).await;
            opswatch::rules::host::evaluate(&app.app).await.unwrap();
        }
        // Crossed for the whole sustain window: raised once.
        let memory: Vec<Value> = logged(&app)
            .await
            .into_iter()
            .filter(|a| a["title"].as_str().unwrap_or("").contains("Memory is"))
            .collect();
        assert_eq!(memory.len(), 1, "{memory:#?}");
        assert_eq!(memory[0]["kind"], "system", "{memory:#?}");
        digests_logged(&app, 2).await;

        app.dispatch_all_pending().await;
        let got = fake.delivered_texts();
        let memory: Vec<&String> = got.iter().filter(|m| m.contains("Memory is")).collect();
        assert_eq!(
            memory.len(),
            1,
            "memory critical sent more than once: {got:#?}"
        );
        assert!(memory[0].contains("CRITICAL"), "{}", memory[0]);
        assert!(
            memory[0].contains("critical above 0.2 %"),
            "threshold missing: {}",
            memory[0]
        );
        assert!(
            memory[0].contains("Top memory:"),
            "top processes missing: {}",
            memory[0]
        );
        // Disk warnings never alone: only inside digests, which are WARNING messages with lines.
        for m in got.iter().filter(|m| m.contains("Disk")) {
            assert!(
                m.contains("warning") && m.contains("• Disk"),
                "a disk warning outside a digest: {m}"
            );
        }
        // Each digest (one per schedule slot) is delivered exactly once.
        let digests: Vec<&String> = got.iter().filter(|m| m.contains("• Disk")).collect();
        let log = logged(&app).await;
        let logged_digests = log.iter().filter(|a| a["kind"] == "digest").count();
        assert_eq!(logged_digests, 2, "one digest per slot: {log:#?}");
        assert_eq!(digests.len(), 2, "{got:#?}");
        assert!(
            digests.iter().all(|d| d.contains("still active")),
            "{digests:#?}"
        );
        app.stop().await;
    }
}
