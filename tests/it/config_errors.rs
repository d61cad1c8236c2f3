//! Config mistakes seen from the command line (issue 18): exit 2, `FILE:LINE:COL: key: reason`,
//! no expanded secret, no megabyte of echo, no duration that overflows.

use std::process::Command;

use crate::support::{BIN, write_config};

fn config_check(dir: &std::path::Path, text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let path = write_config(dir, text);
    let out = Command::new(BIN)
        .args(["--config", path.to_str().unwrap(), "config", "check"])
        .env_remove("OPSWATCH_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn a_secret_expanded_into_the_wrong_key_is_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let token = "987654321:AAF-this-token-must-not-be-printed";
    let (code, out) = config_check(
        dir.path(),
        "[system]\ndisk_crit = \"${TELEGRAM_BOT_TOKEN:-x}\"\n",
        &[("TELEGRAM_BOT_TOKEN", token)],
    );
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("this-token"), "{out}");
    assert!(
        out.contains("opswatch.toml:2:1: key system.disk_crit:")
            && out.contains("${TELEGRAM_BOT_TOKEN:-x}"),
        "{out}"
    );
}

#[test]
fn a_megabyte_value_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "x".repeat(1024 * 1024);
    let (code, out) = config_check(
        dir.path(),
        &format!("[[http]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\nevery = \"{huge}\"\n"),
        &[],
    );
    assert_eq!(code, 2);
    assert!(out.len() < 1_000, "{} bytes of error", out.len());
    assert!(out.contains(":4:1: key http[0].every:"), "{out}");
}

#[test]
fn extreme_durations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("every = \"18446744073709551615ms\"", "http[0].every"),
        ("every = \"3d\"", "http[0].every"),
        ("every = \"10s\"\ntimeout = \"1h\"", "http[0].timeout"),
    ] {
        let (code, out) = config_check(
            dir.path(),
            &format!("[[http]]\nname = \"a\"\nurl = \"http://127.0.0.1/\"\n{text}\n"),
            &[],
        );
        assert_eq!(code, 2, "{text}: {out}");
        assert!(out.contains(&format!("key {key}:")), "{text}: {out}");
    }
}
