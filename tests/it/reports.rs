//! The scheduled reports on real inputs: a real PostgreSQL for the daily stats, log files with
//! rotation and a `.gz`, the reference's sshd lines, real listening sockets, real PM2 apps for
//! the scheduled restart, and the real binary sending a scheduled report through the fake
//! Telegram.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use opswatch::config::Config;
use opswatch::daemon::state::AppState;
use opswatch::store::Store;

use crate::support::fake_telegram::FakeTelegram;
use crate::support::{
    Opswatch, PgDatabase, eventually, pg_admin_url, run_cli, sqlite_url, telegram_config,
    wait_for_texts, write_config,
};

async fn app_with(dir: &Path, extra: &str) -> AppState {
    let text = format!(
        "[storage]\nurl = \"{}\"\n[pm2]\nenabled = false\n{extra}",
        sqlite_url(dir)
    );
    let config = Config::from_toml(Path::new("test.toml"), &text).expect("config parses");
    let store = Store::open(config.storage.url.expose()).await.unwrap();
    AppState::new(config, store)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn daily_stats_come_from_a_real_postgresql_and_an_unreachable_one_exits_1() {
    let Some(admin) = pg_admin_url().await else {
        return;
    };
    let db = PgDatabase::create(&admin).await;
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE users (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now());
             INSERT INTO users (created_at) VALUES (now()), (now()), (now() - interval '3 days'), (now());
             CREATE TABLE gigs (id serial PRIMARY KEY, amount numeric(10,2) NOT NULL, city text);
             INSERT INTO gigs (amount, city) SELECT g * 1.5, 'city' || g FROM generate_series(1, 12) g;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[storage]
url = "{store}"
[pm2]
enabled = false
[database]
url = "{url}"
[[reports.daily.stats]]
name = "new users"
sql = "SELECT count(*) FROM users WHERE created_at > now() - interval '1 day'"
[[reports.daily.stats]]
name = "revenue"
sql = "SELECT sum(amount) FROM gigs"
[[reports.daily.stats]]
name = "gigs by city"
sql = "SELECT city, amount FROM gigs ORDER BY id"
[[reports.daily.stats]]
name = "typo"
sql = "SELECT count(*) FROM userz"
[[reports.daily.stats]]
name = "no writes"
sql = "DELETE FROM users"
"#,
        store = sqlite_url(dir.path()),
        url = db.url
    );
    let path = write_config(dir.path(), &config);
    let out = run_cli(
        dir.path(),
        &["-c", path.to_str().unwrap(), "report", "daily"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("new users: 3"), "{text}");
    // numeric prints as PostgreSQL writes it (simple query protocol, text format).
    assert!(text.contains("revenue: 117.00"), "{text}");
    assert!(text.contains("city | amount"), "{text}");
    assert!(text.contains("city10 | 15.00"), "{text}");
    assert!(!text.contains("city11"), "at most 10 rows: {text}");
    assert!(text.contains("(first 10 rows)"), "{text}");
    assert!(
        text.contains("typo: failed: relation \"userz\" does not exist"),
        "{text}"
    );
    assert!(text.contains("no writes: failed"), "{text}");
    assert!(text.contains("read-only"), "{text}");

    // The report was stored.
    let store = Store::open(&sqlite_url(dir.path())).await.unwrap();
    let listed = store.list_reports(0, i64::MAX, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, "daily");
    let stored = store.find_report(listed[0].id).await.unwrap().unwrap();
    assert_eq!(stored.body["stats"]["state"], "values");
    assert_eq!(stored.body["stats"]["stats"][0]["value"], "3");
    store.close().await;

    // The app's database gone: the report still prints, exit 1, the reason without the password.
    db.drop_now().await;
    let out = run_cli(
        dir.path(),
        &["-c", path.to_str().unwrap(), "report", "daily"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(o.contains("app database unreachable"), "{o}");
    assert!(e.contains("cannot be reached"), "{e}");
    let password = url::Url::parse(&db.url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(!o.contains(&password) && !e.contains(&password));

    // The weekly and security reports exit 0 without a database.
    let out = run_cli(
        dir.path(),
        &["-c", path.to_str().unwrap(), "report", "weekly"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn gzip(path: &Path, text: &str) {
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn count(w: &opswatch::reports::weekly::Weekly, pattern: &str) -> u64 {
    w.logs
        .totals
        .iter()
        .find(|(p, _)| p == pattern)
        .map_or(0, |(_, n)| *n)
}

#[tokio::test]
async fn the_weekly_scan_follows_rotation_and_reads_only_what_was_appended() {
    use opswatch::reports::weekly::gather;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let live = logs.join("app.log");
    // Rotated by logrotate (delaycompress): app.log.2.gz (oldest), app.log.1, app.log.
    gzip(
        &logs.join("app.log.2.gz"),
        "2026-11-20T03:00:00Z ERROR db timeout after 3001ms\n2026-11-20T03:00:01Z info ok\n",
    );
    std::fs::write(
        logs.join("app.log.1"),
        "2026-11-21T03:00:00Z ERROR db timeout after 2999ms\n2026-11-21T04:00:00Z FATAL out of memory\n",
    )
    .unwrap();
    std::fs::write(
        &live,
        "2026-11-22T03:00:00Z ERROR db timeout after 12ms\nthread 'main' panicked at src/x.rs:10:5\n",
    )
    .unwrap();
    std::fs::write(logs.join("other.log"), "ERROR elsewhere 1\n").unwrap();
    let app = app_with(
        dir.path(),
        &format!("[reports.weekly]\nlogs = [\"{}/*.log\"]\n", logs.display()),
    )
    .await;
    let now = opswatch::store::now_ms();

    let first = gather(&app, now, true).await.unwrap();
    assert_eq!(first.logs.files.len(), 2, "{:?}", first.logs.files);
    assert_eq!(count(&first, "ERROR"), 4);
    assert_eq!(count(&first, "FATAL"), 1);
    assert_eq!(count(&first, "panic"), 1);
    let app_log = &first.logs.files[0];
    assert!(app_log.path.ends_with("app.log"));
    assert_eq!(
        app_log.read.len(),
        3,
        "rotated files followed: {:?}",
        app_log.read
    );
    assert_eq!(
        first.logs.top[0],
        opswatch::reports::logscan::TopLine {
            line: "#-#-#T#:#:#Z ERROR db timeout after #ms".into(),
            count: 3
        }
    );
    let rendered = opswatch::reports::weekly::render(&first);
    assert!(
        rendered.text.contains("3× #-#-#T#:#:#Z ERROR db timeout"),
        "{}",
        rendered.text
    );

    // A run by hand remembers nothing: the same again.
    let again = gather(&app, now, false).await.unwrap();
    assert_eq!(again.logs.bytes_read, 0);
    let preview = gather(&app, now, false).await.unwrap();
    assert_eq!(preview.logs.bytes_read, 0);

    // Appended: only that is read.
    let added = "2026-11-23T01:00:00Z ERROR disk full\n";
    append(&live, added);
    let second = gather(&app, now + 1, true).await.unwrap();
    assert_eq!(second.logs.bytes_read, added.len() as u64);
    assert_eq!(count(&second, "ERROR"), 1);

    // Appended, then rotated (app.log → app.log.1, old .1 compressed to .2.gz), then written
    // again: the tail of the old file and the new one, nothing else.
    let tail = "2026-11-24T01:00:00Z ERROR late line\n";
    append(&live, tail);
    let old1 = std::fs::read_to_string(logs.join("app.log.1")).unwrap();
    std::fs::remove_file(logs.join("app.log.2.gz")).unwrap();
    gzip(&logs.join("app.log.2.gz"), &old1);
    std::fs::remove_file(logs.join("app.log.1")).unwrap();
    std::fs::rename(&live, logs.join("app.log.1")).unwrap();
    let fresh = "2026-11-24T02:00:00Z FATAL restarted\n";
    std::fs::write(&live, fresh).unwrap();
    let third = gather(&app, now + 2, true).await.unwrap();
    assert_eq!(
        third.logs.bytes_read,
        (tail.len() + fresh.len()) as u64,
        "{:?}",
        third.logs.files
    );
    assert_eq!((count(&third, "ERROR"), count(&third, "FATAL")), (1, 1));

    // Compressed after the fact (no delaycompress): still found by its content.
    let more = "2026-11-24T03:00:00Z ERROR after fresh\n";
    append(&live, more);
    let content = std::fs::read_to_string(&live).unwrap();
    std::fs::remove_file(&live).unwrap();
    gzip(&logs.join("app.log.1.gz"), &content);
    std::fs::remove_file(logs.join("app.log.1")).unwrap();
    std::fs::write(&live, "").unwrap();
    let fourth = gather(&app, now + 3, true).await.unwrap();
    assert_eq!(count(&fourth, "ERROR"), 1, "{:?}", fourth.logs.files);
    assert_eq!(count(&fourth, "FATAL"), 0);
}

#[tokio::test]
async fn the_security_report_reads_sshd_lines_sockets_and_secret_files() {
    use opswatch::reports::security::{gather, render};
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.log");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/host/auth-sample.log"
        ),
        &auth,
    )
    .unwrap();
    let env_file = dir.path().join("app.env");
    std::fs::write(&env_file, "DB_PASS=x\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let private = dir.path().join("key.pem");
    std::fs::write(&private, "k").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let app = app_with(
        dir.path(),
        &format!(
            "[reports.security]\nauth_log = \"{}\"\nsecret_files = [\"{}\", \"{}\"]\n",
            auth.display(),
            env_file.display(),
            private.display()
        ),
    )
    .await;
    // The reference's lines are from 20 Nov 2026: report as of the 1 Dec run.
    let until = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
        .unwrap()
        .timestamp_millis();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let comm = std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim()
        .to_owned();

    let first = gather(&app, until, true).await.unwrap();
    assert_eq!(first.ssh.failed_total, 3, "{:?}", first.ssh);
    assert_eq!(first.ssh.failed_by_user[0], ("admin".to_owned(), 2));
    assert_eq!(first.ssh.failed_by_source[0], ("203.0.113.5".to_owned(), 2));
    assert_eq!(first.ssh.accepted_total, 2);
    assert!(
        first.ssh.new_sources.is_empty(),
        "first look: nothing is new"
    );
    let ours = first
        .listeners
        .iter()
        .find(|l| l.proto == "tcp" && l.port == port)
        .unwrap_or_else(|| panic!("port {port} not in {:?}", first.listeners));
    assert_eq!(ours.address, "127.0.0.1");
    assert_eq!(ours.process.as_deref(), Some(comm.as_str()));
    assert!(!ours.new);
    assert!(first.secret_files[0].world_readable);
    assert_eq!(first.secret_files[0].owner.as_deref(), Some("root"));
    assert!(!first.secret_files[1].world_readable);
    let report = render(&first);
    assert!(
        report.findings.iter().any(|f| f
            .what
            .contains("app.env is world-readable (mode 644, owner root)")
            && f.todo.starts_with("chmod 600")),
        "{:?}",
        report.findings
    );
    assert!(report.findings.iter().all(|f| !f.todo.is_empty()));

    // A month later: a new listening port and a login from a new address stand out.
    let second_listener = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = second_listener.local_addr().unwrap().port();
    append(
        &auth,
        "Nov 25 10:00:00 web1 sshd-session[77]: Accepted publickey for deploy from 198.51.100.99 port 50000 ssh2: ED25519 SHA256:x\n",
    );
    // Two failed dashboard logins in the month (as POST /login records them).
    for user in ["admin", "ghost"] {
        app.store
            .record_failed_login(until - 86_400_000, user, "203.0.113.9")
            .await
            .unwrap();
    }
    let second = gather(&app, until + 60_000, true).await.unwrap();
    assert_eq!(
        second.ssh.new_sources,
        ["198.51.100.99"],
        "{:?}",
        second.ssh
    );
    let udp = second
        .listeners
        .iter()
        .find(|l| l.proto == "udp" && l.port == udp_port)
        .expect("the UDP socket is listed");
    assert!(udp.new);
    assert!(
        !second
            .listeners
            .iter()
            .find(|l| l.port == port && l.proto == "tcp")
            .unwrap()
            .new
    );
    let report = render(&second);
    assert!(
        report.findings.iter().any(|f| f
            .what
            .contains(&format!("new listening port udp 127.0.0.1:{udp_port}"))),
        "{:?}",
        report.findings
    );
    assert!(
        report.text.contains("Failed dashboard logins: 2"),
        "{}",
        report.text
    );
    drop((listener, second_listener));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_report_is_stored_sent_once_per_occurrence_and_links_to_its_page() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}[server]\npublic_url = \"https://ops.example.com/\"\n[pm2]\nenabled = false\n\
         [system]\nenabled = false\n[reports.daily]\nschedule = \"*/2 * * * * *\"\n\
         [reports.weekly]\nenabled = false\n[reports.security]\nenabled = false\n",
        telegram_config(&sqlite_url(dir.path()), &fake)
    );
    let app = Opswatch::start_with_config(dir.path(), &config);
    wait_for_texts(&fake, &app, Duration::from_secs(30), |t| {
        t.iter().filter(|m| m.contains("Daily summary")).count() >= 2
    })
    .await;
    let texts: Vec<String> = fake
        .delivered_texts()
        .into_iter()
        .filter(|m| m.contains("Daily summary"))
        .collect();
    let ids: Vec<i64> = texts
        .iter()
        .map(|t| {
            let link = t
                .split("https://ops.example.com/reports/")
                .nth(1)
                .unwrap_or_else(|| panic!("no link in {t}"));
            link.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap()
        })
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "one message per report");
    for id in &ids {
        let r = app.get_json(&format!("/api/v1/reports/{id}")).await;
        assert_eq!(r["kind"], "daily", "{r}");
        assert!(r["occurrence_ms"].as_i64().is_some(), "{r}");
        assert!(r["text"].as_str().unwrap().contains("Daily summary"));
    }
    let jobs = eventually(Duration::from_secs(10), || async {
        let j = app.get_json("/api/v1/jobs").await;
        let daily = j["jobs"]
            .as_array()?
            .iter()
            .find(|j| j["name"] == "report:daily")?
            .clone();
        (daily["last_outcome"] == "ok").then_some(j)
    })
    .await
    .expect("the daily job's last run shows in /api/v1/jobs");
    let daily = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "report:daily")
        .unwrap();
    assert_eq!(daily["schedule"], "*/2 * * * * *");
    assert!(
        daily["next_run_ms"].as_i64().unwrap() > daily["last_run"]["started_ms"].as_i64().unwrap()
    );
    assert!(
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == "digest" && j["schedule"] == "0 */4 * * *"),
        "{jobs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_restart_restarts_real_pm2_apps_and_raises_what_stays_down() {
    use crate::support::pm2::{KillDaemon, pm2, pm2_available};
    if !pm2_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("pm2-home");
    let _kill = KillDaemon(home.clone());
    let script = tmp.path().join("web.js");
    std::fs::write(&script, "setInterval(() => {}, 1000);\n").unwrap();
    pm2(&home, &["start", script.to_str().unwrap(), "--name", "web"]);
    let target = crate::support::target::Target::start().await;

    let restart = |apps: &str| {
        format!(
            "[pm2]\nenabled = true\nhome = \"{}\"\n[[http]]\nname = \"api\"\nurl = \"{}\"\n\
             [restart]\nenabled = true\npm2 = [{apps}]\nverify_after = \"1s\"\n",
            home.display(),
            target.url()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\nurl = \"{}\"\n{}",
        sqlite_url(dir.path()),
        restart("\"web\"")
    );
    let config = Config::from_toml(Path::new("t.toml"), &text).unwrap();
    let store = Store::open(config.storage.url.expose()).await.unwrap();
    let app = AppState::new(config, store.clone());
    let out = opswatch::jobs::restart::run(&app)
        .await
        .expect("restart succeeds");
    assert_eq!(out.restarted, ["pm2 web"]);
    let apps = opswatch::checks::pm2::poll(Some(&home), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(apps[0].restarts, 1, "{apps:?}");
    assert_eq!(apps[0].status, "online");
    // The silences it made for itself are over.
    let now = opswatch::store::now_ms();
    assert!(store.current_silences(now).await.unwrap().is_empty());

    // An app that does not exist and an endpoint that stays down: one CRITICAL each.
    target.set_status(503);
    let text = format!(
        "[storage]\nurl = \"{}\"\n{}",
        sqlite_url(dir.path()),
        restart("\"web\", \"ghost\"")
    );
    let config = Config::from_toml(Path::new("t.toml"), &text).unwrap();
    let app = AppState::new(config, store.clone());
    let err = opswatch::jobs::restart::run(&app).await.unwrap_err();
    assert!(format!("{err:#}").contains("ghost"), "{err:#}");
    let alerts = store.list_alerts(0, i64::MAX, 50).await.unwrap();
    let crit: Vec<_> = alerts
        .iter()
        .filter(|a| a.alert.kind == "restart")
        .map(|a| a.alert.value.clone().unwrap_or_default())
        .collect();
    assert!(crit.iter().any(|v| v.contains("ghost")), "{crit:?}");
    assert!(crit.iter().any(|v| v.contains("api is down")), "{crit:?}");
    assert!(
        alerts
            .iter()
            .filter(|a| a.alert.kind == "restart")
            .all(|a| a.alert.severity == opswatch::rules::alert::Severity::Critical)
    );
}

#[tokio::test]
async fn certificate_expiry_is_checked_daily_warning_under_21_days_critical_under_7() {
    use opswatch::store::ResultRow;
    let dir = tempfile::tempdir().unwrap();
    let app = app_with(
        dir.path(),
        "[[http]]\nname = \"site\"\nurl = \"https://site.example/\"\n",
    )
    .await;
    let check = app
        .store
        .ensure_check("site", opswatch::checks::CheckKind::Http)
        .await
        .unwrap();
    let now = opswatch::store::now_ms();
    let day = 86_400_000;
    let mut at = now - 10_000;
    let mut seen = |expires: i64| {
        at += 1;
        ResultRow {
            at_ms: at,
            ok: true,
            latency_ms: Some(5),
            status_code: Some(200),
            error_kind: None,
            error: None,
            cert_expires_ms: Some(expires),
        }
    };
    let level = |app: &AppState| {
        let app = app.clone();
        async move {
            app.store
                .find_condition("tls:site")
                .await
                .unwrap()
                .map(|c| c.level.as_str().to_owned())
        }
    };
    for (expires_in_days, expected) in [(60, "ok"), (15, "warning"), (5, "critical"), (90, "ok")] {
        let row = seen(now + expires_in_days * day + 3_600_000);
        app.store
            .import_check_results(check.id, &[row])
            .await
            .unwrap();
        opswatch::reports::security::check_tls_expiry(&app)
            .await
            .unwrap();
        assert_eq!(
            level(&app).await.as_deref(),
            Some(expected),
            "{expires_in_days} days"
        );
    }
    let alerts = app.store.list_alerts(0, i64::MAX, 10).await.unwrap();
    let tls: Vec<_> = alerts.iter().filter(|a| a.alert.kind == "tls").collect();
    // Newest first: the RESOLVED after renewal, the CRITICAL at 5 days; the warning went to
    // the digest.
    assert_eq!(tls.len(), 2, "{tls:#?}");
    assert_eq!(
        tls[1].alert.severity,
        opswatch::rules::alert::Severity::Critical
    );
    assert!(
        tls[1].alert.title.contains("expires in 5 days"),
        "{}",
        tls[1].alert.title
    );
    assert_eq!(
        tls[0].alert.severity,
        opswatch::rules::alert::Severity::Resolved
    );
    let digest = app.store.pending_digest_items().await.unwrap();
    assert!(digest.iter().any(|d| d.key == "tls:site"), "{digest:#?}");
}
