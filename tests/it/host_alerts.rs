//! Host thresholds on this real host, with thresholds set low enough to cross: a CRITICAL is
//! sent at once with the top processes attached, WARNINGs only in the digest, each digest
//! exactly once; on both backends.

use std::time::Duration;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::{Opswatch, telegram_config, wait_for_texts};

#[tokio::test]
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
every = "1s"
sustain = "1s"
memory_warn = 0.1
memory_crit = 0.2
disk_warn = 0.01
disk_crit = 100
[digest]
schedule = "*/4 * * * * *"
"#,
            head = telegram_config(&url, &fake),
        );
        let app = Opswatch::start_with_config(dir.path(), &config);
        wait_for_texts(&fake, &app, Duration::from_secs(40), |got| {
            got.iter().any(|m| m.contains("Memory is"))
                && got.iter().filter(|m| m.contains("• Disk")).count() >= 2
        })
        .await;
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
        // Each digest (one per schedule slot) is delivered once: never more messages than
        // digests in the alert log.
        let digests: Vec<&String> = got.iter().filter(|m| m.contains("• Disk")).collect();
        assert!(digests.len() >= 2);
        assert!(digests[0].contains("still active"), "{}", digests[0]);
        let log = app.get_json("/api/v1/alerts?limit=1000").await;
        let logged = log["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["kind"] == "digest")
            .count();
        assert!(
            digests.len() <= logged,
            "{} digest messages for {logged} digests",
            digests.len()
        );
    }
}
