//! Time-driven rules on a clock the test moves: sustain and hysteresis of host thresholds, the
//! warning digest's slots, one-off and recurring silences. Nothing here waits for time to pass.

use std::time::Duration;

use opswatch::checks::system::{HostSnapshot, LoadAvg, MemoryUsage};
use opswatch::config::Config;
use opswatch::daemon::clock::Clock;
use opswatch::daemon::state::AppState;
use opswatch::rules::alert::Severity;
use opswatch::store::{LoggedAlert, Store};

/// Friday 2026-11-27 00:00 UTC.
const FRIDAY: i64 = 1_795_737_600_000;
const MINUTE: Duration = Duration::from_secs(60);

/// An app on a fresh SQLite store with `config` and a manual clock at `start_ms`, plus a
/// Telegram channel so alerts get outbox rows (nothing sends them: no dispatcher runs).
async fn app(config: &str, start_ms: i64) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[telegram]\nbot_token = \"123:abc\"\nchat_id = \"1\"\napi_base = \"http://127.0.0.1:9\"\n{config}"
    );
    let config = Config::from_toml(&dir.path().join("o.toml"), &text).unwrap();
    let store = Store::open(&format!("sqlite://{}/o.db", dir.path().display()))
        .await
        .unwrap();
    (
        AppState::with_clock(config, store, Clock::manual(start_ms)),
        dir,
    )
}

/// Records a memory sample at the clock's time, as the sampler would, and evaluates the host
/// rules as their job would.
async fn memory_at(app: &AppState, used_pct: f64) {
    let now = app.clock.now_ms();
    app.store
        .record_samples(now, &[("memory.used_pct".to_owned(), used_pct)])
        .await
        .unwrap();
    app.live.set_host(HostSnapshot {
        at_ms: now,
        mounts: Vec::new(),
        memory: MemoryUsage {
            total_bytes: 8 << 30,
            available_bytes: ((100.0 - used_pct) / 100.0 * (8u64 << 30) as f64) as u64,
            used_pct,
        },
        swap: None,
        load: LoadAvg {
            one: 0.1,
            five: 0.1,
            fifteen: 0.1,
        },
        cpus: 2,
        uptime_s: 1000.0,
        top_memory: Vec::new(),
        top_cpu: Vec::new(),
    });
    opswatch::rules::host::evaluate(app).await.unwrap();
}

async fn alerts(app: &AppState) -> Vec<LoggedAlert> {
    let mut all = app.store.list_alerts(0, i64::MAX, 1000).await.unwrap();
    all.reverse(); // oldest first
    all
}

fn summary(alerts: &[LoggedAlert]) -> Vec<(Severity, String)> {
    alerts
        .iter()
        .map(|a| (a.alert.severity, a.alert.title.clone()))
        .collect()
}

#[tokio::test]
async fn a_threshold_is_raised_only_when_sustained_and_cleared_only_below_its_margin() {
    let cfg = "[system]\nmemory_warn = 80\nmemory_crit = 90\nsustain = \"5m\"\nhysteresis = 10\n";
    let (app, _dir) = app(cfg, FRIDAY).await;

    // One good sample, then five minutes over the critical line: not yet, because the window
    // still holds the good sample ...
    memory_at(&app, 50.0).await;
    for _ in 0..5 {
        app.clock.advance(MINUTE);
        memory_at(&app, 95.0).await;
        assert!(alerts(&app).await.is_empty(), "raised before sustained");
    }
    // ... one minute later every sample of the window is over: CRITICAL, once.
    app.clock.advance(MINUTE);
    memory_at(&app, 95.0).await;
    let got = summary(&alerts(&app).await);
    assert_eq!(
        got,
        [(Severity::Critical, "Memory is 95 % used".to_owned())]
    );

    // Below the line but within the 10 % margin (90 - 9 = 81): still critical, nothing new.
    app.clock.advance(MINUTE);
    memory_at(&app, 85.0).await;
    assert_eq!(alerts(&app).await.len(), 1);
    app.clock.advance(MINUTE);
    memory_at(&app, 82.0).await;
    assert_eq!(alerts(&app).await.len(), 1);

    // Under the margin: the CRITICAL resolves.
    app.clock.advance(MINUTE);
    memory_at(&app, 40.0).await;
    let got = alerts(&app).await;
    assert_eq!(got.len(), 2, "{:#?}", summary(&got));
    assert_eq!(got[1].alert.severity, Severity::Resolved);
}

#[tokio::test]
async fn warnings_go_out_once_per_digest_slot_and_wait_out_a_silence() {
    // Digest every 4 hours; a one-off silence of system warnings until 02:00.
    let cfg = "[system]\nmemory_warn = 80\nmemory_crit = 99\nsustain = \"1m\"\n\
               [digest]\nschedule = \"0 */4 * * *\"\n\
               [[silence]]\nkind = \"system\"\nuntil = \"2026-11-27T02:00:00Z\"\ncomment = \"upgrade\"\n";
    let (app, _dir) = app(cfg, FRIDAY).await;
    for _ in 0..3 {
        memory_at(&app, 85.0).await;
        app.clock.advance(MINUTE);
    }
    // A warning is never sent by itself.
    assert!(alerts(&app).await.is_empty());

    // 01:00, inside the silence: the digest holds the warning back (deferred, not dropped).
    app.clock.set(FRIDAY + 3_600_000);
    assert_eq!(opswatch::rules::digest::send(&app).await.unwrap(), None);
    assert!(alerts(&app).await.is_empty());

    // 04:00, after it: one digest with the warning.
    app.clock.set(FRIDAY + 4 * 3_600_000);
    let first = opswatch::rules::digest::send(&app).await.unwrap();
    assert!(first.is_some());
    let got = alerts(&app).await;
    assert_eq!(got.len(), 1);
    assert!(
        got[0]
            .alert
            .body
            .as_deref()
            .unwrap_or("")
            .contains("Memory"),
        "{:#?}",
        got[0].alert
    );
    // A second run in the same slot sends nothing (a restart, a catch-up).
    app.clock.advance(MINUTE);
    assert_eq!(opswatch::rules::digest::send(&app).await.unwrap(), None);
    assert_eq!(alerts(&app).await.len(), 1);
}

#[tokio::test]
async fn a_recurring_window_silences_only_while_it_is_open() {
    use opswatch::rules::silence::{Subject, is_silenced};
    // Fridays 01:00 for 30 minutes.
    let cfg = "[[silence]]\nkind = \"http\"\nschedule = \"0 1 * * 5\"\nduration = \"30m\"\ncomment = \"restart\"\n";
    let (app, _dir) = app(cfg, FRIDAY).await;
    let subject = Subject {
        source: "api",
        kind: "http",
        severity: Severity::Critical,
    };
    for (minute, silenced) in [(59, false), (60, true), (75, true), (89, true), (91, false)] {
        let at = FRIDAY + minute * 60_000;
        assert_eq!(
            is_silenced(&app, subject, at).await,
            silenced,
            "at 00:00 + {minute} min"
        );
    }
    // The next Friday's window opens again; Saturday's does not exist.
    assert!(is_silenced(&app, subject, FRIDAY + 7 * 86_400_000 + 70 * 60_000).await);
    assert!(!is_silenced(&app, subject, FRIDAY + 86_400_000 + 70 * 60_000).await);
}
