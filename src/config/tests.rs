use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/opswatch/opswatch.toml"), text)
}

fn only_problem(text: &str) -> Problem {
    let err = load(text).expect_err("config should be refused");
    assert_eq!(err.problems.len(), 1, "{err}");
    err.problems[0].clone()
}

#[test]
fn empty_file_gives_runbook_defaults() {
    let c = load("").unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:7070");
    assert_eq!(c.storage.url.expose(), "sqlite://./data/opswatch.db");
    assert_eq!(c.system.every.to_string(), "15m");
    assert_eq!(c.system.disk_warn, 80.0);
    assert_eq!(c.system.swap_crit, 80.0);
    assert_eq!(c.digest.schedule.as_str(), "0 */4 * * *");
}

const PRODUCT_EXAMPLE: &str = r#"
[server]
listen = "127.0.0.1:7070"
[storage]
url = "sqlite://./data/opswatch.db"
[telegram]
bot_token = "${OPSW_T_BOT}"
chat_id = "${OPSW_T_CHAT}"
api_base = "https://api.telegram.org"
[[http]]
name = "api"
url = "https://example.com/health"
every = "5m"
timeout = "10s"
failures = 2
remind_every = "1h"
[system]
every = "15m"
disk_warn = 80
memory_warn = 90
swap_warn = 20
swap_crit = 80
load_warn = 8
load_crit = 12
[digest]
schedule = "0 */4 * * *"
[pm2]
home = "/home/deploy/.pm2"
[systemd]
units = ["nginx.service", "app.service"]
[database]
url = "postgres://monitor:${OPSW_T_DBPASS}@127.0.0.1/app"
[disputes]
query = "SELECT id, created_at, amount, reason FROM disputes WHERE id > $1 ORDER BY id LIMIT 100"
every = "5m"
[[auth.users]]
name = "admin"
password_hash = "$argon2id$v=19$..."
[[auth.tokens]]
name = "ci"
token = "${OPSW_T_API}"
scope = "read"
"#;

#[test]
fn product_example_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("app.env");
    std::fs::write(
        &env,
        "OPSW_T_BOT=123:abc\nOPSW_T_CHAT=-100123\nOPSW_T_DBPASS=pw\nOPSW_T_API=tok\n",
    )
    .unwrap();
    let text = format!(
        "env_file = {:?}\n{}",
        env.display().to_string(),
        PRODUCT_EXAMPLE
    );
    let c = load(&text).unwrap();

    assert_eq!(c.telegram.as_ref().unwrap().bot_token.expose(), "123:abc");
    assert_eq!(
        c.database.as_ref().unwrap().url.expose(),
        "postgres://monitor:pw@127.0.0.1/app"
    );
    let shown = c.to_redacted_toml();
    for secret in ["123:abc", ":pw@", "\"tok\"", "$argon2id"] {
        assert!(!shown.contains(secret), "{secret} leaked into:\n{shown}");
    }
    assert!(
        shown.contains("postgres://monitor:<redacted>@127.0.0.1/app"),
        "{shown}"
    );
}

#[test]
fn unknown_key_names_the_key_and_its_line() {
    let p = only_problem("[server]\nlisten = \"127.0.0.1:1\"\nlisen = \"x\"\n");
    assert_eq!(p.key, "server.lisen");
    assert_eq!(p.position, Some((3, 1)));
    assert!(p.reason.contains("unknown key"), "{}", p.reason);
}

#[test]
fn bad_duration_in_an_array_of_tables() {
    let p = only_problem(
        "[[http]]\nname = \"a\"\nurl = \"http://x\"\n\n[[http]]\nname = \"b\"\nurl = \"http://y\"\nevery = \"5 minutes\"\n",
    );
    assert_eq!(p.key, "http[1].every");
    assert_eq!(p.position, Some((8, 1)));
    assert!(p.reason.contains("invalid duration"), "{}", p.reason);
}

#[test]
fn bad_cron_is_refused() {
    let p = only_problem("[digest]\nschedule = \"every 4 hours\"\n");
    assert_eq!(p.key, "digest.schedule");
    assert!(p.reason.contains("cron"), "{}", p.reason);
}

