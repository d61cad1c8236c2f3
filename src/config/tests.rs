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