#[test]
fn syntax_error_has_a_position() {
    let err = load("[server\nlisten = 1\n").unwrap_err();
    assert_eq!(err.problems[0].position.map(|p| p.0), Some(1));
    assert!(
        err.to_string()
            .starts_with("/etc/opswatch/opswatch.toml:1:"),
        "{err}"
    );
}

#[test]
fn every_unset_variable_is_reported_at_once() {
    let err =
        load("[telegram]\nbot_token = \"${OPSW_T_UNSET_A}\"\nchat_id = \"${OPSW_T_UNSET_B}\"\n")
            .unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    assert_eq!(err.problems[0].key, "telegram.bot_token");
    assert!(err.problems[1].reason.contains("OPSW_T_UNSET_B"));
}

#[test]
fn semantic_problems_are_collected() {
    let err = load(
        "[system]\nswap_warn = 90\nswap_crit = 80\ndisk_warn = 120\n[[http]]\nname = \"a\"\nurl = \"ftp://x\"\n[[http]]\nname = \"a\"\nurl = \"http://y\"\nfailures = 0\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "system.swap_warn",
        "system.disk_warn",
        "http[0].url",
        "http[1].name",
        "http[1].failures",
    ] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
    assert!(err.problems.iter().all(|p| p.position.is_some()), "{err}");
}

#[test]
fn missing_env_file_names_the_key() {
    let p = only_problem("env_file = \"does-not-exist.env\"\n");
    assert_eq!(p.key, "env_file");
    assert!(
        p.reason.contains("/etc/opswatch/does-not-exist.env"),
        "{}",
        p.reason
    );
}

#[test]
fn a_check_name_used_twice_names_both_places() {
    let p = only_problem(
        "[[http]]\nname = \"api\"\nurl = \"http://x\"\n\n[[http]]\nname = \"api\"\nurl = \"http://y\"\n",
    );
    assert_eq!(p.key, "http[1].name");
    assert_eq!(p.position, Some((6, 1)));
    assert!(
        p.reason
            .contains("also at key http[0].name (/etc/opswatch/opswatch.toml:2:1)"),
        "{}",
        p.reason
    );
}

/// Loads `text` from a temp dir holding `.env` with `env`.
fn load_with_env(text: &str, env: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), env).unwrap();
    Config::from_toml(
        &dir.path().join("opswatch.toml"),
        &format!("env_file = \".env\"\n{text}"),
    )
}

#[test]
fn an_error_quotes_the_value_as_written_never_its_expansion() {
    let token = "123456789:AAH-secret-bot-token-never-shown";
    let err = load_with_env(
        "[system]\ndisk_crit = \"${TELEGRAM_BOT_TOKEN:-x}\"\n",
        &format!("TELEGRAM_BOT_TOKEN={token}\n"),
    )
    .expect_err("a string is not a percentage");
    let text = err.to_string();
    assert!(!text.contains(token), "{text}");
    assert!(!text.contains("AAH-secret"), "{text}");
    assert!(text.contains("${TELEGRAM_BOT_TOKEN:-x}"), "{text}");
    assert!(text.contains(":3:1: key system.disk_crit:"), "{text}");
}

#[test]
fn a_huge_value_is_not_echoed_whole() {
    let huge = "9".repeat(1024 * 1024);
    let err = load(&format!(
        "[[http]]\nname = \"a\"\nurl = \"http://x/\"\nevery = \"{huge}s\"\n"
    ))
    .expect_err("too large");
    let text = err.to_string();
    assert!(text.len() < 500, "{} bytes: {}", text.len(), &text[..200]);
    assert!(text.contains("key http[0].every"), "{text}");
}

#[test]
fn a_duration_that_overflows_time_arithmetic_is_refused() {
    let p = only_problem(
        "[[http]]\nname = \"a\"\nurl = \"http://x/\"\nevery = \"18446744073709551615ms\"\n",
    );
    assert_eq!(p.key, "http[0].every");
    assert_eq!(p.position, Some((4, 1)));
    assert!(p.reason.contains("too large"), "{}", p.reason);
    let p = only_problem("[history]\nhourly = \"200y\"\n");
    assert_eq!(p.key, "history.hourly");
}

#[test]
fn intervals_over_a_day_are_refused() {
    let p = only_problem("[[http]]\nname = \"a\"\nurl = \"http://x/\"\nevery = \"2d\"\n");
    assert_eq!(p.key, "http[0].every");
    assert_eq!(p.position, Some((4, 1)));
    assert!(p.reason.contains("at most 1d"), "{}", p.reason);
    assert_eq!(
        only_problem("[system]\nevery = \"25h\"\n").key,
        "system.every"
    );
    assert_eq!(only_problem("[pm2]\nevery = \"7d\"\n").key, "pm2.every");
    assert_eq!(
        only_problem("[server]\nshutdown_grace = \"1y\"\n").key,
        "server.shutdown_grace"
    );
}

#[test]
fn a_tcp_check_may_not_take_an_http_check_name() {
    let p = only_problem(
        "[[http]]\nname = \"db\"\nurl = \"http://x\"\n\n[[tcp]]\nname = \"db\"\naddress = \"127.0.0.1:5432\"\n",
    );
    assert_eq!(p.key, "tcp[0].name");
    assert_eq!(p.position, Some((6, 1)));
    assert!(
        p.reason
            .contains("also at key http[0].name (/etc/opswatch/opswatch.toml:2:1)"),
        "{}",
        p.reason
    );
}

#[test]
fn a_tcp_address_needs_a_port() {
    let p = only_problem("[[tcp]]\nname = \"db\"\naddress = \"127.0.0.1\"\n");
    assert_eq!(p.key, "tcp[0].address");
    assert!(p.reason.contains("HOST:PORT"), "{}", p.reason);
}

#[test]
fn a_timeout_over_its_interval_is_refused_and_the_default_fits_in() {
    let p = only_problem(
        "[[http]]\nname = \"a\"\nurl = \"http://x/\"\nevery = \"5s\"\ntimeout = \"1m\"\n",
    );
    assert_eq!(p.key, "http[0].timeout");
    assert_eq!(p.position, Some((5, 1)));
    assert!(p.reason.contains("1m > 5s"), "{}", p.reason);
    let c = load("[[http]]\nname = \"a\"\nurl = \"http://x/\"\nevery = \"2s\"\n").unwrap();
    assert_eq!(c.http[0].timeout.to_string(), "2s");
    let c = load("[[http]]\nname = \"a\"\nurl = \"http://x/\"\n").unwrap();
    assert_eq!(c.http[0].timeout.to_string(), "10s");
}

#[test]
fn app_database_mistakes_are_collected() {
    let err = load(
        "[database]\nurl = \"postgres://m@h/app\"\ndead_tuples_warn = 0\nlong_query = \"0s\"\n\
         migrations_table = \"a.b.c\"\n[disputes]\nquery = \"SELECT id FROM disputes\"\n\
         [vacuum]\nlock_timeout = \"0s\"\n",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "database.dead_tuples_warn",
        "database.long_query",
        "database.migrations_table",
        "disputes.query",
        "vacuum.lock_timeout",
    ] {
        assert!(keys.contains(&want), "{want} missing from {keys:?}");
    }
    let p = only_problem("[vacuum]\nenabled = true\n");
    assert_eq!(p.key, "vacuum.enabled");
    let c = load("[database]\nurl = \"postgres://m@h/app\"\n[disputes]\nquery = \"SELECT id FROM d WHERE id > $1\"\n")
        .unwrap();
    let db = c.database.unwrap();
    assert_eq!(db.schedule.as_str(), "30 1 * * *");
    assert_eq!(db.dead_tuples_warn, 100_000);
    assert_eq!(c.vacuum.schedule.as_str(), "0 3 * * 3");
    assert!(!c.vacuum.enabled && !c.disputes.unwrap().backfill);
}

#[test]
fn status_page_lists_only_existing_http_checks() {
    let c = load("[status_page]\nenabled = true\n").unwrap();
    assert_eq!(c.status_page.title, "Service status");
    assert!(c.status_page.checks.is_none());
    let p = only_problem(
        "[[http]]\nname = \"api\"\nurl = \"https://example.com/\"\n\n\
         [status_page]\nenabled = true\nchecks = [\"api\", \"frontnd\"]\n",
    );
    assert_eq!(p.key, "status_page.checks[1]");
    assert!(p.reason.contains("frontnd"), "{}", p.reason);
    assert_eq!(p.position.map(|(line, _)| line), Some(7));
}
